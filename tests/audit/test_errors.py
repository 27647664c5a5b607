"""Bad addresses, unreachable or refusing nodes and foreign checkpoints give clear errors."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from fogfed import audit
from fogfed._proc import free_port
from fogfed.audit.abi import decode_log, event_specs
from tests.audit.conftest import Replayed
from tests.audit.history import Script, base

# Init code of a contract whose runtime answers every call with the word 42: not FogFed.
FOREIGN_INITCODE = "0x600a600c600039600a6000f3602a60005260206000f3"


@pytest.mark.anvil
def test_an_address_without_code_is_named(w3: Web3, tmp_path: Path) -> None:
    for address in (w3.eth.accounts[5], "0x" + "12" * 20):
        with pytest.raises(audit.AuditError, match="no contract at") as err:
            audit.replay(w3, address, tmp_path / "x.sqlite")
        assert "address" in err.value.hint


@pytest.mark.anvil
def test_a_contract_that_is_not_fogfed_is_refused(w3: Web3, tmp_path: Path) -> None:
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "data": FOREIGN_INITCODE})
    address = w3.eth.wait_for_transaction_receipt(tx).contractAddress
    with pytest.raises(audit.AuditError, match="not a FogFed contract"):
        audit.replay(w3, address, tmp_path / "x.sqlite")


def test_malformed_addresses_are_refused(tmp_path: Path) -> None:
    for bad in ("0x123", "not-an-address", "0x" + "zz" * 20):
        with pytest.raises(audit.AuditError, match="not an Ethereum address"):
            audit.LogSource(Web3(), bad)


def test_an_unreachable_node_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(audit.AuditError, match=f"cannot reach the Ethereum node at {url} .*eth_chainId") as err:
        audit.connect(url)
    assert "--rpc" in err.value.hint


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(audit.AuditError, match="neither an http"):
        audit.connect("ftp://127.0.0.1:8545")


@pytest.mark.anvil
def test_a_block_beyond_the_head_is_an_error(w3: Web3, clean: Replayed, tmp_path: Path) -> None:
    with pytest.raises(audit.AuditError) as err:
        audit.replay(w3, clean.script.address, tmp_path / "x.sqlite", to_block=w3.eth.block_number + 1000)
    assert "eth_getCode" in err.value.message or "block" in err.value.message


@pytest.mark.anvil
def test_a_checkpoint_of_another_deployment_is_refused(w3: Web3, clean: Replayed, tmp_path: Path) -> None:
    other = Script(w3)
    base(other)
    with pytest.raises(audit.AuditError, match="belongs to address") as err:
        audit.replay(w3, other.address, clean.db)
    assert "--db" in err.value.hint


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(audit.AuditError, match="not an audit checkpoint"):
        audit.Checkpoint.open(junk, 1, "0x" + "00" * 20)
    with pytest.raises(audit.AuditError, match="no audit checkpoint"):
        audit.Checkpoint.open(tmp_path / "missing.sqlite")


class _Proxy(BaseHTTPRequestHandler):
    """A JSON-RPC node with a public provider's limits: forwards to Anvil, refuses wide eth_getLogs."""

    upstream = ""
    max_range = 0
    always_fail = False

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = json.loads(body)
        if req.get("method") == "eth_getLogs":
            q = req["params"][0]
            span = int(q["toBlock"], 16) - int(q["fromBlock"], 16) + 1
            if self.always_fail or span > self.max_range:
                reply = {"jsonrpc": "2.0", "id": req["id"],
                         "error": {"code": -32005, "message": f"query exceeds max block range {self.max_range}"}}
                return self._send(json.dumps(reply).encode())
        upstream = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(upstream, timeout=10) as resp:
            self._send(resp.read())

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def limited_node(anvil_url: str) -> Iterator[type[_Proxy]]:
    handler = type("Limited", (_Proxy,), {"upstream": anvil_url, "max_range": 5})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


@pytest.mark.anvil
def test_ranges_shrink_to_the_nodes_limit(limited_node: type[_Proxy], clean: Replayed, tmp_path: Path) -> None:
    w3 = audit.connect(limited_node.url)  # type: ignore[attr-defined]
    r = audit.replay(w3, clean.script.address, tmp_path / "x.sqlite", span=1000, to_block=clean.result.head)
    assert json.dumps(r.state, sort_keys=True) == json.dumps(clean.result.state, sort_keys=True)


@pytest.mark.anvil
def test_a_node_refusing_every_log_query_is_a_clear_error(limited_node: type[_Proxy], clean: Replayed,
                                                          tmp_path: Path) -> None:
    limited_node.always_fail = True
    w3 = audit.connect(limited_node.url)  # type: ignore[attr-defined]
    with pytest.raises(audit.AuditError, match="refused eth_getLogs: query exceeds max block range"):
        audit.replay(w3, clean.script.address, tmp_path / "x.sqlite")


_SPECS = event_specs()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_SPECS)), st.lists(st.binary(min_size=32, max_size=32), max_size=4),
       st.binary(max_size=400))
def test_hostile_logs_decode_or_fail_clearly(topic0: str, topics: list[bytes], data: bytes) -> None:
    log = {"topics": [topic0] + ["0x" + t.hex() for t in topics], "data": "0x" + data.hex(),
           "blockNumber": "0x1", "logIndex": "0x0", "transactionHash": "0x" + "ab" * 32}
    try:
        event = decode_log(log, _SPECS, 0)
    except audit.AuditError as exc:
        assert "does not decode" in exc.message or "indexed topics" in exc.message
    else:
        assert event is not None and event.name == _SPECS[topic0].name


def test_unknown_topics_are_skipped() -> None:
    log = {"topics": ["0x" + "ee" * 32], "data": "0x", "blockNumber": "0x1", "logIndex": "0x0",
           "transactionHash": "0x" + "ab" * 32}
    assert decode_log(log, _SPECS, 0) is None


@pytest.mark.anvil
def test_a_policy_that_is_not_utf8_does_not_stop_the_audit(w3: Web3, tmp_path: Path) -> None:
    # The contract takes any bytes as a string; a member registers a policy of invalid UTF-8.
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    s = Script(w3)
    ids = base(s)
    selector = function_signature_to_4byte_selector("registerFile(uint32,bytes32,uint32,bytes32,bytes32,uint32,string)")
    args = encode(["uint32", "bytes32", "uint32", "bytes32", "bytes32", "uint32", "bytes"],
                  [ids["f1"], b"\x61" * 32, 0, b"\x62" * 32, b"\x63" * 32, 0, b"\xff\xfe<b>\x80"])
    tx = w3.eth.send_transaction({"from": s.accounts[1], "to": s.address, "data": selector + args})
    assert w3.eth.wait_for_transaction_receipt(tx).status == 1
    db = tmp_path / "utf.sqlite"
    r = audit.replay(w3, s.address, db)
    assert audit.verify(w3, s.address, r.state, r.head) == []  # policyRef computed from the exact bytes
    with audit.Checkpoint.open(db) as cp:
        report = audit.build_report(cp)
        audit.write_html(report, cp, tmp_path / "r.html")
        audit.write_csv(report, cp, tmp_path / "csv")
    audit.write_json(report, tmp_path / "r.json")
    page = (tmp_path / "r.html").read_text()
    assert "\\xff\\xfe&lt;b&gt;\\x80" in page
