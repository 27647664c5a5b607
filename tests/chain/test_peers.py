"""Contract additions for the roles: peer endpoints, key-delivery blocks, cross-federation sharing,
and the wrapper's lookups the roles use (events filtered on indexed arguments, endpoint, holder limit)."""

from __future__ import annotations

import pytest

from fogfed.chain import ContractRevert, InvalidArgument, connect, deploy

from fogfed.protocol.files import file_id_for

DIGEST = b"\x11" * 32
FILE = b""  # set by the fixture: a1's id for DIGEST


@pytest.fixture(scope="module")
def c():
    chain = connect(None)
    accts = dict(zip(["tas", "a1", "a2", "b1", "out"], chain.dev_accounts()))
    fed = deploy(chain, accts["tas"])
    fed.create_federation(accts["tas"], "riyadh", "health", b"pk")
    fed.create_federation(accts["tas"], "jeddah", "health", b"pk")
    for name, fid in (("a1", 1), ("a2", 1), ("b1", 2)):
        fed.add_member(accts["tas"], fid, accts[name].address, b"\x05" * 32)
    global FILE
    FILE = file_id_for(accts["a1"].address, DIGEST)
    assert fed.register_file(accts["a1"], 1, DIGEST, b"\x01" * 32, b"\x02" * 32, "ff:1", 0).value == FILE
    return fed, accts


def test_endpoint_is_published_in_an_event_at_a_recorded_block(c):
    fed, accts = c
    assert fed.endpoint(accts["a2"].address) is None  # never published
    tx = fed.set_endpoint(accts["a1"], "http://127.0.0.1:8123")
    assert fed.peer_blocks(accts["a1"].address)[1] == tx.block_number
    assert tx.event("EndpointSet").args == {"node": accts["a1"].address, "url": "http://127.0.0.1:8123"}
    assert fed.endpoint(accts["a1"].address) == "http://127.0.0.1:8123"
    fed.set_endpoint(accts["a1"], "http://127.0.0.1:9000")
    assert fed.endpoint(accts["a1"].address) == "http://127.0.0.1:9000"  # the latest one
    print("setEndpoint gas", tx.gas_used)


@pytest.mark.parametrize("url", ["", "h" * 257])
def test_endpoint_length_is_bounded(c, url):
    fed, accts = c
    with pytest.raises(InvalidArgument, match="endpoint URL"):
        fed.set_endpoint(accts["a1"], url)
    with pytest.raises(ContractRevert, match="InvalidEndpoint"):  # raw call: the contract refuses on its own
        fed._transact(accts["a1"], "setEndpoint", url)


def test_only_members_publish_endpoints(c):
    fed, accts = c
    with pytest.raises(ContractRevert, match="NotActiveMember"):
        fed.set_endpoint(accts["out"], "http://x:1")


def test_key_delivery_records_its_block_and_is_found_by_node(c):
    fed, accts = c
    node = accts["a2"].address
    tx = fed.deliver_key(accts["tas"], node, 1, 0, b"\x09" * 300)
    fed.deliver_key(accts["tas"], accts["b1"].address, 2, 0, b"\x08" * 300)  # someone else's, later
    assert fed.peer_blocks(node)[0] == tx.block_number
    found = fed.events(0, None, ["KeyDelivered"], where={"node": node})
    assert [(e.args["node"], e.args["sealedKey"], e.block_number) for e in found] == [
        (node, b"\x09" * 300, tx.block_number)]
    assert fed.events(names=["KeyDelivered"], where={"node": node, "epoch": 1}) == []
    print("deliverKey gas (300-byte box)", tx.gas_used)


@pytest.mark.parametrize("names, where, match", [
    (["KeyDelivered"], {"sealedKey": b"x"}, "no indexed argument"),  # not indexed
    (["KeyDelivered"], {"node": "not an address"}, "does not encode as address"),
    (["KeyDelivered", "EndpointSet"], {"node": "0x" + "00" * 20}, "exactly one event"),
    (None, {"node": "0x" + "00" * 20}, "exactly one event"),
])
def test_bad_event_filters_are_clear_errors(c, names, where, match):
    with pytest.raises(InvalidArgument, match=match):
        c[0].events(names=names, where=where)


def test_sharing_grants_access_to_the_other_federation_only_after_share(c):
    fed, accts = c
    b1 = accts["b1"].address
    assert not fed.has_access(b1, FILE)
    with pytest.raises(ContractRevert, match="NotUploader"):
        fed.share_file(accts["a2"], FILE, 2)  # a member, but not the uploader
    with pytest.raises(ContractRevert, match="UnknownFederation"):
        fed.share_file(accts["a1"], FILE, 9)
    tx = fed.share_file(accts["a1"], FILE, 2)
    assert tx.event("FileShared").args == {"fileId": FILE, "federationId": 2, "by": accts["a1"].address}
    print("shareFile gas", tx.gas_used)
    assert fed.has_access(b1, FILE)
    granted = fed.record_access(accts["b1"], FILE)
    assert granted.value and granted.event("AccessGranted").args["federationId"] == 2
    assert fed.member(b1).false_claims == 0
    assert not fed.has_access(accts["out"].address, FILE)


def test_fresh_cache_holders_stops_at_the_limit(c):
    fed, accts = c
    expires = fed.chain.timestamp() + 600
    for name in ("a1", "a2"):
        fed.announce_cache(accts[name], FILE, expires)
    everyone = fed.fresh_cache_holders(FILE)
    assert {h.holder for h in everyone} == {accts["a1"].address, accts["a2"].address}
    assert all(h.expires_at == expires for h in everyone)
    assert fed.fresh_cache_holders(FILE, limit=1) == everyone[:1]
    assert fed.fresh_cache_holders(FILE, limit=1, page_size=1) == everyone[:1]
    assert fed.fresh_cache_holders(FILE, limit=0) == []
    with pytest.raises(InvalidArgument, match="limit"):
        fed.fresh_cache_holders(FILE, limit=-1)


def test_removed_uploader_cannot_share(c):
    fed, accts = c
    fed.remove_member(accts["tas"], accts["a1"].address)
    with pytest.raises(ContractRevert, match="NotActiveMember"):
        fed.share_file(accts["a1"], FILE, 2)
    assert not fed.has_access(accts["a1"].address, FILE)
