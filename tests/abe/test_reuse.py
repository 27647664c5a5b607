"""Repeated attributes, attacked from the key holder's side.

The attacker holds an honest key that lacks attribute ``a`` and a ciphertext
whose policy names ``a`` more than once. Over the scheme's own LSSS matrix he
solves for reconstruction coefficients gamma with sum_i gamma_i M_i = e_1 in
which the rows of ``a`` that share key material sum to zero, so ``a``'s key
component would be multiplied by zero: he simply leaves it out and runs the
decryption equations with his gamma. Against FAME's original construction
(one hash set per attribute) and FABEO's reference code (tau = 1) this
recovers the key; against what fogfed encrypts it must not.
"""

from __future__ import annotations

import pytest

from fogfed import abe
from fogfed.abe.fabeo import FABEO, occurrences
from fogfed.abe.fame import FAME
from fogfed.abe.group import ORDER, group
from fogfed.abe.lsss import LEWKO_WATERS, THRESHOLD, lsss_matrix
from fogfed.abe.mcl import combine_affine_g1, encode_affine_g1
from fogfed.protocol.attributes import cover_clause, node_attributes, scoped_policy

# (policy, the attacker's attributes): each key lacks an attribute the policy repeats.
EXAMPLES = [
    ("a and (b or a)", ["b"]),
    ("2 of (a, a, b)", ["b"]),
    ("a and b and (a or c)", ["b", "c"]),
    (scoped_policy("loc:riyadh and svc:health and (loc:riyadh or ff:3)", {3: cover_clause(3, 0, [2])}),
     node_attributes("jeddah", "health", 3, 0)),  # a current member of federation 3 elsewhere (the cover node of
    # its tree's left half: keys hold their path without the root)
]


def solve(policy: abe.Policy, held: set[str], and_gates: str, share_key: callable) -> dict[int, int] | None:
    """gamma (row -> coefficient) with sum gamma_i M_i = e_1, using only held rows and missing-attribute
    rows grouped by ``share_key(row)``, each group summing to zero; None if no such gamma exists."""
    lsss = lsss_matrix(policy, and_gates)
    rows = [i for i in range(len(lsss.rows))]
    groups: dict[object, list[int]] = {}
    for i in rows:
        if lsss.labels[i] not in held:
            groups.setdefault(share_key(i), []).append(i)
    equations = []  # (coefficients over rows, right-hand side)
    for col in range(lsss.columns):
        coeffs = [dict(lsss.rows[i]).get(col, 0) for i in rows]
        equations.append((coeffs, 1 if col == 0 else 0))
    for members in groups.values():
        equations.append(([1 if i in members else 0 for i in rows], 0))
    return _gauss(equations, len(rows))


def _gauss(equations, n):
    """One solution of the linear system mod r (free variables 0), or None."""
    m = [[c % ORDER for c in coeffs] + [rhs % ORDER] for coeffs, rhs in equations]
    pivots, r = [], 0
    for col in range(n):
        pivot = next((k for k in range(r, len(m)) if m[k][col]), None)
        if pivot is None:
            continue
        m[r], m[pivot] = m[pivot], m[r]
        inv = pow(m[r][col], -1, ORDER)
        m[r] = [v * inv % ORDER for v in m[r]]
        for k in range(len(m)):
            if k != r and m[k][col]:
                f = m[k][col]
                m[k] = [(a - f * b) % ORDER for a, b in zip(m[k], m[r])]
        pivots.append(col)
        r += 1
    if any(all(v == 0 for v in row[:n]) and row[n] for row in m):
        return None
    gamma = {col: m[k][n] for k, col in enumerate(pivots) if m[k][n]}
    return gamma


def by_attribute(policy):
    return lambda i: policy.leaves()[i]


# -- the attacker's decryption equations, per scheme --------------------------------------

def fame_attack(sk, ct, gamma) -> object:
    labels = ct.policy.leaves()
    A = [sum_g1([(group.decode_g1(ct.ct[i][l], "row"), c) for i, c in gamma.items()]) for l in range(3)]
    B = [sk.sk_prime[t] + sum_g1([(sk.sk[labels[i]][t], c) for i, c in gamma.items() if labels[i] in sk.sk])
         for t in range(3)]
    return group.pairing_product([(B[t], ct.ct0[t]) for t in range(3)] + [(-A[l], sk.sk0[l]) for l in range(3)])


