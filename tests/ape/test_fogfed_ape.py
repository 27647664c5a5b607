"""FogFed through Ape on Anvil: deploy, federation, member, file, access, verification, removal."""

from __future__ import annotations

import hashlib

import ape
import pytest

from conftest import LOCATION, SERVICE, cid_v0

POLICY = "location:Riyadh and service:Health"


def register(fogfed, sender, federation_id, content=b"ciphertext"):
    return fogfed.registerFile(federation_id, cid_v0(content), hashlib.sha256(b"plain").digest(),
                               b"\x05" * 32, POLICY, 0, sender=sender)


def test_deploy_makes_the_deployer_admin_and_tas(fogfed, tas):
    assert fogfed.admin() == tas.address
    assert fogfed.isOperator(tas.address)
    assert fogfed.federationCount() == 0


def test_create_federation(fogfed, federation_id):
    assert federation_id == 1
    assert fogfed.federationByAttributes(fogfed.attributesHash(LOCATION, SERVICE)) == 1


def test_only_the_tas_creates_federations(fogfed, outsider):
    with ape.reverts():
        fogfed.createFederation("Jeddah", "Education", b"\x01", 0, sender=outsider)


def test_add_member_and_verify_by_attribute(fogfed, member, federation_id):
    assert fogfed.isActiveMember(member, federation_id)
    attrs = fogfed.attributesHash(LOCATION, SERVICE)
    receipt = fogfed.verifyMember(member, attrs, sender=member)
    assert not receipt.failed
    assert fogfed.memberHasAttributes(member, attrs)


def test_member_registers_a_file_and_records_access(fogfed, member, federation_id):
    receipt = register(fogfed, member, federation_id)
    file_id = hashlib.sha256(b"ciphertext").digest()
    assert fogfed.file(file_id)["uploader"] == member.address
    events = receipt.decode_logs()
    assert [e.event_name for e in events] == ["FileRegistered"]
    access = fogfed.recordAccess(file_id, sender=member)
    assert [e.event_name for e in access.decode_logs()] == ["AccessGranted"]


def test_non_member_cannot_register_a_file(fogfed, outsider, federation_id):
    with ape.reverts():
        register(fogfed, outsider, federation_id)


def test_removed_member_loses_access(fogfed, tas, member, federation_id):
    register(fogfed, member, federation_id)
    fogfed.removeMember(member, sender=tas)
    assert not fogfed.isActiveMember(member, federation_id)
    with ape.reverts():
        register(fogfed, member, federation_id, content=b"after removal")


@pytest.mark.parametrize("cid", [b"", b"\x12\x20" + b"\x00" * 31, b"\x99" * 34])
def test_bad_cids_are_refused(fogfed, member, federation_id, cid):
    with ape.reverts():
        fogfed.registerFile(federation_id, cid, b"\x01" * 32, b"\x05" * 32, POLICY, 0, sender=member)
