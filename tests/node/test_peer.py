"""Peer server and client over real sockets on 127.0.0.1, attacked from every side."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import socket
import threading
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fogfed._proc import free_port
from fogfed.errors import FogfedError, InputError
from fogfed.keys import NodeIdentity
from fogfed.keys.signing import sign
from fogfed.node.cache import BlobCache
from fogfed.node.peer import (
    BlobNotCached, PeerClient, PeerError, PeerRefused, PeerServer, PeerUnreachable, ReplayGuard,
    send_request,
)
from tests.node.hostile import HostilePeer
from fogfed.node.peer_protocol import (
    H_AUDIENCE, H_FILE, H_NONCE, H_REQUESTER, H_SIGNATURE, H_TIMESTAMP, MalformedRequest,
    parse_evidence, sign_request,
)

CHAIN_ID = 31337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PEER, MEMBER, OUTSIDER = (NodeIdentity.generate() for _ in range(3))
FILE = hashlib.sha256(b"file one").digest()
OTHER_FILE = hashlib.sha256(b"file two").digest()
DATA = os.urandom(300_000)  # several chunks, so the body really is streamed


class Federation:
    """Stand-in for the contract's membership view: a plain set the test controls."""

    def __init__(self) -> None:
        self.members = {(MEMBER.address, FILE), (MEMBER.address, OTHER_FILE)}
        self.calls = 0

    def is_member(self, requester: str, file_id: bytes) -> bool:
        self.calls += 1
        return (requester, file_id) in self.members


@pytest.fixture
def fed():
    return Federation()


@pytest.fixture
def cache(tmp_path):
    with BlobCache(tmp_path / "cache", 10_000_000) as c:
        c.put(FILE, io.BytesIO(DATA), hashlib.sha256(DATA).digest())
        yield c


@pytest.fixture
def server(fed, cache):
    with PeerServer(PEER, cache, fed.is_member, chain_id=CHAIN_ID,
                    contract_address=CONTRACT, membership_ttl=0) as s:
        yield s


def client(identity=MEMBER, chain_id=CHAIN_ID, contract=CONTRACT) -> PeerClient:
    return PeerClient(identity, chain_id, contract, timeout=10)


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def send(server, request, dst=None):
    return send_request("127.0.0.1", port_of(server), request, dst or io.BytesIO(), timeout=10)


def signed(identity=MEMBER, **overrides):
    args = dict(chain_id=CHAIN_ID, contract_address=CONTRACT, audience=PEER.address, file_id=FILE)
    return sign_request(identity.account, **{**args, **overrides})


