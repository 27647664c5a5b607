"""Issue 10, items 6 and 8, from the attacker's side on Anvil: hostile request files, an enrolled
node asking again, and a TAS set up with the devnet's published key."""

from __future__ import annotations

import json

import pytest

from fogfed.chain import connect
from fogfed.keys import NodeIdentity
from fogfed.keys.keystore import KdfParams
from fogfed.protocol.enrollment import EnrollmentRejected, EnrollmentRequest
from fogfed.tas import TrustedAuthority
from tests.cli.helpers import PASSPHRASE, run_inproc

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)


@pytest.fixture(scope="module")
def tas(anvil_url, tmp_path_factory):
    chain = connect(anvil_url)
    return TrustedAuthority.init(tmp_path_factory.mktemp("tas"), chain, "tas passphrase", account=chain.dev_accounts()[0],
                                 kdf=LIGHT)


def request(tas, identity, location, service):
    return EnrollmentRequest.create(identity, location, service, chain_id=tas.chain_id,
                                    contract=tas.contract_address)


def test_item6_a_request_with_a_key_given_twice_is_refused(tas):
    """The operator reads one location, json.loads would enroll the other: refuse the file."""
    text = request(tas, NodeIdentity.generate(), "riyadh", "health").to_json()
    doc = json.loads(text)
    forged = text.replace('"location": "riyadh"', '"location": "riyadh",\n "location": "jeddah"')
    assert forged != text and json.loads(forged)["location"] == "jeddah"  # what the lax parser would see
    with pytest.raises(EnrollmentRejected, match="'location' more than once"):
        EnrollmentRequest.from_json(forged)
    assert EnrollmentRequest.from_json(text).location == doc["location"]


def test_item6_an_enrolled_node_asking_again_changes_nothing(tas):
    """A second request (new attributes, fresh nonce) from an active member: no federation, no epoch."""
    node = NodeIdentity.generate()
    first = tas.enroll(request(tas, node, "mecca", "water"), approve=True)
    count = tas.fed.settings().federation_count
    epoch = tas.fed.federation(first.federation_id).epoch
    again = request(tas, node, "tabuk", "power")  # attributes no federation has yet
    with pytest.raises(EnrollmentRejected, match="already an active member.*nothing was changed"):
        tas.enroll(again, approve=True)
    assert tas.fed.settings().federation_count == count  # no stray federation left behind
    assert tas.fed.federation_by_attributes("tabuk", "power") == 0
    assert tas.fed.federation(first.federation_id).epoch == epoch
    assert not tas.nonce_used(again.nonce)  # the refused request did not spend its nonce


def test_item8_the_published_devnet_key_is_refused_outside_the_embedded_chain(anvil_url, tmp_path, monkeypatch,
                                                                              capsys):
    for k in [k for k in __import__("os").environ if k.startswith("FOGFED_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("FOGFED_PASSPHRASE", PASSPHRASE)
    code, out, err = run_inproc(capsys, "tas", "init", "--home", str(tmp_path / "t"), "--rpc", anvil_url, "--json")
    error = json.loads(out)["error"]  # under --json the refusal is the one JSON document on stdout
    assert code == 2 and "published default account" in error["message"] and "--allow-devnet-key" in error["hint"]
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())
    code, out, err = run_inproc(capsys, "tas", "init", "--home", str(tmp_path / "t"), "--rpc", anvil_url, "--json",
                                "--allow-devnet-key")
    assert code == 0 and "WARNING" in err and "PUBLISHED default account" in err, (out, err)
    assert json.loads(out)["tas"] == connect(anvil_url).dev_accounts()[0].address
