"""The high-level API: defaults, misuse, associated data, sizes, KEM."""

from __future__ import annotations

import pytest

from fogfed import abe
from fogfed.errors import FogfedError, InputError


def test_defaults_to_fabeo_and_normalises_attributes(fame_system):
    pk, msk = fame_system
    assert pk.scheme == "fame" and abe.setup()[0].scheme == "fabeo" == abe.DEFAULT_SCHEME
    sk = abe.keygen(pk, msk, ["SVC:Health", "loc:riyadh", "svc:health"])
    assert sk.attributes == ("loc:riyadh", "svc:health")
    ct = abe.encrypt(pk, "Loc:Riyadh AND svc:HEALTH", b"payload")
    assert abe.decrypt(pk, sk, ct) == b"payload"


def test_ciphertexts_are_fresh_and_bound_to_aad(fame_system):
    pk, msk = fame_system
    sk = abe.keygen(pk, msk, ["a"])
    c1, c2 = abe.encrypt(pk, "a", b"same", aad=b"file-1"), abe.encrypt(pk, "a", b"same", aad=b"file-1")
    assert c1 != c2
    with pytest.raises(abe.DecryptionError, match="failed authentication"):
        abe.decrypt(pk, sk, c1, aad=b"file-2")
    assert abe.decrypt(pk, sk, c1, aad=b"file-1") == b"same"


def test_empty_and_largest_payloads(fame_system):
    pk, msk = fame_system
    sk = abe.keygen(pk, msk, ["a"])
    assert abe.decrypt(pk, sk, abe.encrypt(pk, "a", b"")) == b""
    big = bytes(abe.MAX_PAYLOAD)
    assert abe.decrypt(pk, sk, abe.encrypt(pk, "a", big)) == big
    with pytest.raises(InputError, match="abe.stream"):
        abe.encrypt(pk, "a", big + b"x")


def test_misuse_gives_clear_errors(fame_system):
    pk, msk = fame_system
    with pytest.raises(InputError, match="unknown ABE scheme"):
        abe.setup("charm")
    with pytest.raises(InputError, match="not one string"):
        abe.keygen(pk, msk, "loc:riyadh")
    with pytest.raises(InputError, match="invalid attribute"):
        abe.keygen(pk, msk, ["loc riyadh"])
    with pytest.raises(InputError, match="invalid attribute"):
        abe.keygen(pk, msk, ["and"])
    with pytest.raises(InputError, match="too many attributes"):
        abe.keygen(pk, msk, [f"a{i}" for i in range(257)])
    with pytest.raises(InputError, match="payload must be bytes"):
        abe.encrypt(pk, "a", "text")
    with pytest.raises(abe.PolicySyntaxError) as info:
        abe.encrypt(pk, "a and (b", b"x")
    assert info.value.position == 8
    with pytest.raises(InputError, match="abe.PublicKey"):
        abe.encrypt(msk, "a", b"x")
    with pytest.raises(InputError, match="abe.MasterKey"):
        abe.keygen(pk, None, ["a"])


def test_every_failure_is_a_fogfed_error():
    for cls in (abe.DecryptionError, abe.PolicyNotSatisfied, abe.MalformedError, abe.PolicySyntaxError, abe.KeyMismatchError):
        assert issubclass(cls, FogfedError)
    assert issubclass(abe.PolicyNotSatisfied, abe.DecryptionError)
    assert issubclass(abe.MalformedError, InputError) and issubclass(abe.PolicySyntaxError, InputError)


def test_kem_round_trip_and_tampering(system):
    scheme, pk, msk = system
    sk = abe.keygen(pk, msk, ["svc:health"])
    key, enc = abe.kem_encrypt(pk, "svc:health or role:admin")
    assert len(key) == 32 and abe.kem_decrypt(pk, sk, enc) == key
    key2, enc2 = abe.kem_encrypt(pk, "svc:health or role:admin")
    assert key2 != key
    with pytest.raises(abe.PolicyNotSatisfied):
        abe.kem_decrypt(pk, abe.keygen(pk, msk, ["role:user"]), enc)
    # a modified encapsulation never yields the same key
    for i in range(7, len(enc), 11):
        bad = bytearray(enc)
        bad[i] ^= 0x04
        try:
            assert abe.kem_decrypt(pk, sk, bytes(bad)) != key
        except (abe.MalformedError, abe.DecryptionError):
            pass


def test_policy_object_api():
    pol = abe.parse_policy("2 of (loc:riyadh, svc:health, role:admin)")
    assert pol.satisfied_by(["svc:health", "role:admin"]) and not pol.satisfied_by(["role:admin"])
    assert pol.attributes() == {"loc:riyadh", "svc:health", "role:admin"}
    assert str(pol) == "2 of (loc:riyadh, svc:health, role:admin)"
    assert abe.parse_policy(pol) is pol
