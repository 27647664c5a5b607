"""BSW07: Bethencourt, Sahai and Waters, "Ciphertext-Policy Attribute-Based Encryption",
IEEE S&P 2007 (Section 4.2) -- the scheme the fogfed paper uses (its reference [14]).

Used as a KEM: ``encrypt`` returns e(g,g)^{alpha s} and the ciphertext without
C~. Access trees are shared with one polynomial q_x per node of degree k_x - 1
(AND is n-of-n, OR is 1-of-n), written as the equivalent Vandermonde LSSS
(lsss.py, ``and_gates="threshold"``); decryption combines leaves with the
Lagrange coefficients Delta_{i,S'}(0) of DecryptNode, applied in G1 before
pairing (cheaper than exponentiating in GT).

Layout on the Type-3 pairing e: G1 x G2 -> GT. The paper's symmetric g becomes
g1 in G1 and g2 in G2, and every pairing of DecryptNode needs one side in each
group: the hash H(j) lives in G1, so D_j = g1^r H(j)^{r_j} and C'_y = H(att(y))^{q_y(0)}
are in G1 and their partners D'_j = g2^{r_j} and C_y = g2^{q_y(0)} in G2.
h = g1^beta and C = h^s are in G1, D = g2^{(alpha+r)/beta} in G2. So keys and
ciphertexts carry one G1 and one G2 element per attribute / leaf, which is
why FAME and FABEO (all-G1 rows, constant pairings) are faster.

Attributes may repeat in a policy: every leaf carries its own share q_y(0) in
both groups, and DecryptNode needs the key component D_j of the leaf's
attribute for every leaf it uses, so coefficients that cancel over an
attribute's leaves remove nothing an attacker lacks (tests/abe/test_reuse.py).
Decryption is one multi-pairing of 2 pairs per used leaf plus one; the
leaves are decoded (and their subgroup tested) only when used (O(leaves used)). f = g^{1/beta} is
only needed for delegation, which fogfed does not offer, so it is omitted.
"""

from __future__ import annotations

from dataclasses import dataclass

from fogfed.abe.encoding import Reader, Writer, read_attributes, read_policy
from fogfed.abe.errors import MalformedError
from fogfed.abe.group import G1, G1_SIZE, G2, G2_SIZE, GT, PairingGroup, Scalar
from fogfed.abe.lsss import THRESHOLD, lsss_matrix, reconstruction
from fogfed.abe.policy import Policy, normalise_attributes

__all__ = ["BSW07", "BswCiphertext", "BswMasterKey", "BswPublicKey", "BswSecretKey"]


@dataclass(frozen=True)
class BswPublicKey:
    """PK = (G0, g, h = g^beta, e(g,g)^alpha); g1, g2 are the fixed generators."""

    h: G1
    egg_alpha: GT

    def write(self, w: Writer) -> None:
        w.element(self.h, self.egg_alpha)

    @classmethod
    def read(cls, r: Reader) -> BswPublicKey:
        return cls(r.g1("h"), r.gt("e(g,g)^alpha"))


@dataclass(frozen=True)
class BswMasterKey:
    """MK = (beta, g^alpha), with g^alpha in G2."""

    beta: Scalar
    g_alpha: G2

    def write(self, w: Writer) -> None:
        w.element(self.beta, self.g_alpha)

    @classmethod
    def read(cls, r: Reader) -> BswMasterKey:
        return cls(r.scalar("beta"), r.g2("g^alpha"))


@dataclass(frozen=True)
class BswSecretKey:
    """SK = (D, {D_j, D'_j}_j in S)."""

    D: G2
    parts: dict[str, tuple[G1, G2]]

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.parts)

    def write(self, w: Writer) -> None:
        w.element(self.D)
        w.count(len(self.parts))
        for j, (D_j, D_j_prime) in self.parts.items():
            w.text(j)
            w.element(D_j, D_j_prime)

    @classmethod
    def read(cls, r: Reader) -> BswSecretKey:
        D = r.g2("D")
        parts = read_attributes(r, "D_j", lambda f: (r.g1(f + " D_j"), r.g2(f + " D'_j")))
        return cls(D, parts)


