"""FAME: Agrawal and Chase, "FAME: Fast Attribute-based Message Encryption", ACM CCS 2017.

The CP-ABE scheme of Section 4 (under the decisional linear assumption,
k = 2), used here as a KEM: ``encrypt`` returns the key T1^s1 * T2^s2 in GT
and the ciphertext without the ``ct'`` component. Fully secure in the random
oracle model, unbounded attributes, and decryption costs 6 pairings (one
multi-pairing) whatever the policy size.

Attributes must NOT repeat in a policy: every attribute has one key
component and all rows of an attribute use the same hashes H(y l t), so a key
without y can pick reconstruction coefficients that sum to zero over y's rows
and decrypt without y's component (the scheme's reference code says "re-use
not allowed"). ``encrypt`` therefore refuses such policies
(``RepeatedAttributeError``); FABEO (fabeo.py) supports repeats soundly.
Ciphertexts made before this check still decrypt for keys that satisfy
their policy.

Element placement on the Type-3 pairing (G = G1, H = G2 in the paper's
notation): everything per attribute or per policy row lives in G1 (cheaper,
48 bytes): key components sk_{y,t}, sk'_t and ciphertext rows ct_{i,l}, and
the hash H(.) onto G1. Only the constant-size parts sit in G2: the public
H1 = h^a1, H2 = h^a2, the key's sk_0 and the ciphertext's ct_0 (three each).

Speed-ups that do not change the scheme:
- policies go to LSSS matrices by Lewko-Waters (lsss.py), so for AND/OR
  formulas M has entries 0/+-1 and the reconstruction coefficients gamma_i
  are 1: the products over rows are group additions;
- each row's bases prod_j H(0 j l t)^{M_ij} * H(rho(i) l t) do not depend on
  the randomness, so they are computed (and cached per policy) first and then
  raised to s1 and s2: 6 G1 multiplications per row, none per column;
- hashes are cached; labels are ``fogfed/fame/v1/attr/<l>/<t>/<y>`` and
  ``fogfed/fame/v1/col/<j>/<l>/<t>`` (the paper's H(y l t) and H(0 j l t)).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fogfed.abe.encoding import Reader, Writer, read_attributes, read_policy
from fogfed.abe.errors import MalformedError, RepeatedAttributeError
from fogfed.abe.group import G1, G1_SIZE, G2, GT, PairingGroup, Scalar
from fogfed.abe.lsss import LEWKO_WATERS, lsss_matrix, reconstruction
from fogfed.abe.policy import Policy, normalise_attributes

__all__ = ["FAME", "FameCiphertext", "FameMasterKey", "FamePublicKey", "FameSecretKey"]


@dataclass(frozen=True)
class FamePublicKey:
    """pk = (h, H1, H2, T1, T2); h is the fixed generator of G2."""

    H1: G2
    H2: G2
    T1: GT
    T2: GT

    def write(self, w: Writer) -> None:
        w.element(self.H1, self.H2, self.T1, self.T2)

    @classmethod
    def read(cls, r: Reader) -> FamePublicKey:
        return cls(r.g2("H1"), r.g2("H2"), r.gt("T1"), r.gt("T2"))


@dataclass(frozen=True)
class FameMasterKey:
    """msk = (g, h, a1, a2, b1, b2, g^d1, g^d2, g^d3); g, h are the fixed generators."""

    a1: Scalar
    a2: Scalar
    b1: Scalar
    b2: Scalar
    g_d1: G1
    g_d2: G1
    g_d3: G1

    def write(self, w: Writer) -> None:
        w.element(self.a1, self.a2, self.b1, self.b2, self.g_d1, self.g_d2, self.g_d3)

    @classmethod
    def read(cls, r: Reader) -> FameMasterKey:
        return cls(
            r.scalar("a1"), r.scalar("a2"), r.scalar("b1"), r.scalar("b2"), r.g1("g^d1"), r.g1("g^d2"), r.g1("g^d3")
        )


@dataclass(frozen=True)
class FameSecretKey:
    """sk = (sk_0, {sk_y,1, sk_y,2, sk_y,3}_y in S, sk'_1, sk'_2, sk'_3)."""

    sk0: tuple[G2, G2, G2]
    sk: dict[str, tuple[G1, G1, G1]]
    sk_prime: tuple[G1, G1, G1]

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.sk)

    def write(self, w: Writer) -> None:
        w.element(*self.sk0, *self.sk_prime)
        w.count(len(self.sk))
        for y, parts in self.sk.items():
            w.text(y)
            w.element(*parts)

    @classmethod
    def read(cls, r: Reader) -> FameSecretKey:
        sk0 = (r.g2("sk_0,1"), r.g2("sk_0,2"), r.g2("sk_0,3"))
        sk_prime = (r.g1("sk'_1"), r.g1("sk'_2"), r.g1("sk'_3"))
        sk = read_attributes(r, "sk_y", lambda f: (r.g1(f + ",1"), r.g1(f + ",2"), r.g1(f + ",3")))
        return cls(sk0, sk, sk_prime)