def raw_get(server, path, headers, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def assert_still_serves(server):
    out = io.BytesIO()
    client().fetch(server.url, PEER.address, FILE, out)
    assert out.getvalue() == DATA


def test_member_fetches_streamed_copy(server, fed):
    assert server.url.startswith("http://127.0.0.1:")
    out, seen = io.BytesIO(), []
    result = client().fetch(server.url, PEER.address, FILE, out, progress=seen.append)
    assert out.getvalue() == DATA
    assert result.size == len(DATA) and result.sha256 == hashlib.sha256(DATA).digest()
    assert seen[-1] == len(DATA) and len(seen) > 1
    assert server.stats["served"] == 1


def test_non_member_refused_and_the_request_is_verifiable_evidence(server, fed):
    out = io.BytesIO()
    with pytest.raises(PeerRefused, match="may not read") as info:
        client(OUTSIDER).fetch(server.url, PEER.address, FILE, out)
    assert info.value.code == "not_member" and out.getvalue() == b""
    evidence = signed(OUTSIDER).evidence()
    request, signer = parse_evidence(evidence)
    assert signer == OUTSIDER.address and request.file_id == FILE and request.audience == PEER.address
    forged = evidence.replace(FILE.hex().encode(), OTHER_FILE.hex().encode())
    with pytest.raises(MalformedRequest):
        parse_evidence(forged)


def test_non_member_learns_nothing_about_uncached_files(server, fed):
    with pytest.raises(PeerRefused) as info:
        client(OUTSIDER).fetch(server.url, PEER.address, OTHER_FILE, io.BytesIO())
    assert info.value.code == "not_member"


def test_member_asking_for_uncached_file(server, fed):
    with pytest.raises(BlobNotCached, match="no intact copy"):
        client().fetch(server.url, PEER.address, OTHER_FILE, io.BytesIO())


def test_removed_member_is_refused_from_then_on(server, fed):
    assert_still_serves(server)
    fed.members.clear()
    with pytest.raises(PeerRefused, match="may not read"):
        client().fetch(server.url, PEER.address, FILE, io.BytesIO())


def test_replayed_request_refused(server, fed):
    request = signed()
    out = io.BytesIO()
    send(server, request, out)
    assert out.getvalue() == DATA
    with pytest.raises(PeerRefused, match="replayed") as info:
        send(server, request)
    assert info.value.code == "replay"
    # same nonce with a new signature and timestamp is a replay too
    with pytest.raises(PeerRefused, match="replayed"):
        send(server, signed(nonce=request.nonce, timestamp=request.timestamp + 1))


@pytest.mark.parametrize("skew", [-61, 61, -10**6, 10**9])
def test_stale_and_future_timestamps_refused(server, skew):
    with pytest.raises(PeerRefused, match="more than 60 s") as info:
        send(server, signed(timestamp=int(time.time()) + skew))
    assert info.value.code == "stale"


def test_timestamp_inside_window_accepted(server):
    send(server, signed(timestamp=int(time.time()) - 50))


def test_request_for_another_audience_refused(server):
    elsewhere = NodeIdentity.generate().address
    with pytest.raises(PeerRefused, match="addressed to") as info:
        send(server, signed(audience=elsewhere))
    assert info.value.code == "wrong_audience"


def test_request_signed_for_another_audience_then_readdressed_refused(server):
    stolen = signed(audience=NodeIdentity.generate().address)
    with pytest.raises(PeerRefused) as info:
        send(server, replace(stolen, audience=PEER.address))
    assert info.value.code == "bad_signature"


def test_forged_requester_address_refused(server, fed):
    # The attacker claims to be MEMBER but can only sign with its own key.
    forged = replace(signed(OUTSIDER), requester=MEMBER.address)
    forged = replace(forged, signature=sign(OUTSIDER.account, forged.message()))
    with pytest.raises(PeerRefused, match="does not recover") as info:
        send(server, forged)
    assert info.value.code == "bad_signature" and fed.calls == 0  # refused before any chain call


@pytest.mark.parametrize("field, value", [
    ("file_id", OTHER_FILE), ("nonce", b"\x01" * 16), ("timestamp", 1),
])
def test_any_sent_field_changed_breaks_the_signature(server, field, value):
    # (chain id and contract are not sent: the server puts its own into the message,
    # see test_request_for_another_deployment_refused)
    with pytest.raises(PeerRefused, match="does not recover") as info:
        send(server, replace(signed(), **{field: value}))
    assert info.value.code == "bad_signature"


def test_request_for_another_deployment_refused(server):
    with pytest.raises(PeerRefused, match="does not recover"):
        client(chain_id=1).fetch(server.url, PEER.address, FILE, io.BytesIO())
    with pytest.raises(PeerRefused, match="does not recover"):
        client(contract="0x" + "22" * 20).fetch(server.url, PEER.address, FILE, io.BytesIO())


def _valid_headers() -> dict[str, str]:
    return signed().headers()


HEADER_NAMES = [H_REQUESTER, H_AUDIENCE, H_FILE, H_NONCE, H_TIMESTAMP, H_SIGNATURE]
junk = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=150)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(broken=st.lists(st.sampled_from(HEADER_NAMES), min_size=1, max_size=6, unique=True),
       data=st.data())
def test_malformed_headers_get_400_and_server_stays_up(server, broken, data):
    headers = _valid_headers()
    for name in broken:
        choice = data.draw(st.sampled_from(["drop", "junk", "extend", "upper"]))
        # 'z' is legal in no header, so each broken header is surely malformed
        if choice == "drop":
            del headers[name]
        elif choice == "junk":
            headers[name] = data.draw(junk) + "z"
        elif choice == "extend":
            headers[name] = headers[name] + data.draw(st.sampled_from(["0", "00", "z"]))
            if name == H_TIMESTAMP:  # a longer number is still a number
                headers[name] += "z"
        else:
            headers[name] = headers[name].upper() + "Z"
    status, body = raw_get(server, "/v1/blob/" + FILE.hex(), list(headers.items()))
    assert status == 400
    error = json.loads(body)["error"]
    assert error["code"] == "malformed" and "header X-Fogfed-" in error["message"]
    assert_still_serves(server)