@dataclass(frozen=True)
class BswCiphertext:
    """CT = (T, C = h^s, {C_y, C'_y}_y in leaves); C~ is replaced by the KEM key.

    Leaves are kept as their encodings (96 + 48 bytes) and decoded, in full,
    when decryption uses them.
    """

    policy: Policy
    C: G1
    leaves: tuple[tuple[bytes, bytes], ...]

    def write(self, w: Writer) -> None:
        w.text(str(self.policy))
        w.element(self.C)
        w.count(len(self.leaves))
        for C_y, C_y_prime in self.leaves:
            w.raw(C_y + C_y_prime)

    @classmethod
    def read(cls, r: Reader) -> BswCiphertext:
        policy = read_policy(r, "policy")
        C = r.g1("C")
        rows = len(policy.leaves())
        n = r.count("C_y", rows)
        if n != rows:
            raise MalformedError(f"{r.what} has {n} leaves but its policy has {rows}")
        leaves = tuple((r.take(G2_SIZE, f"C_y[{i}]"), r.take(G1_SIZE, f"C'_y[{i}]")) for i in range(n))
        return cls(policy, C, leaves)


class BSW07:
    """The BSW07 CP-ABE scheme over a pairing group (Bethencourt-Sahai-Waters, S&P 2007)."""

    name = "bsw07"

    def __init__(self, group: PairingGroup) -> None:
        self.group = group
        self.e_gg = group.pairing(group.g1, group.g2)

    def H(self, attribute: str) -> G1:  # noqa: N802 - the paper's name
        return self.group.hash_g1(b"fogfed/bsw07/v1/attr/" + attribute.encode("ascii"))

    def setup(self) -> tuple[BswPublicKey, BswMasterKey]:
        """BSW07 Setup: PK = (h = g^beta, e(g,g)^alpha), MK = (beta, g^alpha)."""
        G = self.group
        alpha, beta = G.random_scalar(), G.random_scalar()
        return BswPublicKey(G.g1 * beta, self.e_gg**alpha), BswMasterKey(beta, G.g2 * alpha)

    def keygen(self, mk: BswMasterKey, attributes: list[str]) -> BswSecretKey:
        """BSW07 KeyGen(MK, S): D = g^{(alpha+r)/beta}; D_j = g^r H(j)^{r_j}, D'_j = g^{r_j}."""
        G = self.group
        S = normalise_attributes(attributes)
        r = G.random_scalar()
        D = (mk.g_alpha + G.g2 * r) * ~mk.beta
        g_r = G.g1 * r
        parts = {}
        for j in S:
            r_j = G.random_scalar()
            parts[j] = (g_r + self.H(j) * r_j, G.g2 * r_j)
        return BswSecretKey(D, parts)

    def encrypt(self, pk: BswPublicKey, policy: Policy) -> tuple[GT, BswCiphertext]:
        """BSW07 Encrypt as a KEM: returns (e(g,g)^{alpha s}, CT) with q_y(0) the leaf shares of s."""
        G = self.group
        s = G.random_scalar()
        lsss = lsss_matrix(policy, THRESHOLD)
        v = [G.scalar_to_int(s)] + [G.scalar_to_int(G.random_scalar()) for _ in range(lsss.columns - 1)]
        leaves = []
        for q_y0, attribute in zip(lsss.share(v), lsss.labels):
            q = G.scalar(q_y0)
            leaves.append(((G.g2 * q).serialize(), (self.H(attribute) * q).serialize()))
        return pk.egg_alpha**s, BswCiphertext(policy, pk.h * s, tuple(leaves))

    def decrypt(self, sk: BswSecretKey, ct: BswCiphertext) -> GT | None:
        """BSW07 Decrypt as a KEM: e(C, D) / A with A = e(g,g)^{rs}, or None if S does not satisfy T."""
        G = self.group
        coefficients = reconstruction(ct.policy, sk.parts.keys(), THRESHOLD)
        if coefficients is None:
            return None
        labels = ct.policy.leaves()
        # e(C, D) / A with A = prod_y (e(D_j, C_y) / e(D'_j, C'_y))^{Delta(0)}, as one multi-pairing
        pairs = [(ct.C, sk.D)]
        for i, c in coefficients:
            D_j, D_j_prime = sk.parts[labels[i]]
            C_y = G.decode_g2(ct.leaves[i][0], f"BSW07 ciphertext field C_y[{i}]")  # only the leaves used
            C_y_prime = G.decode_g1(ct.leaves[i][1], f"BSW07 ciphertext field C'_y[{i}]")
            if c != 1:
                gamma = G.scalar(c)
                D_j, C_y_prime = D_j * gamma, C_y_prime * gamma
            # DecryptNode: e(D_j, C_y) / e(D'_j, C'_y) = e(g,g)^{r q_y(0)}, raised to Delta(0)
            pairs += [(-D_j, C_y), (C_y_prime, D_j_prime)]
        return G.pairing_product(pairs)