@dataclass(frozen=True)
class FameCiphertext:
    """ct = (ct_0, ct_1..ct_n1) for the policy (M, rho); ct' is replaced by the KEM key.

    Rows are kept as their encodings (3 x 48 bytes) and decoded when
    decryption uses them; their combination's subgroup is tested there.
    """

    policy: Policy
    ct0: tuple[G2, G2, G2]
    ct: tuple[tuple[bytes, bytes, bytes], ...]

    def write(self, w: Writer) -> None:
        w.text(str(self.policy))
        w.element(*self.ct0)
        w.count(len(self.ct))
        for row in self.ct:
            for part in row:
                w.raw(part)

    @classmethod
    def read(cls, r: Reader) -> FameCiphertext:
        policy = read_policy(r, "policy")
        ct0 = (r.g2("ct_0,1"), r.g2("ct_0,2"), r.g2("ct_0,3"))
        rows = len(policy.leaves())
        n = r.count("ct_i", rows)
        if n != rows:
            raise MalformedError(f"{r.what} has {n} rows but its policy has {rows} leaves")
        ct = tuple(tuple(r.take(G1_SIZE, f"ct_{i},{l}") for l in (1, 2, 3)) for i in range(n))  # noqa: E741
        return cls(policy, ct0, ct)


class FAME:
    """The FAME CP-ABE scheme over a pairing group (Agrawal-Chase, CCS 2017, Section 4)."""

    name = "fame"

    def __init__(self, group: PairingGroup) -> None:
        self.group = group
        self.e_gh = group.pairing(group.g1, group.g2)

    # The random oracle H of the paper, with domain separation between
    # attribute labels H(y l t) and column labels H(0 j l t).
    def H_attr(self, y: str, l: int, t: int) -> G1:  # noqa: N802, E741 - the paper's names
        return self.group.hash_g1(b"fogfed/fame/v1/attr/%d/%d/" % (l, t) + y.encode("ascii"))

    def H_col(self, j: int, l: int, t: int) -> G1:  # noqa: N802, E741
        return self.group.hash_g1(b"fogfed/fame/v1/col/%d/%d/%d" % (j, l, t))

    def setup(self) -> tuple[FamePublicKey, FameMasterKey]:
        """FAME Setup: pk = (h, H1, H2, T1, T2), msk = (g, h, a1, a2, b1, b2, g^d1, g^d2, g^d3)."""
        G = self.group
        a1, a2, b1, b2 = (G.random_scalar() for _ in range(4))
        d1, d2, d3 = (G.random_scalar() for _ in range(3))
        pk = FamePublicKey(
            H1=G.g2 * a1,
            H2=G.g2 * a2,
            T1=self.e_gh ** (d1 * a1 + d3),
            T2=self.e_gh ** (d2 * a2 + d3),
        )
        msk = FameMasterKey(a1, a2, b1, b2, G.g1 * d1, G.g1 * d2, G.g1 * d3)
        return pk, msk

    def keygen(self, msk: FameMasterKey, attributes: list[str]) -> FameSecretKey:
        """FAME KeyGen(msk, S): sk_0 in G2, three G1 components per attribute y in S, sk' in G1."""
        G = self.group
        g = G.g1
        S = normalise_attributes(attributes)
        r1, r2 = G.random_scalar(), G.random_scalar()
        e = (msk.b1 * r1, msk.b2 * r2, r1 + r2)  # exponents of H(. 1 t), H(. 2 t), H(. 3 t)
        inv_a = (~msk.a1, ~msk.a2)
        e_over_a = [[e[l] * inv_a[t] for l in range(3)] for t in range(2)]
        sk0 = (G.g2 * e[0], G.g2 * e[1], G.g2 * e[2])

        def component(h_of, sigma: Scalar, t: int) -> G1:
            return h_of(1, t + 1) * e_over_a[t][0] + h_of(2, t + 1) * e_over_a[t][1] + (
                h_of(3, t + 1) * e_over_a[t][2] + g * (sigma * inv_a[t])
            )

        sk: dict[str, tuple[G1, G1, G1]] = {}
        for y in S:
            sigma_y = G.random_scalar()
            h_y = lambda l, t, y=y: self.H_attr(y, l, t)  # noqa: E731, E741
            sk[y] = (component(h_y, sigma_y, 0), component(h_y, sigma_y, 1), g * (-sigma_y))
        sigma_p = G.random_scalar()
        h_0 = lambda l, t: self.H_col(1, l, t)  # noqa: E731, E741
        sk_prime = (
            msk.g_d1 + component(h_0, sigma_p, 0),
            msk.g_d2 + component(h_0, sigma_p, 1),
            msk.g_d3 - g * sigma_p,
        )
        return FameSecretKey(sk0, sk, sk_prime)

    def encrypt(self, pk: FamePublicKey, policy: Policy) -> tuple[GT, FameCiphertext]:
        """FAME Encrypt as a KEM: returns (T1^s1 * T2^s2, ct); refuses a policy that repeats an attribute."""
        RepeatedAttributeError.check(policy, "fame")
        G = self.group
        s1, s2 = G.random_scalar(), G.random_scalar()
        ct0 = (pk.H1 * s1, pk.H2 * s2, G.g2 * (s1 + s2))
        ct = tuple(
            tuple((b[l][0] * s1 + b[l][1] * s2).serialize() for l in range(3))  # noqa: E741
            for b in self._row_bases(policy)
        )
        key = (pk.T1**s1) * (pk.T2**s2)
        return key, FameCiphertext(policy, ct0, ct)

    def decrypt(self, sk: FameSecretKey, ct: FameCiphertext) -> GT | None:
        """FAME Decrypt as a KEM: den/num = T1^s1 * T2^s2, or None if sk does not satisfy the policy."""
        G = self.group
        gammas = reconstruction(ct.policy, sk.sk.keys(), LEWKO_WATERS)
        if gammas is None:
            return None
        labels = ct.policy.leaves()
        rows = {  # only the rows used: on the curve, canonical, not the identity
            i: [G.decode_g1_unchecked(part, f"FAME ciphertext field ct_{i},{l + 1}") for l, part in enumerate(ct.ct[i])]
            for i, _ in gammas
        }
        A = [_combine(G, [(rows[i][l], c) for i, c in gammas]) for l in range(3)]
        for l in range(3):  # noqa: E741
            G.require_in_group(A[l], f"FAME ciphertext: the combination of the rows used (l = {l + 1})")
        B = [sk.sk_prime[t] + _combine(G, [(sk.sk[labels[i]][t], c) for i, c in gammas]) for t in range(3)]
        # den / num = prod_t e(B_t, ct_0,t) * prod_l e(-A_l, sk_0,l), one multi-pairing
        return G.pairing_product([(B[t], ct.ct0[t]) for t in range(3)] + [(-A[l], sk.sk0[l]) for l in range(3)])

    def _row_bases(self, policy: Policy) -> tuple[tuple[tuple[G1, G1], ...], ...]:
        return _row_bases(self, policy)


@lru_cache(maxsize=256)
def _row_bases(scheme: FAME, policy: Policy) -> tuple[tuple[tuple[G1, G1], ...], ...]:
    """For each row i and l = 1..3, t = 1, 2: H(rho(i) l t) * prod_j H(0 j l t)^{M_ij}."""
    G = scheme.group
    lsss = lsss_matrix(policy, LEWKO_WATERS)
    out = []
    for row, y in zip(lsss.rows, lsss.labels):
        bases = []
        for l in range(1, 4):  # noqa: E741
            pair = []
            for t in (1, 2):
                terms = [(scheme.H_col(j + 1, l, t), m) for j, m in row]
                pair.append(scheme.H_attr(y, l, t) + _combine(G, terms))
            bases.append(tuple(pair))
        out.append(tuple(bases))
    return tuple(out)


def _combine(G: PairingGroup, terms: list[tuple[G1, int]]) -> G1:
    """sum(c * P) with c mod r; +-1 costs an addition, other coefficients a multiplication."""
    acc = G1()
    for point, c in terms:
        if c == 1:
            acc = acc + point
        elif c == G.order - 1:
            acc = acc - point
        else:
            acc = acc + point * G.scalar(c)
    return acc
