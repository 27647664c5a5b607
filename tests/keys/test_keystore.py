"""Keystore: round trip, wrong passphrase, damage of every kind, permissions."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fogfed.errors import InputError
from fogfed.keys import (
    KdfParams, MalformedKeystore, NodeIdentity, PassphraseUnavailable, WrongPassphrase,
    load_keystore, passphrase_from_env_or_prompt, save_keystore,
)
from fogfed.keys.keystore import _canonical, read_keystore_kind

PASS = "correct horse battery"
SECRETS = {"master_key": os.urandom(200), "sig.key": b"\x00" * 32}


@pytest.fixture(scope="module")
def keystore_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ks") / "master.json"
    save_keystore(path, SECRETS, PASS, kind="tas-master")
    return path.read_bytes()


def _write(tmp_path, data: bytes):
    path = tmp_path / "ks.json"
    path.write_bytes(data)
    return path


def test_round_trip_and_permissions(tmp_path):
    path = tmp_path / "sub" / "master.json"
    save_keystore(path, SECRETS, PASS, kind="tas-master")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_keystore(path, PASS) == SECRETS
    assert load_keystore(path, PASS, kind="tas-master") == SECRETS
    assert read_keystore_kind(path) == "tas-master"
    # no plaintext secret and no temp file left behind
    assert SECRETS["master_key"].hex() not in path.read_text()
    assert os.listdir(path.parent) == ["master.json"]


def test_wrong_passphrase_is_a_clear_error(tmp_path, keystore_bytes):
    path = _write(tmp_path, keystore_bytes)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        load_keystore(path, PASS + "!")


def test_wrong_kind_refused(tmp_path, keystore_bytes):
    path = _write(tmp_path, keystore_bytes)
    with pytest.raises(MalformedKeystore, match="'tas-master', not a 'node-identity'"):
        load_keystore(path, PASS, kind="node-identity")


def test_never_overwrites_silently(tmp_path, keystore_bytes):
    path = _write(tmp_path, keystore_bytes)
    with pytest.raises(InputError, match="already exists"):
        save_keystore(path, {"x": b"1"}, PASS, kind="tas-master")
    assert path.read_bytes() == keystore_bytes


@pytest.mark.parametrize("cut", [0, 1, 100, -2])
def test_truncated(tmp_path, keystore_bytes, cut):
    path = _write(tmp_path, keystore_bytes[:cut] if cut >= 0 else keystore_bytes[:cut])
    with pytest.raises(MalformedKeystore):
        load_keystore(path, PASS)


def test_wrong_version(tmp_path, keystore_bytes):
    doc = json.loads(keystore_bytes)
    doc["version"] = 2
    path = _write(tmp_path, json.dumps(doc).encode())
    with pytest.raises(MalformedKeystore, match="unsupported version 2"):
        load_keystore(path, PASS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_is_malformed_never_wrong_secrets(tmp_path, keystore_bytes, data):
    pos = data.draw(st.integers(0, len(keystore_bytes) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(keystore_bytes)
    damaged[pos] ^= 1 << bit
    path = _write(tmp_path, bytes(damaged))
    try:
        secrets = load_keystore(path, PASS)
    except MalformedKeystore:
        return
    # A flip inside JSON whitespace or hex letter case may leave the meaning intact.
    assert secrets == SECRETS


def _recompute_checksum(doc: dict) -> dict:
    import hashlib
    rest = {k: v for k, v in doc.items() if k != "checksum"}
    return {**rest, "checksum": hashlib.sha256(_canonical(rest)).hexdigest()}


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "kind"])
def test_deliberate_edit_with_fixed_checksum_is_caught_by_gcm(tmp_path, keystore_bytes, field):
    doc = json.loads(keystore_bytes)
    if field == "kind":
        doc["kind"] = "other-kind"
    else:
        raw = bytearray.fromhex(doc[field])
        raw[0] ^= 1
        doc[field] = raw.hex()
    path = _write(tmp_path, json.dumps(_recompute_checksum(doc)).encode())
    with pytest.raises(MalformedKeystore, match="altered"):
        load_keystore(path, PASS)


def test_hostile_kdf_cost_refused_before_deriving(tmp_path, keystore_bytes):
    doc = json.loads(keystore_bytes)
    doc["kdf"]["memory_cost"] = 1 << 40
    path = _write(tmp_path, json.dumps(_recompute_checksum(doc)).encode())
    with pytest.raises(MalformedKeystore, match="memory_cost"):
        load_keystore(path, PASS)


def test_weak_kdf_refused_on_save(tmp_path):
    with pytest.raises(MalformedKeystore, match="memory_cost"):
        save_keystore(tmp_path / "k", {"a": b"1"}, PASS, kind="x", kdf=KdfParams(memory_cost=1024))


@pytest.mark.parametrize("secrets, passphrase, kind, match", [
    ({}, PASS, "x", "at least one"),
    ({"A B": b"1"}, PASS, "x", "secret name"),
    ({"a": "text"}, PASS, "x", "must be bytes"),
    ({"a": b"1"}, "short", "x", "at least 8"),
    ({"a": b"1"}, PASS, "Bad Kind", "kind"),
])
def test_bad_save_input(tmp_path, secrets, passphrase, kind, match):
    with pytest.raises(InputError, match=match):
        save_keystore(tmp_path / "k", secrets, passphrase, kind=kind)
    assert not (tmp_path / "k").exists()


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_keystore(tmp_path / "nope.json", PASS)


def test_passphrase_from_env(monkeypatch):
    monkeypatch.setenv("FOGFED_TEST_PW", "from-env-123")
    assert passphrase_from_env_or_prompt("FOGFED_TEST_PW") == "from-env-123"
    monkeypatch.setenv("FOGFED_TEST_PW", "")
    with pytest.raises(PassphraseUnavailable, match="set but empty"):
        passphrase_from_env_or_prompt("FOGFED_TEST_PW")


def test_no_env_no_terminal_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("FOGFED_TEST_PW", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    with pytest.raises(PassphraseUnavailable, match="not running on a terminal") as info:
        passphrase_from_env_or_prompt("FOGFED_TEST_PW")
    assert "FOGFED_TEST_PW" in info.value.hint


def test_identity_round_trip(tmp_path):
    me = NodeIdentity.generate()
    me.save(tmp_path / "id.json", PASS)
    back = NodeIdentity.load(tmp_path / "id.json", PASS)
    assert (back.address, back.enc_public_key) == (me.address, me.enc_public_key)
    assert len(me.enc_public_key) == 32
    assert me.account.key.hex()[2:] not in repr(me) and me.account.key.hex() not in repr(me)
    with pytest.raises(WrongPassphrase):
        NodeIdentity.load(tmp_path / "id.json", "another passphrase")


def test_identity_refuses_other_keystore_kinds(tmp_path):
    save_keystore(tmp_path / "m.json", {"eth_private_key": b"\x01" * 32}, PASS, kind="tas-master")
    with pytest.raises(MalformedKeystore, match="not a 'node-identity'"):
        NodeIdentity.load(tmp_path / "m.json", PASS)
    save_keystore(tmp_path / "z.json", {"eth_private_key": b"\x00" * 32, "x25519_private_key": b"\x01" * 32},
                  PASS, kind="node-identity")
    with pytest.raises(MalformedKeystore, match="invalid Ethereum key"):
        NodeIdentity.load(tmp_path / "z.json", PASS)
