"""FABEO: Riepel and Wee, "FABEO: Fast Attribute-Based Encryption with Optimal Security", ACM CCS 2022.

The CP-ABE scheme of the paper's Figure 1 (left), used here as a KEM:
``encrypt`` returns e(g,h)^{alpha s_0} in GT and the ciphertext without the
message-carrying component.

Security model (as stated by the paper): adaptively secure, with many
challenge ciphertexts, in the generic group model (GGM) together with the
random oracle model (ROM) for H; no bound on attributes or policy size, any
LSSS policy. Compare FAME (standard-form decisional linear assumption plus
ROM) and BSW07 (generic group model plus ROM).

Scheme (Type-3 pairing e: G x H -> GT; here G = G1, H = G2, g and h the fixed
generators, H(.) a random oracle onto G1)::

    Setup:   alpha <- Zp;  mpk = (g, h, e(g,h)^alpha),  msk = alpha
    KeyGen:  r <- Zp;  sk = (h^r, {H(y)^r}_{y in S}, g^alpha H(0)^r)
    Enc:     (M, rho) with n1 rows, n2 columns; tau = max_y |rho^{-1}(y)|,
             pi(i) = the occurrence number of row i's attribute (1..tau);
             s_0, s_1..s_tau, v_2..v_{n2} <- Zp, lambda = M (s_0, v)^T;
             ct = (h^{s_0}, {h^{s_j}}_{j <= tau},
                   {H(0)^{lambda_i} H(rho(i))^{s_pi(i)}}_{i <= n1})
             key K = e(g,h)^{alpha s_0}
    Dec:     gamma with sum_{i in I} gamma_i M_i = (1, 0, ..., 0):
             K = e(g^alpha H(0)^r, h^{s_0})
                 * prod_j e(prod_{i in I, pi(i)=j} H(rho(i))^{r gamma_i}, h^{s_j})
                 / e(prod_{i in I} ct_i^{gamma_i}, h^r)

The per-occurrence randomisers s_1..s_tau are what make a repeated attribute
sound: rows of one attribute use different s_j, so a key without that
attribute cannot make its hash cancel with coefficients that sum to zero over
its rows (tests/abe/test_reuse.py). The authors' reference code (Charm)
implements the single-use case tau = 1 ("re-use not allowed"). Decryption
costs 2 + (number of distinct occurrence numbers among the rows used)
pairings, computed as one multi-pairing; for a policy without repeats that
is 3 pairings whatever its size.

Speed-ups that do not change the scheme:
- Lewko-Waters LSSS (lsss.py): gamma_i = 1 for AND/OR formulas, so the
  products over rows are G1 additions;
- rows with equal shares (every leaf of an OR) reuse H(0)^{lambda};
- rows are stored uncompressed (x || y, 96 bytes): decoding needs no square
  root, and decryption reads only the rows it uses; the one combined point
  prod ct_i^{gamma_i} that meets key material is tested for G1 membership
  (docs/abe.md, "Subgroup checks").

Hash labels: ``fogfed/fabeo/v1/attr/<y>`` for H(y) and ``fogfed/fabeo/v1/zero``
for H(0), the point outside the attribute universe (the reference code's
H(p + 1)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fogfed.abe import mcl
from fogfed.abe.encoding import Reader, Writer, read_attributes, read_policy
from fogfed.abe.errors import MalformedError
from fogfed.abe.group import G1, G2, G2_SIZE, GT, PairingGroup, Scalar
from fogfed.abe.lsss import LEWKO_WATERS, lsss_matrix, reconstruction
from fogfed.abe.policy import MAX_LEAVES, Policy, normalise_attributes

__all__ = ["FABEO", "FabeoCiphertext", "FabeoMasterKey", "FabeoPublicKey", "FabeoSecretKey", "occurrences"]

ROW_SIZE = 96  # an uncompressed G1 point


@dataclass(frozen=True)
class FabeoPublicKey:
    """mpk = (g, h, e(g,h)^alpha); g, h are the fixed generators."""

    e_gh_alpha: GT

    def write(self, w: Writer) -> None:
        w.element(self.e_gh_alpha)

    @classmethod
    def read(cls, r: Reader) -> FabeoPublicKey:
        return cls(r.gt("e(g,h)^alpha"))


@dataclass(frozen=True)
class FabeoMasterKey:
    """msk = alpha."""

    alpha: Scalar

    def write(self, w: Writer) -> None:
        w.element(self.alpha)

    @classmethod
    def read(cls, r: Reader) -> FabeoMasterKey:
        return cls(r.scalar("alpha"))


@dataclass(frozen=True)
class FabeoSecretKey:
    """sk = (h^r, {sk1_y = H(y)^r}_{y in S}, sk2 = g^alpha H(0)^r)."""

    h_r: G2
    sk1: dict[str, G1]
    sk2: G1

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.sk1)

    def write(self, w: Writer) -> None:
        w.element(self.h_r, self.sk2)
        w.count(len(self.sk1))
        for y, part in self.sk1.items():
            w.text(y)
            w.element(part)

    @classmethod
    def read(cls, r: Reader) -> FabeoSecretKey:
        h_r, sk2 = r.g2("h^r"), r.g1("sk2")
        sk1 = read_attributes(r, "sk1_y", lambda f: r.g1(f))
        return cls(h_r, sk1, sk2)


@dataclass(frozen=True)
class FabeoCiphertext:
    """ct = (policy, h^{s_0}, h^{s_1..s_tau}, ct_1..ct_n1), every element kept as its encoding.

    Elements are decoded when decryption uses them (only the used rows and
    the used h^{s_j}); ``read`` checks the structure and the sizes.
    """

    policy: Policy
    h_s0: bytes
    h_s: tuple[bytes, ...]
    ct: Sequence[bytes]  # a tuple when encrypted here, Rows when read

    def write(self, w: Writer) -> None:
        w.text(str(self.policy))
        w.raw(self.h_s0)
        w.count(len(self.h_s))
        for part in self.h_s:
            w.raw(part)
        w.count(len(self.ct))
        if isinstance(self.ct, Rows):
            w.raw(self.ct.data)
        else:
            for row in self.ct:
                w.raw(row)

    @classmethod
    def read(cls, r: Reader) -> FabeoCiphertext:
        policy = read_policy(r, "policy")
        h_s0 = r.take(G2_SIZE, "h^s0")
        tau = max(occurrences(policy))
        n = r.count("h^s_j", MAX_LEAVES)
        if n != tau:
            raise MalformedError(f"{r.what} has {n} elements h^s_j but its policy repeats an attribute {tau} times")
        h_s = tuple(r.take(G2_SIZE, f"h^s_{j + 1}") for j in range(n))
        rows = len(policy.leaves())
        n = r.count("ct_i", MAX_LEAVES)
        if n != rows:
            raise MalformedError(f"{r.what} has {n} rows but its policy has {rows} leaves")
        return cls(policy, h_s0, h_s, Rows(r.take(ROW_SIZE * n, f"ct_1..ct_{n}")))


class Rows(Sequence[bytes]):
    """The rows ct_1..ct_n1 as read: one buffer, a row sliced out only when decryption uses it
    (so reading a ciphertext costs no Python work per row)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data) // ROW_SIZE

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        if not -len(self) <= i < len(self):
            raise IndexError("row index out of range")
        i %= len(self)
        return self.data[i * ROW_SIZE : (i + 1) * ROW_SIZE]

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(tuple(self))


