"""Sealed key delivery, attacked: wrong recipient, any flipped byte, wrong sender."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings, strategies as st

from fogfed.errors import InputError
from fogfed.keys import NodeIdentity, SealError, open_sealed, seal

NODE = NodeIdentity.generate()
TAS = NodeIdentity.generate()
SECRET = os.urandom(300)
SIGNED = seal(NODE.enc_public_key, SECRET, aad=b"ff:1", sender=TAS.account)
UNSIGNED = seal(NODE.enc_public_key, SECRET)


def test_round_trip_signed_and_unsigned():
    assert open_sealed(NODE, SIGNED, aad=b"ff:1", expected_sender=TAS.address) == SECRET
    assert open_sealed(NODE, SIGNED, aad=b"ff:1") == SECRET
    assert open_sealed(NODE.enc_private, UNSIGNED) == SECRET
    assert open_sealed(NODE, seal(NODE.enc_public_key, b"")) == b""
    # fresh ephemeral key each time: equal plaintexts never give equal boxes
    assert seal(NODE.enc_public_key, SECRET) != UNSIGNED


def test_wrong_recipient():
    with pytest.raises(SealError, match="not this key") as info:
        open_sealed(NodeIdentity.generate(), SIGNED, aad=b"ff:1")
    assert info.value.reason == "wrong_recipient"


def test_recipient_field_rewritten_to_attacker_key_fails():
    attacker = X25519PrivateKey.generate()
    from fogfed.keys.identity import x25519_public_bytes
    forged = UNSIGNED[:2] + x25519_public_bytes(attacker) + UNSIGNED[34:]
    with pytest.raises(SealError) as info:
        open_sealed(attacker, forged)
    assert info.value.reason == "tampered"


@settings(max_examples=200, deadline=None)
@given(box=st.sampled_from([SIGNED, UNSIGNED]), data=st.data())
def test_any_flipped_bit_fails(box, data):
    pos = data.draw(st.integers(0, len(box) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(box)
    damaged[pos] ^= 1 << bit
    aad = b"ff:1" if box is SIGNED else b""
    with pytest.raises(SealError):
        open_sealed(NODE, bytes(damaged), aad=aad)


@settings(max_examples=50, deadline=None)
@given(cut=st.integers(0, len(SIGNED) - 1))
def test_truncated_fails(cut):
    with pytest.raises(SealError):
        open_sealed(NODE, SIGNED[:cut], aad=b"ff:1")


def test_wrong_aad_fails():
    with pytest.raises(SealError) as info:
        open_sealed(NODE, SIGNED, aad=b"ff:2")
    assert info.value.reason == "tampered"


def test_wrong_expected_sender():
    impostor = NodeIdentity.generate()
    forged = seal(NODE.enc_public_key, b"attacker key", sender=impostor.account)
    with pytest.raises(SealError, match="not by the expected") as info:
        open_sealed(NODE, forged, expected_sender=TAS.address)
    assert info.value.reason == "wrong_sender"


def test_unsigned_box_refused_when_a_sender_is_expected():
    with pytest.raises(SealError) as info:
        open_sealed(NODE, UNSIGNED, expected_sender=TAS.address)
    assert info.value.reason == "unsigned"


def test_stripping_the_signature_is_detected():
    # Clear the signed flag, drop sender address and signature: GCM's aad changes, so it fails.
    stripped = bytes([SIGNED[0], 0]) + SIGNED[2:66] + SIGNED[86:-65]
    with pytest.raises(SealError) as info:
        open_sealed(NODE, stripped, aad=b"ff:1")
    assert info.value.reason == "tampered"


def test_signature_swapped_for_attacker_with_same_sender_field_fails():
    impostor = NodeIdentity.generate()
    resigned = SIGNED[:-65] + seal(NODE.enc_public_key, b"x", sender=impostor.account)[-65:]
    with pytest.raises(SealError, match="does not match its sender"):
        open_sealed(NODE, resigned, aad=b"ff:1", expected_sender=TAS.address)


@pytest.mark.parametrize("pub", [b"", b"\x00" * 31, "00" * 32])
def test_bad_recipient_key(pub):
    with pytest.raises(InputError):
        seal(pub, b"x")


def test_low_order_recipient_key_refused():
    with pytest.raises(InputError, match="low-order"):
        seal(b"\x00" * 32, b"x")


def test_bad_expected_sender_and_version():
    with pytest.raises(InputError, match="not an Ethereum address"):
        open_sealed(NODE, SIGNED, expected_sender="TAS")
    with pytest.raises(SealError, match="version 2"):
        open_sealed(NODE, b"\x02" + SIGNED[1:], aad=b"ff:1")


def test_malleated_signature_refused():
    from fogfed.keys.signing import _SECP256K1_N, recover_signer, sign
    msg = b"m" * 32
    sig = sign(TAS.account, msg)
    assert recover_signer(msg, sig) == TAS.address
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high_s = r + (_SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # same signer, other form
    assert recover_signer(msg, high_s) is None
    assert recover_signer(msg, sig[:64] + bytes([v - 27])) is None
    assert recover_signer(msg, sig[:64] + bytes([v + 32])) is None