def fabeo_attack(sk, ct, gamma) -> object:
    labels, pi = ct.policy.leaves(), occurrences(ct.policy)
    C = combine_affine_g1([ct.ct[i] for i in gamma], [group.scalar(c) for c in gamma.values()])
    pairs = [(sk.sk2, group.decode_g2(ct.h_s0, "h^s0")), (-C, sk.h_r)]
    for j in sorted({pi[i] for i in gamma}):
        K = sum_g1([(sk.sk1[labels[i]], c) for i, c in gamma.items() if pi[i] == j and labels[i] in sk.sk1])
        pairs.append((K, group.decode_g2(ct.h_s[j - 1], f"h^s_{j}")))
    return group.pairing_product(pairs)


def bsw07_attack(sk, ct, gamma) -> object:
    labels = ct.policy.leaves()
    pairs = [(ct.C, sk.D)]
    for i, c in gamma.items():
        if labels[i] in sk.parts:  # the missing attribute's leaves: nothing to pair them with
            D_j, D_j_prime = sk.parts[labels[i]]
            C_y, C_y_prime = group.decode_g2(ct.leaves[i][0], "C_y"), group.decode_g1(ct.leaves[i][1], "C'_y")
            pairs += [(-(D_j * group.scalar(c)), C_y), (C_y_prime * group.scalar(c), D_j_prime)]
    return group.pairing_product(pairs)


def sum_g1(terms):
    acc = group.g1 - group.g1
    for point, c in terms:
        acc = acc + point * group.scalar(c)
    return acc


# -- ciphertexts of the constructions without sound reuse (positive controls) ----------------

def fame_original_encrypt(fame: FAME, pk, policy):
    """FAME as in the paper and as fogfed encrypted before the fix: one hash set per attribute."""
    s1, s2 = group.random_scalar(), group.random_scalar()
    ct0 = (pk.H1 * s1, pk.H2 * s2, group.g2 * (s1 + s2))
    rows = tuple(tuple((b[l][0] * s1 + b[l][1] * s2).serialize() for l in range(3)) for b in fame._row_bases(policy))
    from fogfed.abe.fame import FameCiphertext

    return (pk.T1**s1) * (pk.T2**s2), FameCiphertext(policy, ct0, rows)


def fabeo_reference_encrypt(fabeo: FABEO, pk, policy):
    """FABEO as in the authors' reference code: one randomiser s_1 for every row (tau = 1)."""
    from fogfed.abe.fabeo import FabeoCiphertext

    lsss = lsss_matrix(policy, LEWKO_WATERS)
    s0, s1 = group.random_scalar(), group.random_scalar()
    v = [int(s0)] + [int(group.random_scalar()) for _ in range(lsss.columns - 1)]
    rows = [fabeo.H_0 * group.scalar(lam) + fabeo.H(y) * s1 for lam, y in zip(lsss.share(v), lsss.labels)]
    h_s = tuple((group.g2 * s1).serialize() for _ in range(max(occurrences(policy))))
    return pk.e_gh_alpha**s0, FabeoCiphertext(policy, (group.g2 * s0).serialize(), h_s, tuple(encode_affine_g1(rows)))


@pytest.fixture(scope="module")
def systems():
    return {name: abe.setup(name) for name in ("fame", "fabeo", "bsw07")}


@pytest.mark.parametrize("policy_text, held", EXAMPLES)
def test_the_attack_is_real_against_constructions_without_sound_reuse(systems, policy_text, held):
    policy = abe.parse_policy(policy_text)
    assert not policy.satisfied_by(held)
    gamma = solve(policy, set(held), LEWKO_WATERS, by_attribute(policy))
    assert gamma is not None and any(policy.leaves()[i] not in held for i in gamma)  # uses the missing rows
    for name, encrypt, attack in (("fame", fame_original_encrypt, fame_attack),
                                  ("fabeo", fabeo_reference_encrypt, fabeo_attack)):
        pk, msk = systems[name]
        scheme = abe.keys.scheme_named(name)
        key, ct = encrypt(scheme, pk.value, policy)
        sk = scheme.keygen(msk.value, held)
        assert scheme.decrypt(sk, ct) is None  # honest decryption refuses: the key does not satisfy
        assert attack(sk, ct, gamma) == key, name  # ... but the attacker's coefficients open it


@pytest.mark.parametrize("policy_text, held", EXAMPLES)
def test_fame_refuses_repeated_attributes(systems, policy_text, held):
    pk, _ = systems["fame"]
    with pytest.raises(abe.RepeatedAttributeError, match="repeats attributes") as info:
        abe.encrypt(pk, policy_text, b"file key")
    assert "fabeo" in info.value.hint and isinstance(info.value, abe.errors.InputError)


