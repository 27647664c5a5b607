"""Linear secret sharing for policies: the share matrix and the reconstruction coefficients.

A policy tree becomes a matrix M with one row per leaf (row i labelled by the
leaf's attribute rho(i)); a secret s is shared as M . v with v = (s, random...),
and any rows whose attributes satisfy the policy reconstruct s as a linear
combination sum(gamma_i * share_i).

Gates are converted as follows (``and_gates`` picks the AND rule):

- OR (1 of n): every child gets the parent's vector (Lewko-Waters).
- AND, ``"lewko-waters"`` (FAME): the parent's n-ary AND is a chain of binary
  ANDs (Lewko-Waters, "Decentralizing Attribute-Based Encryption", EUROCRYPT
  2011, Appendix G) with n-1 new columns c_1..c_{n-1}: child 1 gets v + e(c_1),
  child i gets -e(c_{i-1}) + e(c_i), child n gets -e(c_{n-1}). Entries stay
  0/+-1 and every reconstruction coefficient is 1, so a scheme combines rows
  by group additions only.
- t of n (1 < t < n), and AND with ``"threshold"`` (BSW07, where AND is an
  n-of-n gate): Shamir sharing written as a Vandermonde block, t-1 new columns
  holding the gate polynomial's coefficients; child x (x = 1..n) gets
  v + sum_m x^m e(c_m). Reconstruction uses Lagrange coefficients at 0.
  This is exactly the polynomial sharing q_x of BSW07's access trees.

Entries and coefficients are integers mod r.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from fogfed.abe.group import ORDER
from fogfed.abe.policy import Attr, Node, Policy

__all__ = ["Lsss", "lsss_matrix", "reconstruction"]

LEWKO_WATERS = "lewko-waters"
THRESHOLD = "threshold"


@dataclass(frozen=True)
class Lsss:
    """Sparse share matrix: ``rows[i]`` is ((column, entry mod r), ...) for leaf i."""

    rows: tuple[tuple[tuple[int, int], ...], ...]
    labels: tuple[str, ...]
    columns: int

    def share(self, vector: list[int]) -> list[int]:
        """The shares M . vector mod r (vector[0] is the secret)."""
        return [sum(e * vector[c] for c, e in row) % ORDER for row in self.rows]


@lru_cache(maxsize=512)
def lsss_matrix(policy: Policy, and_gates: str = LEWKO_WATERS) -> Lsss:
    """Convert a policy to its share matrix (see the module docstring for the rules)."""
    rows: list[tuple[tuple[int, int], ...]] = []
    columns = 1

    def build(node: Node, vec: dict[int, int]) -> None:
        nonlocal columns
        if isinstance(node, Attr):
            rows.append(tuple(sorted((c, e % ORDER) for c, e in vec.items() if e % ORDER)))
            return
        n, k = len(node.children), node.k
        if k == 1:
            for child in node.children:
                build(child, vec)
            return
        fresh = list(range(columns, columns + k - 1))
        columns += k - 1
        if k == n and and_gates == LEWKO_WATERS:
            for i, child in enumerate(node.children):
                v = dict(vec) if i == 0 else {}
                if i > 0:
                    v[fresh[i - 1]] = -1
                if i < n - 1:
                    v[fresh[i]] = 1
                build(child, v)
            return
        for x, child in enumerate(node.children, start=1):
            v = dict(vec)
            for m, c in enumerate(fresh, start=1):
                v[c] = pow(x, m, ORDER)
            build(child, v)

    build(policy.root, {0: 1})
    return Lsss(tuple(rows), policy.leaves(), columns)


def reconstruction(policy: Policy, attributes: Iterable[str], and_gates: str = LEWKO_WATERS) -> list[tuple[int, int]] | None:
    """Rows and coefficients (gamma_i mod r) that rebuild the secret, or None if not satisfied.

    Picks a cheapest satisfying set (fewest rows) so decryption touches as
    few ciphertext rows as possible. For AND/OR-only policies with
    Lewko-Waters ANDs every coefficient is 1. Builds no matrix: one walk
    over the tree, visiting each node once.
    """
    have = frozenset(attributes)
    found = _solve(policy.root, have, 0, and_gates)[1]
    if found is None:
        return None
    return [(row, coeff % ORDER) for row, coeff in found[1]]


def _solve(node: Node, have: frozenset[str], first_row: int, and_gates: str
           ) -> tuple[int, tuple[int, list[tuple[int, int]]] | None]:
    """(leaves of the subtree, (cost, [(row, coefficient)]) for a cheapest satisfying subset, or None)."""
    if isinstance(node, Attr):
        return 1, ((1, [(first_row, 1)]) if node.name in have else None)
    options: list[tuple[int, int, list[tuple[int, int]]]] = []  # (cost, x, rows)
    row = first_row
    for x, child in enumerate(node.children, start=1):
        if isinstance(child, Attr):  # inline: a cover's OR has hundreds of leaf children
            if child.name in have:
                options.append((1, x, [(row, 1)]))
            row += 1
            continue
        count, got = _solve(child, have, row, and_gates)
        if got is not None:
            options.append((got[0], x, got[1]))
        row += count
    count = row - first_row
    n, k = len(node.children), node.k
    if len(options) < k:
        return count, None
    if k == 1:
        cost, _, rows = min(options, key=lambda o: o[0])
        return count, (cost, rows)
    if k == n and and_gates == LEWKO_WATERS:
        return count, (sum(o[0] for o in options), [r for o in options for r in o[2]])
    chosen = sorted(options, key=lambda o: o[0])[:k]
    xs = [o[1] for o in chosen]
    out: list[tuple[int, int]] = []
    for cost, x, rows in chosen:
        lam = _lagrange_at_zero(x, xs)
        out.extend((r, c * lam % ORDER) for r, c in rows)
    return count, (sum(o[0] for o in chosen), out)


def _lagrange_at_zero(x: int, xs: list[int]) -> int:
    num, den = 1, 1
    for j in xs:
        if j != x:
            num = num * j % ORDER
            den = den * (j - x) % ORDER
    return num * pow(den, -1, ORDER) % ORDER
