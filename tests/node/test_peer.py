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
        self.reports: list[tuple[str, bytes]] = []

    def is_member(self, requester: str, file_id: bytes) -> bool:
        return (requester, file_id) in self.members

    def report(self, requester: str, evidence: bytes) -> None:
        self.reports.append((requester, evidence))


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
    with PeerServer(PEER, cache, fed.is_member, fed.report, chain_id=CHAIN_ID,
                    contract_address=CONTRACT) as s:
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
    assert fed.reports == [] and server.stats["served"] == 1


def test_non_member_refused_and_reported_with_verifiable_evidence(server, fed):
    out = io.BytesIO()
    with pytest.raises(PeerRefused, match="not an active member") as info:
        client(OUTSIDER).fetch(server.url, PEER.address, FILE, out)
    assert info.value.code == "not_member" and out.getvalue() == b""
    [(who, evidence)] = fed.reports
    assert who == OUTSIDER.address
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
    assert fed.reports == []


def test_removed_member_is_refused_from_then_on(server, fed):
    assert_still_serves(server)
    fed.members.clear()
    with pytest.raises(PeerRefused, match="not an active member"):
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


def test_forged_requester_address_refused_and_not_reported(server, fed):
    # The attacker claims to be MEMBER but can only sign with its own key.
    forged = replace(signed(OUTSIDER), requester=MEMBER.address)
    forged = replace(forged, signature=sign(OUTSIDER.account, forged.message()))
    with pytest.raises(PeerRefused, match="does not recover") as info:
        send(server, forged)
    assert info.value.code == "bad_signature"
    assert fed.reports == []  # an impostor cannot get the real member reported


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

    with PeerServer(PEER, cache, broken, fed.report, chain_id=CHAIN_ID, contract_address=CONTRACT) as s:
        with pytest.raises(PeerError, match="cannot check membership") as info:
            client().fetch(s.url, PEER.address, FILE, io.BytesIO())
    assert info.value.code == "membership_unavailable" and fed.reports == []


def test_membership_check_must_say_true(fed, cache):
    with PeerServer(PEER, cache, lambda r, f: "yes", fed.report, chain_id=CHAIN_ID,
                    contract_address=CONTRACT) as s:
        with pytest.raises(PeerRefused, match="not an active member"):
            client().fetch(s.url, PEER.address, FILE, io.BytesIO())


def test_refusal_stands_when_report_fails(fed, cache):
    def report(requester, evidence):
        raise RuntimeError("out of gas")

    with PeerServer(PEER, cache, fed.is_member, report, chain_id=CHAIN_ID, contract_address=CONTRACT) as s:
        with pytest.raises(PeerRefused, match="not an active member"):
            client(OUTSIDER).fetch(s.url, PEER.address, FILE, io.BytesIO())
        assert s.stats["report_failed"] == 1


def test_corrupted_cached_copy_is_not_served(server, cache):
    path = cache.root / "blobs" / FILE.hex()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(data)
    with pytest.raises(BlobNotCached):
        client().fetch(server.url, PEER.address, FILE, io.BytesIO())
    assert FILE not in cache


def test_replay_cache_is_bounded_and_fails_closed(fed, cache):
    with PeerServer(PEER, cache, fed.is_member, fed.report, chain_id=CHAIN_ID,
                    contract_address=CONTRACT, max_nonces=2) as s:
        client().fetch(s.url, PEER.address, FILE, io.BytesIO())
        client().fetch(s.url, PEER.address, FILE, io.BytesIO())
        with pytest.raises(PeerError, match="too many requests") as info:
            client().fetch(s.url, PEER.address, FILE, io.BytesIO())
        assert info.value.code == "busy"


def test_replay_guard_forgets_only_expired_nonces():
    guard = ReplayGuard(max_entries=2)
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
            PeerServer(PEER, cache, fed.is_member, fed.report, **args).start().stop()