@pytest.mark.parametrize("method, path, extra, match", [
    ("GET", "/v1/blob/" + FILE.hex().upper(), [], "path must be"),
    ("GET", "/v1/blob/" + FILE.hex() + "?x=1", [], "path must be"),
    ("GET", "/v1/blob/../../etc/passwd", [], "path must be"),
    ("GET", "/", [], "path must be"),
    ("POST", "/v1/blob/" + FILE.hex(), [], "method 'POST'"),
    ("DELETE", "/v1/blob/" + FILE.hex(), [], "method 'DELETE'"),
    ("GET", "/v1/blob/" + FILE.hex(), [(H_NONCE, "00" * 16)], "exactly once"),
    ("GET", "/v1/blob/" + OTHER_FILE.hex(), [], "does not match the file id in the path"),
])
def test_bad_request_shapes(server, method, path, extra, match):
    status, body = raw_get(server, path, list(_valid_headers().items()) + extra, method=method)
    assert status == 400
    assert match in json.loads(body)["error"]["message"]


def test_garbage_on_the_socket_does_not_hurt_the_server(server):
    for garbage in (b"\x00\xff" * 100 + b"\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"x" * 70_000 + b"\r\n", b""):
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as s:
            s.sendall(garbage)
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(4096)
        assert reply == b"" or reply.startswith(b"HTTP/1.") and b" 200 " not in reply[:20]
    assert_still_serves(server)


def test_client_hanging_up_mid_stream_does_not_hurt_the_server(server):
    request = signed()
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers().items())
        s.sendall(f"GET {request.path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    assert_still_serves(server)


def test_unreachable_peer_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PeerUnreachable, match="unreachable") as info:
        client().fetch(url, PEER.address, FILE, io.BytesIO())
    assert "fetch from storage" in info.value.hint


def test_peer_speaking_nonsense_is_a_clear_error():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n")
        conn.close()

    t = threading.Thread(target=answer)
    t.start()
    try:
        with pytest.raises(PeerError, match="broken HTTP response"):
            client().fetch(f"http://127.0.0.1:{port}", PEER.address, FILE, io.BytesIO())
    finally:
        t.join()
        listener.close()


def test_client_caps_what_it_accepts(server):
    with pytest.raises(PeerError, match="more than 1000 bytes"):
        client().fetch(server.url, PEER.address, FILE, io.BytesIO(), max_bytes=1000)


@pytest.mark.parametrize("url", ["127.0.0.1:80", "https://127.0.0.1:1", "http://127.0.0.1",
                                 "http://127.0.0.1:99999", "http://h:1/path", "http://u@h:1", None])
def test_bad_peer_url(url):
    with pytest.raises(InputError, match="http://HOST:PORT"):
        client().fetch(url, PEER.address, FILE, io.BytesIO())


@pytest.mark.parametrize("address, file_id", [("peer", FILE), (PEER.address, b"short")],
                         ids=["bad-peer-address", "bad-file-id"])
def test_bad_client_arguments(server, address, file_id):
    with pytest.raises(InputError):
        client().fetch(server.url, address, file_id, io.BytesIO())


def test_membership_check_failure_fails_closed(fed, cache):
    def broken(requester, file_id):
        raise ConnectionError("chain unreachable")

    with PeerServer(PEER, cache, broken, chain_id=CHAIN_ID, contract_address=CONTRACT) as s:
        with pytest.raises(PeerError, match="cannot check membership") as info:
            client().fetch(s.url, PEER.address, FILE, io.BytesIO())
    assert info.value.code == "membership_unavailable"


def test_membership_check_must_say_true(fed, cache):
    with PeerServer(PEER, cache, lambda r, f: "yes", chain_id=CHAIN_ID,
                    contract_address=CONTRACT) as s:
        with pytest.raises(PeerRefused, match="may not read"):
            client().fetch(s.url, PEER.address, FILE, io.BytesIO())


def test_corrupted_cached_copy_is_not_served(server, cache):
    path = cache.root / "blobs" / FILE.hex()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(data)
    with pytest.raises(BlobNotCached):
        client().fetch(server.url, PEER.address, FILE, io.BytesIO())
    assert FILE not in cache


def test_replay_cache_is_bounded_and_fails_closed(fed, cache):
    with PeerServer(PEER, cache, fed.is_member, chain_id=CHAIN_ID,
                    contract_address=CONTRACT, max_nonces=2, nonces_per_requester=2) as s:
        client().fetch(s.url, PEER.address, FILE, io.BytesIO())
        client().fetch(s.url, PEER.address, FILE, io.BytesIO())
        with pytest.raises(PeerError, match="too many requests") as info:
            client().fetch(s.url, PEER.address, FILE, io.BytesIO())
        assert info.value.code == "busy"


