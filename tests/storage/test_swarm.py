"""Several real IPFS daemons (js-ipfs) in one private swarm on 127.0.0.1, one per fog node.

Content moves between daemons by Bitswap; a file is pinned on more than one
daemon so losing one loses nothing; a fetch whose daemon goes away goes on
from the next one. Every block a client reads is checked against its CID.
"""

from __future__ import annotations

import io
import json

import pytest
import requests

from fogfed.storage import ContentNotFound, IpfsStore, ReplicatedStore, StorageError, compute_cid, open_store
from fogfed.storage.cids import RAW, Cid, parse_cid
from fogfed.storage.dagpb import decode_pbnode
from tests.storage.helpers import CHUNK, PrngStream, assert_stream_equals

pytestmark = pytest.mark.ipfs
SIZE = 6 * CHUNK + 1234  # seven leaf blocks and a root


def _store(node, timeout: float = 5) -> IpfsStore:
    return IpfsStore(node.api_url, fetch_timeout=timeout)


def _local_blocks(node) -> set[bytes]:
    """Digests of the blocks in the daemon's own repo (``refs/local``, no network; it keys
    blocks by multihash and prints them as raw CIDv1)."""
    reply = requests.post(f"{node.api_url}/api/v0/refs/local", timeout=30)
    reply.raise_for_status()
    return {parse_cid(json.loads(line)["Ref"]).digest for line in reply.text.splitlines() if line.strip()}


def _dag_cids(cid: str, store: IpfsStore) -> set[bytes]:
    """Digests of the root and every block below it, read (and checked) through ``store``."""
    out, todo = set(), [parse_cid(cid)]
    while todo:
        c = todo.pop()
        out.add(c.digest)
        if c.codec != RAW:
            todo += [Cid.from_bytes(link.cid) for link in decode_pbnode(store.get_block(c)).links]
    return out


@pytest.fixture
def swarm(ipfs_swarm):
    """The module's swarm with every daemon running and connected again after a test killed one."""
    yield ipfs_swarm
    for node in ipfs_swarm.nodes:
        if node.pid is None:
            node.start()
    ipfs_swarm.reconnect()


def test_daemons_form_a_private_swarm(swarm):
    a, b, c = swarm.nodes
    assert set(a.peers()) == {b.peer_id, c.peer_id}
    assert set(c.peers()) >= {a.peer_id, b.peer_id}
    assert all("/ip4/127.0.0.1/tcp/" in n.swarm_address for n in swarm.nodes)


def test_upload_through_a_is_fetched_through_c_by_bitswap(swarm):
    a, _, c = swarm.nodes
    with _store(a) as sa, _store(c) as sc:
        cid = sa.add(PrngStream(SIZE, seed=1))
        assert cid == compute_cid(PrngStream(SIZE, seed=1))
        blocks = _dag_cids(cid, sa)
        assert len(blocks) == 8
        assert not sc.has(cid) and not blocks & _local_blocks(c)  # C holds none of its blocks
        assert_stream_equals(sc.cat(cid), SIZE, seed=1)  # block/get on C, each block checked
        assert blocks <= _local_blocks(c)  # C now has them all: they came from A by Bitswap


def test_replicated_upload_survives_the_loss_of_a_daemon(swarm):
    a, b, c = swarm.nodes
    stores = [_store(n) for n in swarm.nodes]
    with ReplicatedStore(stores, replicas=2) as rs:
        cid = rs.add(PrngStream(SIZE, seed=2))
        assert [s.has(cid) for s in stores] == [True, True, False]
        assert rs.copies(cid) == 2
        assert rs.size(cid) == SIZE  # what a fetch bounds a peer's answer by (the root block's declared size)
        a.kill()  # the uploader's own daemon is lost
        with _store(c) as sc:
            assert_stream_equals(sc.cat(cid), SIZE, seed=2)  # C gets every block from B
        assert_stream_equals(rs.cat(cid), SIZE, seed=2)
        assert rs.failovers == 1  # the dead first daemon was skipped once, then B served the rest


def test_replication_that_cannot_be_met_is_an_error_not_a_silent_single_copy(swarm):
    _, b, c = swarm.nodes
    stores = [_store(n) for n in swarm.nodes]  # reachable when the fog node opened them
    b.kill()
    c.kill()
    with ReplicatedStore(stores, replicas=2) as rs:
        with pytest.raises(StorageError, match=r"pinned on 1 of the 2 IPFS nodes required"):
            rs.add(io.BytesIO(b"x" * 1000))


def test_fetch_moves_to_the_next_daemon_when_its_daemon_dies_mid_file(swarm, monkeypatch):
    a, b, c = swarm.nodes
    # A window of one block: the default window can read every leaf from A before the kill
    # (it did under load), and then no block is left to fail over for.
    monkeypatch.setattr("fogfed.storage.replicated.PREFETCH", 1)
    with _store(a) as sa, _store(b) as sb:
        cid = sa.add(PrngStream(SIZE, seed=3))
        sb.pin(cid)  # B pulls it from A by Bitswap and pins it
        rs = ReplicatedStore([sa, sb], replicas=1)
        pieces = rs.cat(cid)
        expected = PrngStream(SIZE, seed=3)
        got = 0
        for piece in pieces:
            assert piece == expected.read(len(piece))
            got += len(piece)
            if got == 2 * CHUNK:
                a.kill()  # the daemon in use goes away after two of seven leaves
        assert got == SIZE
        assert rs.failovers == 1


def test_bitswap_fetch_continues_from_another_peer_when_one_dies(swarm):
    a, b, c = swarm.nodes
    with _store(a) as sa, _store(b) as sb, _store(c, timeout=20) as sc:
        cid = sa.add(PrngStream(SIZE, seed=4))
        sb.pin(cid)
        expected = PrngStream(SIZE, seed=4)
        got = 0
        for piece in sc.cat(cid):  # C's daemon asks its peers for each block
            assert piece == expected.read(len(piece))
            got += len(piece)
            if got == CHUNK:
                a.kill()
        assert got == SIZE


def test_pin_of_content_no_daemon_has_is_not_found(swarm):
    with _store(swarm.nodes[2], timeout=1) as sc:
        missing = compute_cid(io.BytesIO(b"nobody has this 7f3a"))
        with pytest.raises(ContentNotFound, match="could not find"):
            sc.pin(missing)


def test_open_store_with_a_list_of_daemons_replicates(swarm, monkeypatch):
    monkeypatch.setenv("FOGFED_IPFS_REPLICAS", "3")
    store = open_store(ipfs=",".join(swarm.api_urls))
    try:
        assert isinstance(store, ReplicatedStore) and store.replicas == 3
        cid = store.add(io.BytesIO(b"three copies" * 5000))
        assert store.copies(cid) == 3
        assert b"".join(store.cat(cid)) == b"three copies" * 5000
    finally:
        store.close()
