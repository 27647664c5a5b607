"""The IPFS store against a real (js-ipfs) node: round trips, failures, a hostile node, a crash."""

from __future__ import annotations

import io

import pytest

from fogfed._proc import free_port
from fogfed.errors import FogfedError, InputError
from fogfed.storage import (ContentCorrupted, ContentNotFound, IpfsStore, StorageUnavailable, compute_cid,
                            open_store)
from fogfed.storage.jsipfs import JsIpfsNode
from tests.storage.helpers import CHUNK, PrngStream, prng_bytes
from tests.storage.hostile import HostileProxy, ReplyDroppingProxy

pytestmark = pytest.mark.ipfs
UNKNOWN = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


@pytest.fixture
def store(ipfs_api):
    with IpfsStore(ipfs_api, fetch_timeout=1) as s:
        yield s


def test_round_trip_pin_and_unpin(store):
    data = prng_bytes(2 * CHUNK + 99, seed=11)
    seen = []
    cid = store.add(io.BytesIO(data), progress=seen.append)
    assert seen[-1] == len(data)
    assert store.has(cid)
    assert b"".join(store.cat(cid)) == data
    store.remove(cid)
    assert not store.has(cid)
    store.remove(cid)  # unpinning twice is fine


def test_on_cid_hears_the_cid_before_the_node_pins_it(store):
    data = prng_bytes(3 * CHUNK + 5, seed=21)
    heard = []
    cid = store.add(io.BytesIO(data), on_cid=lambda c: heard.append((c, store.has(c))))
    assert heard == [(cid, False)] and store.has(cid)
    store.remove(cid)


def test_an_add_whose_reply_is_lost_still_told_its_cid(store, ipfs_api):
    """The node pins the file, then the connection drops before its answer: the add fails, but the
    caller heard the CID (the one the node pinned) and can unpin it (fogfed.node.leftovers)."""
    data = prng_bytes(2 * CHUNK + 7, seed=22)
    heard = []
    with ReplyDroppingProxy(ipfs_api) as proxy, IpfsStore(proxy.url) as lossy:
        with pytest.raises(StorageUnavailable, match="unreachable while adding a file"):
            lossy.add(io.BytesIO(data), on_cid=heard.append)
    assert proxy.added == heard == [compute_cid(io.BytesIO(data))]
    assert store.has(heard[0])  # pinned on the node, and known: a real leftover, not a leak
    store.remove(heard[0])


def test_a_failing_on_cid_aborts_the_add_with_nothing_pinned(store):
    class Refused(Exception):
        pass

    def refuse(cid):
        raise Refused(cid)
    data = prng_bytes(2 * CHUNK + 3, seed=23)
    with pytest.raises(Refused):
        store.add(io.BytesIO(data), on_cid=refuse)
    assert not store.has(compute_cid(io.BytesIO(data)))


def test_describe_names_url_and_version(store, ipfs_api):
    assert store.describe() == f"IPFS node at {ipfs_api} (js-ipfs 0.18.1)"


def test_multiaddr_form_and_open_store(ipfs_api):
    port = ipfs_api.rsplit(":", 1)[1]
    with IpfsStore(f"/ip4/127.0.0.1/tcp/{port}") as s:
        assert s.url == ipfs_api
    store = open_store(ipfs=ipfs_api)
    assert isinstance(store, IpfsStore)
    store.close()


def test_unknown_cid_is_not_found(store):
    with pytest.raises(ContentNotFound, match=UNKNOWN):
        store.cat(UNKNOWN)
    assert not store.has(UNKNOWN)


@pytest.mark.parametrize("bad", ["", "Qm", "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", "a/b"])
def test_malformed_cid_is_input_error(store, bad):
    for call in (store.cat, store.has, store.remove):
        with pytest.raises(InputError, match="CID"):
            call(bad)


@pytest.mark.parametrize("bad", ["", "localhost:5001", "ftp://127.0.0.1:5001", "http://127.0.0.1",
                                 "http://127.0.0.1:5001/api/v0", "/ip4/127.0.0.1/tcp/70000", "/ip4/127.0.0.1/udp/1"])
def test_malformed_address_is_input_error(bad):
    with pytest.raises(InputError, match="IPFS API address"):
        IpfsStore(bad)


def test_unreachable_node_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StorageUnavailable, match=url) as info:
        IpfsStore(url)
    assert info.value.hint


def test_tampered_blocks_from_the_node_are_detected(store, ipfs_api):
    data = prng_bytes(CHUNK + 10, seed=12)
    cid = store.add(io.BytesIO(data))
    with HostileProxy(ipfs_api, fake_cid=UNKNOWN) as proxy, IpfsStore(proxy.url) as hostile:
        with pytest.raises(ContentCorrupted, match=cid):
            hostile.cat(cid)  # the root block is checked before cat returns


def test_node_lying_about_the_added_cid_is_detected(ipfs_api):
    with HostileProxy(ipfs_api, fake_cid=UNKNOWN) as proxy, IpfsStore(proxy.url) as hostile:
        with pytest.raises(ContentCorrupted, match=UNKNOWN):
            hostile.add(io.BytesIO(b"some content"))


class KillAt(PrngStream):
    """A PRNG stream that calls ``kill`` once ``at`` bytes have been read."""

    def __init__(self, size, seed, at, kill):
        super().__init__(size, seed)
        self.size, self.at, self.kill = size, at, kill

    def read(self, n=-1):
        if self.kill and self.size - self.left >= self.at:
            self.kill, kill = None, self.kill
            kill()
        return super().read(n)


def test_node_killed_mid_upload_then_retry_succeeds(tmp_path):
    size = 12 * 1024 * 1024
    expected = compute_cid(PrngStream(size, seed=13))
    with JsIpfsNode(tmp_path / "node") as node:
        store = IpfsStore(node.api_url)
        with pytest.raises(StorageUnavailable, match=node.api_url) as info:
            store.add(KillAt(size, 13, at=4 * 1024 * 1024, kill=node.kill))
        assert "retry" in info.value.hint
        node.start()  # same repo, same port
        assert not store.has(expected)  # nothing was pinned by the failed upload
        assert store.add(PrngStream(size, seed=13)) == expected
        assert store.has(expected)
        store.close()


def test_missing_js_ipfs_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FOGFED_NODE_MODULES", str(tmp_path / "nowhere"))
    with pytest.raises(FogfedError, match="js-ipfs not found") as info:
        JsIpfsNode(tmp_path / "node").start()
    assert "npm ci" in info.value.hint