def test_replay_guard_forgets_only_expired_nonces():
    guard = ReplayGuard(max_entries=2, per_requester=2)
    assert guard.check_and_record(b"a", expires_at=10, now=0) == "fresh"
    assert guard.check_and_record(b"a", expires_at=10, now=5) == "replay"
    assert guard.check_and_record(b"b", expires_at=20, now=5) == "fresh"
    assert guard.check_and_record(b"c", expires_at=20, now=5) == "full"
    assert guard.check_and_record(b"c", expires_at=30, now=10) == "fresh"  # "a" expired
    assert guard.check_and_record(b"b", expires_at=30, now=10) == "replay"


def test_concurrent_members_fetch(server):
    errors = []

    def fetch():
        try:
            out = io.BytesIO()
            client().fetch(server.url, PEER.address, FILE, out)
            assert out.getvalue() == DATA
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and server.stats["served"] == 8


@pytest.mark.parametrize("kwargs, match", [
    ({"chain_id": 0}, "chain id"), ({"contract_address": "0x12"}, "contract address"),
    ({"window": 0}, "freshness window"), ({"port": "taken"}, "cannot listen"),
])
def test_bad_server_settings(fed, cache, kwargs, match):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        if kwargs.get("port") == "taken":
            kwargs = {"port": taken.getsockname()[1]}
        args = {"chain_id": CHAIN_ID, "contract_address": CONTRACT, **kwargs}
        with pytest.raises(FogfedError, match=match):
            PeerServer(PEER, cache, fed.is_member, **args).start().stop()


# -- attacks of issue 10 (items 3 and 9) ----------------------------------------------------------

def test_outsiders_with_free_keys_cannot_fill_the_nonce_store(fed, cache):
    """Item 9: valid signatures cost nothing, so outsiders could fill the bounded nonce store and
    lock members out. Membership is checked (and cached) before any nonce is recorded."""
    with PeerServer(PEER, cache, fed.is_member, chain_id=CHAIN_ID, contract_address=CONTRACT,
                    max_nonces=4) as s:
        for _ in range(12):  # fresh outsiders, each with a fresh key and nonce
            with pytest.raises(PeerRefused) as info:
                send(s, signed(NodeIdentity.generate()))
            assert info.value.code == "not_member"
        for _ in range(2):  # the same outsider again: answered from the membership cache
            with pytest.raises(PeerRefused):
                send(s, signed(OUTSIDER))
        calls = fed.calls
        with pytest.raises(PeerRefused):
            send(s, signed(OUTSIDER))
        assert fed.calls == calls  # no chain call for a cached answer
        assert_still_serves(s)  # the store holds members' nonces only


def test_one_member_cannot_take_the_whole_nonce_store(fed, cache):
    greedy, other = NodeIdentity.generate(), MEMBER
    fed.members.add((greedy.address, FILE))
    with PeerServer(PEER, cache, fed.is_member, chain_id=CHAIN_ID, contract_address=CONTRACT,
                    max_nonces=4, nonces_per_requester=2) as s:
        send(s, signed(greedy))
        send(s, signed(greedy))
        with pytest.raises(PeerError) as info:
            send(s, signed(greedy))
        assert info.value.code == "busy" and "this requester" in str(info.value)
        out = io.BytesIO()
        send(s, signed(other), out)
        assert out.getvalue() == DATA


def test_a_flood_is_cut_at_the_declared_size_and_never_written():
    """Item 3: a 64 MiB flood for a small file; the fetcher writes no more than the size declared."""
    def flood():
        for _ in range(1024):
            yield b"\xaa" * 65536

    peer = HostilePeer(flood)
    out = io.BytesIO()
    try:
        with pytest.raises(PeerError) as info:
            client().fetch(peer.url, PEER.address, FILE, out, max_bytes=20_000)
    finally:
        peer.close()
    assert info.value.code == "too_large"
    assert len(out.getvalue()) <= 20_000


def test_a_trickle_is_ended_by_the_deadline():
    """Item 3: one byte now and then keeps every socket read alive; the overall deadline ends it."""
    def trickle():
        for _ in range(100):
            yield b"x"
            time.sleep(0.2)

    peer = HostilePeer(trickle)
    started = time.monotonic()
    try:
        with pytest.raises(PeerError) as info:
            client().fetch(peer.url, PEER.address, FILE, io.BytesIO(), max_bytes=20_000, deadline=1.0)
    finally:
        peer.close()
    assert info.value.code == "too_slow"
    assert time.monotonic() - started < 5


def test_the_default_deadline_follows_the_bound():
    c = PeerClient(MEMBER, CHAIN_ID, CONTRACT, timeout=10, min_rate=1000)
    assert c.deadline_for(5000) == 15.0