@pytest.mark.parametrize("policy_text, held", EXAMPLES)
@pytest.mark.parametrize("name", ["fabeo", "bsw07"])
def test_reuse_is_sound(systems, name, policy_text, held):
    """The coefficients that defeat FAME and the reference code give a wrong key; honest keys still decrypt."""
    pk, msk = systems[name]
    scheme = abe.keys.scheme_named(name)
    policy = abe.parse_policy(policy_text)
    key, ct = scheme.encrypt(pk.value, policy)
    sk = scheme.keygen(msk.value, held)
    gamma = solve(policy, set(held), LEWKO_WATERS if name == "fabeo" else THRESHOLD, by_attribute(policy))
    attack = fabeo_attack if name == "fabeo" else bsw07_attack
    assert gamma is not None and attack(sk, ct, gamma) != key
    if name == "fabeo":  # grouped as FABEO's ciphertext shares randomness (attribute, occurrence): no gamma at all
        pi = occurrences(policy)
        assert solve(policy, set(held), LEWKO_WATERS, lambda i: (policy.leaves()[i], pi[i])) is None
    assert scheme.decrypt(scheme.keygen(msk.value, sorted(policy.attributes())), ct) == key
    full = abe.keygen(pk, msk, sorted(policy.attributes()))
    assert abe.decrypt(pk, full, abe.encrypt(pk, policy, b"k")) == b"k"


def test_attack_helper_recovers_the_key_with_honest_coefficients(systems):
    """Control for the attack code itself: with a satisfying key and solved gamma it decrypts."""
    for name, attack in (("fabeo", fabeo_attack), ("bsw07", bsw07_attack)):
        pk, msk = systems[name]
        scheme = abe.keys.scheme_named(name)
        policy = abe.parse_policy("a and (b or c) and 2 of (d, e, f)")
        key, ct = scheme.encrypt(pk.value, policy)
        held = {"a", "c", "d", "f"}
        gamma = solve(policy, held, THRESHOLD if name == "bsw07" else LEWKO_WATERS, by_attribute(policy))
        assert attack(scheme.keygen(msk.value, sorted(held)), ct, gamma) == key


def test_fabeo_tau_and_decryption_use_one_pairing_per_occurrence_used(systems):
    pk, msk = systems["fabeo"]
    policy = abe.parse_policy("(x and y and f1) or (x and y and f2) or (x and y and f3)")
    assert occurrences(policy) == (1, 1, 1, 2, 2, 1, 3, 3, 1)
    key, ct = abe.keys.scheme_named("fabeo").encrypt(pk.value, policy)
    assert len(ct.h_s) == 3
    sk = abe.keys.scheme_named("fabeo").keygen(msk.value, ["x", "y", "f2"])
    assert abe.keys.scheme_named("fabeo").decrypt(sk, ct) == key


def test_federations_policy_never_repeats_and_matches_the_repeated_form(systems):
    from fogfed.protocol.attributes import federations_policy

    covers = {2: "ep:2:7", 1: "ep:1:4 or ep:1:5"}
    text = federations_policy("Riyadh", "health", covers)
    policy = abe.parse_policy(text)
    assert len(set(policy.leaves())) == len(policy.leaves())
    repeated = abe.parse_policy("(loc:riyadh and svc:health and ff:1 and (ep:1:4 or ep:1:5)) or "
                                "(loc:riyadh and svc:health and ff:2 and ep:2:7)")
    for held in (["loc:riyadh", "svc:health", "ff:1", "ep:1:5"], ["loc:riyadh", "svc:health", "ff:2", "ep:2:7"],
                 ["loc:riyadh", "svc:health", "ff:2", "ep:1:5"], ["svc:health", "ff:1", "ep:1:4"]):
        assert policy.satisfied_by(held) == repeated.satisfied_by(held)
    for name in ("fame", "fabeo", "bsw07"):  # every scheme encrypts it
        pk, msk = systems[name]
        sk = abe.keygen(pk, msk, ["loc:riyadh", "svc:health", "ff:2", "ep:2:7"])
        assert abe.decrypt(pk, sk, abe.encrypt(pk, text, b"k")) == b"k"
    with pytest.raises(abe.errors.InputError, match="repeat attributes: ep:1:4"):
        federations_policy("riyadh", "health", {1: "ep:1:4", 2: "ep:1:4 and ep:2:1"})
