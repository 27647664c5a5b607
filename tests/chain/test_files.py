"""Files (paper Algorithms 8 and 9): registration, recorded access, damage reports."""

from __future__ import annotations

import hashlib
import os

import pytest
from eth_utils import keccak

from fogfed.chain import ContractRevert
from fogfed.protocol.files import file_id_for

POLICY = "location:here and service:there"


def register(cast, who=None, **overrides):
    fields = {"federation_id": cast.fid, "content_digest": os.urandom(32), "plaintext_hash": hashlib.sha256(b"p").digest(),
              "enc_sk_ref": os.urandom(32), "policy": POLICY, "epoch": cast.fed.federation(cast.fid).epoch}
    fields.update(overrides)
    return cast.fed.register_file(who or cast.member, **fields)


@pytest.mark.parametrize("kind,error", [("other", "NotFederationMember"), ("removed", "NotActiveMember"),
                                        ("outsider", "NotActiveMember"), ("tas", "NotActiveMember")])
def test_only_members_of_the_federation_register(cast, kind, error):
    with pytest.raises(ContractRevert) as err:
        register(cast, cast.callers()[kind])
    assert err.value.error_name == error
    assert err.value.error_args["account"] == cast.callers()[kind].address


def test_register_records_and_event(cast):
    digest, ph, ref = os.urandom(32), os.urandom(32), os.urandom(32)
    epoch = cast.fed.federation(cast.fid).epoch  # 1: the cast's removal advanced it
    result = register(cast, content_digest=digest, plaintext_hash=ph, enc_sk_ref=ref, cid_codec=0x70)
    fid = file_id_for(cast.member.address, digest)
    assert result.value == fid == keccak(bytes.fromhex(cast.member.address[2:]) + digest)
    assert result.event("FileRegistered").args == {
        "fileId": fid, "federationId": cast.fid, "uploader": cast.member.address, "contentDigest": digest,
        "plaintextHash": ph,
        "encSkRef": ref, "epoch": epoch, "cidCodec": 0x70, "policy": POLICY}
    rec = cast.fed.file(fid)
    assert (rec.plaintext_hash, rec.enc_sk_ref, rec.policy_ref, rec.uploader, rec.federation_id, rec.epoch) == \
        (ph, ref, keccak(POLICY.encode()), cast.member.address, cast.fid, epoch)
    assert rec.registered_at > 0 and not rec.damaged


def test_one_uploader_registers_a_digest_once_and_others_get_their_own_id(cast):
    digest = os.urandom(32)
    fid = register(cast, content_digest=digest).value
    with pytest.raises(ContractRevert) as err:
        register(cast, content_digest=digest)
    assert err.value.error_name == "FileExists" and err.value.error_args == {"fileId": fid}
    theirs = register(cast, cast.peer, content_digest=digest).value
    assert theirs == file_id_for(cast.peer.address, digest) != fid
    assert cast.fed.file(fid).uploader == cast.member.address


def test_stale_epoch_refused(cast):
    cast.fed.bump_epoch(cast.tas, cast.fid, cast.fed.federation(cast.fid).epoch, b"\x07" * 32)
    current = cast.fed.federation(cast.fid).epoch
    with pytest.raises(ContractRevert) as err:
        register(cast, epoch=current - 1)
    assert err.value.error_name == "StaleEpoch"
    assert err.value.error_args == {"federationId": cast.fid, "given": current - 1, "current": current}
    with pytest.raises(ContractRevert) as err:
        register(cast, epoch=current + 1)
    assert err.value.error_name == "StaleEpoch"
    assert register(cast, epoch=current).value


