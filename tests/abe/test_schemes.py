"""FAME and BSW07: correctness exactly when the policy is satisfied, collusion resistance, foreign keys."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogfed import abe
from fogfed.abe.bsw07 import BSW07, BswSecretKey
from fogfed.abe.fabeo import FABEO, FabeoSecretKey
from fogfed.abe.fame import FAME, FameSecretKey
from fogfed.abe.group import group
from fogfed.errors import InputError
from tests.abe.test_policy import UNIVERSE, policies

SCHEMES = {"fame": FAME, "bsw07": BSW07, "fabeo": FABEO}
_keys: dict = {}


def _key(system, attrs: frozenset):
    """Keys are cached per (system, attribute set) so hypothesis examples stay cheap."""
    scheme, pk, msk = system
    if (scheme, attrs) not in _keys:
        _keys[(scheme, attrs)] = abe.keygen(pk, msk, sorted(attrs) or ["unused:attribute"])
    return _keys[(scheme, attrs)]


@given(policy=policies, attrs=st.sets(st.sampled_from(UNIVERSE), max_size=4))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_decrypt_succeeds_iff_attributes_satisfy_the_policy(system, policy, attrs):
    scheme, pk, _ = system
    text, evaluate = policy
    sk = _key(system, frozenset(attrs))
    if _refused(scheme, text):
        return
    ct = abe.encrypt(pk, text, b"file key", aad=b"file-1")
    if evaluate(attrs):
        assert abe.decrypt(pk, sk, ct, aad=b"file-1") == b"file key"
    else:
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(pk, sk, ct, aad=b"file-1")


@given(policy=policies)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_kem_keys_agree_at_the_scheme_level(system, policy):
    scheme, pk, msk = system
    s = SCHEMES[scheme](group)
    sk = s.keygen(msk.value, UNIVERSE)  # satisfies every generated policy
    if _refused(scheme, policy[0]):
        return
    key, ct = s.encrypt(pk.value, abe.parse_policy(policy[0]))
    assert s.decrypt(sk, ct) == key


def _refused(scheme: str, text: str) -> bool:
    """FAME refuses policies that repeat an attribute (RepeatedAttributeError); True if this one was."""
    leaves = abe.parse_policy(text).leaves()
    if scheme != "fame" or len(set(leaves)) == len(leaves):
        return False
    with pytest.raises(abe.RepeatedAttributeError, match="repeats attributes"):
        SCHEMES[scheme](group).encrypt(None, abe.parse_policy(text))
    return True


def _collude(scheme: str, sk1, sk2, take_from_2: set[str]):
    """One key object built from both users' components (each key's own base parts)."""
    a, b = sk1.value, sk2.value
    if scheme == "fame":
        parts = {**a.sk, **{y: b.sk[y] for y in take_from_2}}
        value = FameSecretKey(a.sk0, dict(sorted(parts.items())), a.sk_prime)
    elif scheme == "fabeo":
        parts = {**a.sk1, **{y: b.sk1[y] for y in take_from_2}}
        value = FabeoSecretKey(a.h_r, dict(sorted(parts.items())), a.sk2)
    else:
        parts = {**a.parts, **{y: b.parts[y] for y in take_from_2}}
        value = BswSecretKey(a.D, dict(sorted(parts.items())))
    return abe.SecretKey(scheme, value, sk1.fingerprint)


@pytest.mark.parametrize("policy", ["loc:riyadh and svc:health", "2 of (loc:riyadh, svc:health, role:admin)"])
def test_collusion_of_two_keys_fails(system, policy):
    scheme, pk, msk = system
    alice = abe.keygen(pk, msk, ["loc:riyadh", "svc:other"])
    bob = abe.keygen(pk, msk, ["loc:jeddah", "svc:health"])
    ct = abe.encrypt(pk, policy, b"secret")
    for sk in (alice, bob):
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(pk, sk, ct)
    # Mixed per-attribute components now satisfy the policy on paper, but the
    # per-key randomness does not cancel: decryption must not recover the payload.
    for base, other in ((alice, bob), (bob, alice)):
        missing = {"svc:health"} if base is alice else {"loc:riyadh"}
        mixed = _collude(scheme, base, other, missing)
        assert abe.parse_policy(policy).satisfied_by(mixed.attributes)
        with pytest.raises(abe.DecryptionError) as info:
            abe.decrypt(pk, mixed, ct)
        assert not isinstance(info.value, abe.PolicyNotSatisfied)
        s = SCHEMES[scheme](group)
        key, kem_ct = s.encrypt(pk.value, abe.parse_policy(policy))
        assert s.decrypt(mixed.value, kem_ct) != key


def test_key_of_another_system_fails_cleanly(system):
    scheme, pk, msk = system
    other_pk, other_msk = abe.setup(scheme)
    foreign = abe.keygen(other_pk, other_msk, ["loc:riyadh"])
    ct = abe.encrypt(pk, "loc:riyadh", b"x")
    with pytest.raises(abe.KeyMismatchError, match="another ABE system"):
        abe.decrypt(pk, foreign, ct)
    with pytest.raises(abe.KeyMismatchError, match="another ABE system"):
        abe.decrypt(other_pk, foreign, ct)
    # Relabelled with our fingerprint, the foreign key still cannot decrypt.
    forged = abe.SecretKey(scheme, foreign.value, pk.fingerprint)
    with pytest.raises(abe.DecryptionError, match="failed authentication"):
        abe.decrypt(pk, forged, ct)
    with pytest.raises(InputError, match="another ABE system"):
        abe.keygen(pk, other_msk, ["a"])


def test_key_of_the_other_scheme_is_refused():
    pk_f, msk_f = abe.setup("fame")
    pk_b, msk_b = abe.setup("bsw07")
    ct = abe.encrypt(pk_f, "a", b"x")
    with pytest.raises(abe.KeyMismatchError, match="scheme bsw07"):
        abe.decrypt(pk_f, abe.keygen(pk_b, msk_b, ["a"]), ct)


def test_repeated_attributes_in_a_policy(system):
    """FABEO and BSW07 encrypt them (soundly: test_reuse.py); FAME refuses with a clear error."""
    scheme, pk, msk = system
    sk = abe.keygen(pk, msk, ["a", "c"])
    policy = "(a and b) or (a and c) or 2 of (a, b, a)"
    if scheme == "fame":
        with pytest.raises(abe.RepeatedAttributeError, match=r"'a' \(4 times\).*'b' \(2 times\)") as info:
            abe.encrypt(pk, policy, b"ok")
        assert "fabeo" in info.value.hint
        return
    ct = abe.encrypt(pk, policy, b"ok")
    assert abe.decrypt(pk, sk, ct) == b"ok"
