"""Contract additions for the roles: peer endpoints, key-delivery blocks, cross-federation sharing."""

from __future__ import annotations

import pytest

from fogfed.chain import connect
from fogfed.protocol.ledger import Ledger, TxReverted

FILE = b"\x11" * 32


@pytest.fixture(scope="module")
def c():
    chain = connect(None)
    accts = chain.dev_accounts()
    tas, _ = Ledger.deploy(chain, accts[0])
    led = {name: Ledger(chain, tas.address, accts[i]) for i, name in enumerate(["tas", "a1", "a2", "b1", "out"])}
    tas.send("createFederation", "riyadh", "health", b"pk", 0)
    tas.send("createFederation", "jeddah", "health", b"pk", 0)
    for name, fid in (("a1", 1), ("a2", 1), ("b1", 2)):
        tas.send("addMember", fid, led[name].account.address, b"\x05" * 32)
    led["a1"].send("registerFile", 1, FILE, 0, b"\x01" * 32, b"\x02" * 32, 0, "ff:1")
    return led


def test_endpoint_is_published_in_an_event_at_a_recorded_block(c):
    tx = c["a1"].send("setEndpoint", "http://127.0.0.1:8123")
    assert c["tas"].call("peerBlocks", c["a1"].account.address)[1] == tx.block_number
    assert tx.event("EndpointSet") == {"node": c["a1"].account.address, "url": "http://127.0.0.1:8123"}
    print("setEndpoint gas", tx.gas_used)


@pytest.mark.parametrize("url", ["", "h" * 257])
def test_endpoint_length_is_bounded(c, url):
    with pytest.raises(TxReverted, match="InvalidEndpoint"):
        c["a1"].send("setEndpoint", url)


def test_only_members_publish_endpoints(c):
    with pytest.raises(TxReverted, match="NotActiveMember"):
        c["out"].send("setEndpoint", "http://x:1")


def test_key_delivery_records_its_block(c):
    node = c["a2"].account.address
    tx = c["tas"].send("deliverKey", node, 1, 0, b"\x09" * 300)
    assert c["tas"].call("peerBlocks", node)[0] == tx.block_number
    print("deliverKey gas (300-byte box)", tx.gas_used)


def test_sharing_grants_access_to_the_other_federation_only_after_share(c):
    b1 = c["b1"].account.address
    assert not c["tas"].call("hasAccess", b1, FILE)
    with pytest.raises(TxReverted, match="NotUploader"):
        c["a2"].send("shareFile", FILE, 2)  # a member, but not the uploader
    with pytest.raises(TxReverted, match="UnknownFederation"):
        c["a1"].send("shareFile", FILE, 9)
    tx = c["a1"].send("shareFile", FILE, 2)
    assert tx.event("FileShared") == {"fileId": FILE, "federationId": 2, "by": c["a1"].account.address}
    print("shareFile gas", tx.gas_used)
    assert c["tas"].call("hasAccess", b1, FILE)
    granted = c["b1"].send("recordAccess", FILE)
    assert granted.event("AccessGranted")["federationId"] == 2
    assert c["tas"].call("member", b1)[2] == 0  # no false claim counted
    assert not c["tas"].call("hasAccess", c["out"].account.address, FILE)


def test_removed_uploader_cannot_share(c):
    c["tas"].send("removeMember", c["a1"].account.address)
    with pytest.raises(TxReverted, match="NotActiveMember"):
        c["a1"].send("shareFile", FILE, 2)
    assert not c["tas"].call("hasAccess", c["a1"].account.address, FILE)