@pytest.mark.parametrize("field,value,error", [
    ("content_digest", b"\x00" * 32, "InvalidFileReference"),
    ("plaintext_hash", b"\x00" * 32, "InvalidFileReference"),
    ("enc_sk_ref", b"\x00" * 32, "InvalidFileReference"),
    ("policy", "", "InvalidPolicy"),
    ("policy", "x" * 1025, "InvalidPolicy"),
])
def test_contract_checks_file_input(cast, field, value, error):
    fields = {"content_digest": os.urandom(32), "plaintext_hash": os.urandom(32), "enc_sk_ref": os.urandom(32),
              "policy": POLICY, field: value}
    with pytest.raises(ContractRevert) as err:  # raw call: the contract must refuse on its own
        cast.fed._transact(cast.member, "registerFile", cast.fid, fields["content_digest"], 0, fields["plaintext_hash"],
                           fields["enc_sk_ref"], cast.fed.federation(cast.fid).epoch, fields["policy"])
    assert err.value.error_name == error


def test_record_access_never_reverts(cast):
    fid = register(cast).value
    fed = cast.fed
    granted = fed.record_access(cast.peer, fid)
    assert granted.value is True
    assert granted.event("AccessGranted").args == {"fileId": fid, "node": cast.peer.address,
                                                   "federationId": cast.fid}
    for who, reason in [(cast.outsider, 2), (cast.removed, 3), (cast.tas, 2)]:
        denied = fed.record_access(who, fid)
        assert denied.value is False
        assert denied.event("AccessDenied").args == {"fileId": fid, "node": who.address, "reason": reason}
    unknown = fed.record_access(cast.member, os.urandom(32))
    assert unknown.value is False and unknown.event("AccessDenied").args["reason"] == 1
    assert fed.member(cast.member.address).false_claims == 0  # asking for an unknown file is no false claim


def test_access_from_another_federation_is_a_false_claim(cast):
    fid = register(cast).value
    fed = cast.fed
    threshold = fed.settings().false_claim_threshold
    for n in range(1, threshold + 1):
        result = fed.record_access(cast.other, fid)
        assert result.event("AccessDenied").args["reason"] == 4
        assert result.event("FalseClaimCounted").args == {"suspect": cast.other.address, "reporter": fed.address,
                                                          "count": n, "evidence": fid}
    assert result.event("MemberRemoved").args == {"node": cast.other.address, "federationId": cast.other_fid,
                                                  "reason": 2, "by": cast.other.address}
    assert not fed.member(cast.other.address).active
    after = fed.record_access(cast.other, fid)
    assert after.event("AccessDenied").args["reason"] == 3


def test_damage_reports(cast):
    fid = register(cast).value
    fed = cast.fed
    for kind, error in [("other", "NotFederationMember"), ("removed", "NotActiveMember"),
                        ("outsider", "NotActiveMember"), ("tas", "NotActiveMember")]:
        with pytest.raises(ContractRevert) as err:
            fed.report_damage(cast.callers()[kind], fid, "hash-mismatch")
        assert err.value.error_name == error
    with pytest.raises(ContractRevert) as err:
        fed.report_damage(cast.member, os.urandom(32), 1)
    assert err.value.error_name == "UnknownFile"
    for reason in (0, 4):
        with pytest.raises(ContractRevert) as err:
            fed._transact(cast.member, "reportDamage", fid, "0x" + "00" * 20, reason)
        assert err.value.error_name == "InvalidReason"
    with pytest.raises(ContractRevert) as err:  # a cached copy that was never announced
        fed.report_damage(cast.member, fid, 1, holder=cast.peer.address)
    assert err.value.error_name == "NoCache"
    result = fed.report_damage(cast.peer, fid, "ciphertext-invalid")
    assert result.event("FileDamaged").args == {"fileId": fid, "reporter": cast.peer.address,
                                                "holder": "0x" + "00" * 20, "reason": 2}
    assert fed.file(fid).damaged
    with pytest.raises(ContractRevert) as err:
        fed.report_intact(cast.other, fid)
    assert err.value.error_name == "NotFederationMember"
    cleared = fed.report_intact(cast.member, fid)
    assert cleared.event("FileDamaged").args == {"fileId": fid, "reporter": cast.member.address,
                                                 "holder": "0x" + "00" * 20, "reason": 0}
    assert not fed.file(fid).damaged


def test_unknown_file_view(cast):
    with pytest.raises(ContractRevert) as err:
        cast.fed.file(b"\x07" * 32)
    assert err.value.error_name == "UnknownFile"