def occurrences(policy: Policy) -> tuple[int, ...]:
    """pi(i) for every row i: 1 for an attribute's first leaf, 2 for its second, ... (kept on the policy)."""
    return policy.occurrences()


class FABEO:
    """The FABEO CP-ABE scheme over a pairing group (Riepel-Wee, CCS 2022, Figure 1 left)."""

    name = "fabeo"

    def __init__(self, group: PairingGroup) -> None:
        self.group = group
        self.e_gh = group.pairing(group.g1, group.g2)
        self.H_0 = group.hash_g1(b"fogfed/fabeo/v1/zero")

    def H(self, y: str) -> G1:  # noqa: N802 - the paper's name
        return self.group.hash_g1(b"fogfed/fabeo/v1/attr/" + y.encode("ascii"))

    def setup(self) -> tuple[FabeoPublicKey, FabeoMasterKey]:
        """FABEO Setup: alpha <- Zp, mpk = e(g,h)^alpha (g, h fixed), msk = alpha."""
        alpha = self.group.random_scalar()
        return FabeoPublicKey(self.e_gh**alpha), FabeoMasterKey(alpha)

    def keygen(self, msk: FabeoMasterKey, attributes: list[str]) -> FabeoSecretKey:
        """FABEO KeyGen(msk, S): r <- Zp; (h^r, {H(y)^r}_{y in S}, g^alpha H(0)^r)."""
        G = self.group
        S = normalise_attributes(attributes)
        r = G.random_scalar()
        sk1 = {y: self.H(y) * r for y in S}
        return FabeoSecretKey(G.g2 * r, sk1, G.g1 * msk.alpha + self.H_0 * r)

    def encrypt(self, pk: FabeoPublicKey, policy: Policy) -> tuple[GT, FabeoCiphertext]:
        """FABEO Enc as a KEM: returns (e(g,h)^{alpha s_0}, ct)."""
        G = self.group
        lsss = lsss_matrix(policy, LEWKO_WATERS)
        pi = occurrences(policy)
        s0 = G.random_scalar()
        s = [G.random_scalar() for _ in range(max(pi))]
        v = [int(s0)] + [int(G.random_scalar()) for _ in range(lsss.columns - 1)]
        H0_lambda: dict[int, G1] = {}
        rows = []
        for lam, y, j in zip(lsss.share(v), lsss.labels, pi):
            if lam not in H0_lambda:
                H0_lambda[lam] = self.H_0 * G.scalar(lam)
            rows.append(H0_lambda[lam] + self.H(y) * s[j - 1])
        ct = FabeoCiphertext(
            policy,
            (G.g2 * s0).serialize(),
            tuple((G.g2 * s_j).serialize() for s_j in s),
            tuple(mcl.encode_affine_g1(rows)),
        )
        return pk.e_gh_alpha**s0, ct

    def decrypt(self, sk: FabeoSecretKey, ct: FabeoCiphertext) -> GT | None:
        """FABEO Dec as a KEM: e(sk2, h^s0) prod_j e(K_j, h^s_j) / e(prod ct_i^gamma_i, h^r), or None."""
        G = self.group
        gammas = reconstruction(ct.policy, sk.sk1.keys(), LEWKO_WATERS)
        if gammas is None:
            return None
        labels, pi = ct.policy.leaves(), occurrences(ct.policy)
        coefficients = [None if c == 1 else G.scalar(c) for _, c in gammas]
        C = mcl.combine_affine_g1([ct.ct[i] for i, _ in gammas], coefficients)
        if C is None:
            raise MalformedError("FABEO ciphertext row is not a canonical uncompressed G1 encoding")
        G.require_in_group(C, "FABEO ciphertext: the combination of the rows used")
        K: dict[int, G1] = {}
        for (i, _), c in zip(gammas, coefficients):
            part = sk.sk1[labels[i]] if c is None else sk.sk1[labels[i]] * c
            K[pi[i]] = K[pi[i]] + part if pi[i] in K else part
        pairs = [(sk.sk2, _g2(G, ct.h_s0, "h^s0")), (-C, sk.h_r)]
        pairs += [(K_j, _g2(G, ct.h_s[j - 1], f"h^s_{j}")) for j, K_j in sorted(K.items())]
        return G.pairing_product(pairs)


def _g2(G: PairingGroup, data: bytes, field: str) -> G2:
    return G.decode_g2(data, f"FABEO ciphertext field {field}")
