"""FogFed through Ape on Anvil: deploy, federation, member, file, access, verification, removal."""

from __future__ import annotations

import hashlib

import ape
import pytest

from conftest import LOCATION, SERVICE, file_id
from fogfed.chain import attributes_hash
from fogfed.protocol.files import file_id_for

POLICY = "(loc:riyadh and svc:health)"


def register(fogfed, sender, federation_id, content=b"ciphertext", epoch=0, policy=POLICY):
    return fogfed.registerFile(federation_id, file_id(content), 0, hashlib.sha256(b"plain").digest(),
                               b"\x05" * 32, epoch, policy, sender=sender)


def test_deploy_makes_the_deployer_admin_and_tas(fogfed, tas):
    settings = fogfed.settings()
    assert settings["admin_"] == tas.address
    assert settings["federationCount"] == 0
    assert fogfed.isOperator(tas.address)


def test_create_federation(fogfed, federation_id):
    assert federation_id == 1
    assert fogfed.federationByAttributes(attributes_hash(LOCATION, SERVICE)) == 1


def test_only_the_tas_creates_federations(fogfed, outsider):
    with ape.reverts():
        fogfed.createFederation("Jeddah", "Education", b"\x01", 0, sender=outsider)


def test_add_member_and_verify_by_attribute(fogfed, member, federation_id):
    assert fogfed.isActiveMember(member, federation_id)
    receipt = fogfed.verifyMember(member, attributes_hash(LOCATION, SERVICE), sender=member)
    [event] = receipt.decode_logs()
    assert event.event_name == "MemberVerified" and event.event_arguments["result"]
    wrong = fogfed.verifyMember(member, attributes_hash("Jeddah", SERVICE), sender=member)
    assert not wrong.decode_logs()[0].event_arguments["result"]


def test_member_registers_a_file_and_records_access(fogfed, member, federation_id):
    receipt = register(fogfed, member, federation_id)
    assert [e.event_name for e in receipt.decode_logs()] == ["FileRegistered"]
    fid = file_id_for(member.address, file_id(b"ciphertext"))  # the id names the uploader too
    assert fogfed.file(fid)["uploader"] == member.address
    access = fogfed.recordAccess(fid, sender=member)
    assert [e.event_name for e in access.decode_logs()] == ["AccessGranted"]


def test_non_member_cannot_register_a_file(fogfed, outsider, federation_id):
    with ape.reverts():
        register(fogfed, outsider, federation_id)


def test_removed_member_can_no_longer_register(fogfed, tas, member, federation_id):
    register(fogfed, member, federation_id)
    fogfed.removeMember(member, "rogue", sender=tas)
    assert not fogfed.isActiveMember(member, federation_id)
    with ape.reverts():
        register(fogfed, member, federation_id, content=b"after removal", epoch=1)


@pytest.mark.parametrize("bad", [{"epoch": 7}, {"policy": ""}, {"policy": "x" * 1025}])
def test_bad_registrations_are_refused(fogfed, member, federation_id, bad):
    with ape.reverts():
        register(fogfed, member, federation_id, **bad)
