"""Smoke subset on Ganache: deploy, the paper's main path, a decoded revert, events."""

from __future__ import annotations

import os

import pytest

from fogfed.chain import ContractRevert, FogFed, connect, deploy
from tests.chain.helpers import enc_key, new_account

pytestmark = pytest.mark.ganache


def test_main_path_on_ganache(ganache_url):
    chain = connect(ganache_url, chain_id=31337)
    tas = chain.dev_accounts()[0]
    fed = deploy(chain, tas)
    assert FogFed.at(chain, fed.address).deploy_block == fed.deploy_block
    fid = fed.create_federation(tas, "ganache", "smoke", os.urandom(1351)).value
    member, outsider = new_account(chain, tas), new_account(chain, tas)
    fed.add_member(tas, fid, member.address, enc_key(member))
    file_id = fed.register_file(member, fid, os.urandom(32), os.urandom(32), os.urandom(32), "a and b", 0).value
    assert fed.record_access(member, file_id).value is True
    assert fed.record_access(outsider, file_id).value is False
    assert fed.verify_member(outsider, member.address, "ganache", "smoke").value is True
    with pytest.raises(ContractRevert) as err:
        fed.create_federation(member, "x", "y", b"\x01")
    assert err.value.error_name == "NotTas"
    with pytest.raises(ContractRevert) as err:
        fed.register_file(outsider, fid, os.urandom(32), os.urandom(32), os.urandom(32), "a and b", 0)
    assert err.value.error_name == "NotActiveMember"
    names = [e.name for e in fed.events()]
    assert names[:2] == ["AdminTransferred", "SettingsChanged"]
    assert {"FederationCreated", "MemberAdded", "FileRegistered", "AccessGranted", "AccessDenied",
            "MemberVerified"} <= set(names)
    fed.remove_member(tas, member.address)
    assert fed.federation(fid).epoch == 1
