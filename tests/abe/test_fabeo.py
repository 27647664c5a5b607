"""FABEO's formats: uncompressed rows read only when used, combined-point and G2 subgroup checks, sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fogfed import abe
from fogfed.abe.fabeo import ROW_SIZE
from fogfed.abe.group import G2_SIZE, GT_SIZE
from tests.abe import curve

POLICY = "loc:riyadh and (svc:health or role:admin)"


@pytest.fixture(scope="module")
def material():
    pk, msk = abe.setup("fabeo")
    sk = abe.keygen(pk, msk, ["loc:riyadh", "svc:health"])
    ct = abe.encrypt(pk, POLICY, b"k" * 32, aad=b"file")
    return pk, msk, sk, ct


def _rows_at(ct: bytes) -> int:
    plen = int.from_bytes(ct[23:25], "big")
    return 7 + 16 + 2 + plen + G2_SIZE + 2 + G2_SIZE + 2  # fingerprint, policy, h^s0, tau, h^s1, n


def _with_row(ct: bytes, i: int, row: bytes) -> bytes:
    at = _rows_at(ct) + i * ROW_SIZE
    return ct[:at] + row + ct[at + ROW_SIZE :]


def test_sizes(material):
    pk, _, sk, ct = material
    assert len(pk.to_bytes()) == 7 + GT_SIZE
    assert len(abe.MasterKey.from_bytes(abe.setup("fabeo")[1].to_bytes()).to_bytes()) == 7 + 16 + 32
    assert len(ct) == _rows_at(ct) + 3 * ROW_SIZE + 4 + 32 + 16


def test_a_used_row_off_the_curve_or_outside_g1_is_rejected_at_decryption(material):
    pk, _, sk, ct = material
    x, y = curve.g1_point_outside_subgroup()
    outside = x.to_bytes(48, "little") + y.to_bytes(48, "little")
    row = ct[_rows_at(ct) : _rows_at(ct) + ROW_SIZE]
    off_curve = row[:48] + ((int.from_bytes(row[48:], "little") + 1) % curve.P).to_bytes(48, "little")
    for bad in (outside, off_curve):
        parsed = abe.Ciphertext.from_bytes(_with_row(ct, 0, bad))  # the structure is fine
        with pytest.raises(abe.MalformedError, match="combination of the rows used"):
            abe.decrypt(pk, sk, parsed, aad=b"file")
    with pytest.raises(abe.MalformedError, match="not a canonical"):
        abe.decrypt(pk, sk, _with_row(ct, 0, b"\xff" * ROW_SIZE), aad=b"file")


def test_an_unused_row_is_not_read_but_its_change_fails_authentication(material):
    pk, _, sk, ct = material
    bad = _with_row(ct, 2, b"\xff" * ROW_SIZE)  # row 3 (role:admin) is not used by this key
    with pytest.raises(abe.DecryptionError, match="failed authentication"):
        abe.decrypt(pk, sk, bad, aad=b"file")


def test_g2_elements_outside_g2_are_rejected(material):
    pk, _, sk, ct = material
    at = 7 + 16 + 2 + int.from_bytes(ct[23:25], "big")
    bad_g2 = curve.encode_g2_x(curve.g2_x_on_curve_outside_subgroup(), 0)
    for offset, field in ((at, "h\\^s0"), (at + G2_SIZE + 2, "h\\^s_1")):
        bad = ct[:offset] + bad_g2 + ct[offset + G2_SIZE :]
        with pytest.raises(abe.MalformedError, match=f"field {field} is not a valid G2"):
            abe.decrypt(pk, sk, bad, aad=b"file")


def test_tau_must_match_the_policy(material):
    pk, _, sk, ct = material
    at = 7 + 16 + 2 + int.from_bytes(ct[23:25], "big") + G2_SIZE
    bad = ct[:at] + b"\x00\x02" + ct[at + 2 : at + 2 + G2_SIZE] * 2 + ct[at + 2 + G2_SIZE :]
    with pytest.raises(abe.MalformedError, match="2 elements h\\^s_j but its policy repeats an attribute 1 times"):
        abe.Ciphertext.from_bytes(bad)


def test_existing_fame_material_keeps_working():
    """Bytes made by fogfed before round 2 (pymcl group, no FABEO): load, decrypt, issue keys, encrypt."""
    data = json.loads((Path(__file__).parent / "data" / "fame_round1.json").read_text())
    pk, msk, sk = (cls.from_bytes(bytes.fromhex(data[k]))
                   for cls, k in ((abe.PublicKey, "pk"), (abe.MasterKey, "msk"), (abe.SecretKey, "sk")))
    assert pk.scheme == "fame" and pk.to_bytes().hex() == data["pk"] and sk.to_bytes().hex() == data["sk"]
    assert abe.decrypt(pk, sk, bytes.fromhex(data["ct"]), aad=b"f1") == b"old file key"
    # made before FAME refused repeats: an honest key still opens it (no new ones are made)
    assert abe.decrypt(pk, sk, bytes.fromhex(data["ct_repeat"]), aad=b"f2") == b"repeat"
    assert abe.kem_decrypt(pk, sk, bytes.fromhex(data["kem"])).hex() == data["kem_key"]
    new_key = abe.keygen(pk, msk, ["ff:9", "loc:riyadh"])
    assert abe.decrypt(pk, new_key, bytes.fromhex(data["ct"]), aad=b"f1") == b"old file key"
    assert abe.decrypt(pk, sk, abe.encrypt(pk, "ff:3 and svc:health", b"new")) == b"new"


def test_rows_are_read_as_one_buffer_and_sliced_when_used(material):
    from fogfed.abe.fabeo import Rows

    pk, _, sk, ct = material
    read = abe.Ciphertext.from_bytes(ct)
    rows = read.value.ct
    assert isinstance(rows, Rows) and len(rows) == 3
    assert [rows[i] for i in range(3)] == list(rows) == list(rows[0:3]) and rows[-1] == rows[2]
    assert all(len(r) == ROW_SIZE for r in rows) and b"".join(rows) == rows.data
    with pytest.raises(IndexError):
        rows[3]
    assert read.to_bytes() == ct and abe.decrypt(pk, sk, read.to_bytes(), aad=b"file") == b"k" * 32
