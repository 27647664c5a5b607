"""What real networks do, on Anvils of this module's own: interval mining with a confirmation depth,
fees from the node, and a proof-of-authority chain (Besu QBFT-style 97-byte extraData headers,
served by a proxy in front of Anvil that rewrites every header as such a node would send it)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from eth_account import Account
from web3 import Web3

from fogfed.chain import connect
from fogfed.chain.contract import deploy
from fogfed.chain.devnet import start_anvil
from fogfed.errors import InputError
from tests.chain.helpers import enc_key, new_account, unique_attrs

pytestmark = pytest.mark.anvil
QBFT_EXTRA = "0x" + "f8" * 97  # longer than 32 bytes, as QBFT's RLP validator list is


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    with start_anvil(log=tmp_path_factory.mktemp("anvil-net") / "anvil.log") as node:
        yield node.url


@pytest.fixture
def interval_mining(anvil):
    """Automine off, a block every second (transactions wait in the mempool), restored after."""
    w3 = Web3(Web3.HTTPProvider(anvil))
    w3.provider.make_request("evm_setAutomine", [False])
    w3.provider.make_request("evm_setIntervalMining", [1])
    yield anvil
    w3.provider.make_request("evm_setIntervalMining", [0])
    w3.provider.make_request("evm_setAutomine", [True])


def test_a_write_returns_only_once_its_block_has_the_configured_depth(interval_mining):
    chain = connect(interval_mining, confirmations=2)
    sender, to = chain.dev_accounts()[:2]
    receipt = chain.fund(to.address, 1, sender)
    assert chain.block_number() - int(receipt["blockNumber"]) >= 2
    assert chain.final_block() >= int(receipt["blockNumber"])
    assert chain.w3.eth.get_block(int(receipt["blockNumber"]))["hash"] == receipt["blockHash"]


def test_a_zero_depth_chain_returns_at_inclusion(interval_mining):
    chain = connect(interval_mining, confirmations=0)
    receipt = chain.fund(chain.dev_accounts()[1].address, 1)
    assert chain.final_block() == chain.block_number() >= int(receipt["blockNumber"])


def test_fees_come_from_the_node(interval_mining):
    chain = connect(interval_mining)
    fees = chain._fees()
    tip = int(chain.w3.eth.max_priority_fee)
    base = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
    assert fees == {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}


@pytest.mark.parametrize("bad", [-1, "latest-ish", 10**6, True])
def test_a_bad_confirmation_setting_is_refused(anvil, bad):
    with pytest.raises(InputError, match="confirmations"):
        connect(anvil, confirmations=bad)


def test_the_confirmation_setting_comes_from_the_environment(anvil, monkeypatch):
    monkeypatch.setenv("FOGFED_CONFIRMATIONS", "finalized")
    chain = connect(anvil)
    assert chain.confirmations == "finalized"
    assert 0 <= chain.final_block() <= chain.block_number()  # Anvil answers the finalized tag


class _QbftHeaders(BaseHTTPRequestHandler):
    """Forwards JSON-RPC to Anvil and gives every block header a QBFT-sized extraData."""

    upstream = ""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        reply = requests.post(self.upstream, data=body, headers={"Content-Type": "application/json"}).json()
        for item in reply if isinstance(reply, list) else [reply]:
            result = item.get("result")
            if isinstance(result, dict) and "extraData" in result:
                result["extraData"] = QBFT_EXTRA
        out = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def poa_url(anvil):
    handler = type("Handler", (_QbftHeaders,), {"upstream": anvil})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_proof_of_authority_chain_gets_the_extra_data_middleware_by_itself(poa_url):
    plain = Web3(Web3.HTTPProvider(poa_url))
    with pytest.raises(Exception, match="extraData|POA|ExtraData"):
        plain.eth.get_block("latest")  # what web3 does without the middleware
    chain = connect(poa_url, chain_id=31337)
    # the middleware moves the validator data to proofOfAuthorityData
    assert chain.w3.eth.get_block("latest")["proofOfAuthorityData"] == bytes.fromhex(QBFT_EXTRA[2:])
    receipt = chain.fund(chain.dev_accounts()[1].address, 1)  # the whole transaction path works
    assert receipt["status"] == 1


def test_a_normal_chain_does_not_get_the_poa_middleware(anvil):
    chain = connect(anvil)
    assert "ExtraDataToPOAMiddleware" not in repr(list(chain.w3.middleware_onion))


def test_a_registration_below_the_depth_is_not_acted_on(anvil):
    """A fog node reading at 3 confirmations sees no membership, no key delivery and no event of a
    registration until three blocks are on top of it; the TAS wrote it at depth 0."""
    writer = connect(anvil)
    tas = writer.dev_accounts()[0]
    fed = deploy(writer, tas)
    fid = fed.create_federation(tas, *unique_attrs(), b"\x01" * 64).value
    node = new_account(writer, tas)
    reader = type(fed).at(connect(anvil, confirmations=3), fed.address, deploy_block=fed.deploy_block)
    joined = fed.add_member(tas, fid, node.address, enc_key(node))
    fed.deliver_key(tas, node.address, fid, 0, b"sealed")
    assert fed.is_active_member(node.address, fid)  # at depth 0 it is there
    assert not reader.is_active_member(node.address, fid)
    assert reader.events(names=["MemberAdded", "KeyDelivered"]) == []
    writer.w3.provider.make_request("anvil_mine", [hex(2)])
    assert reader.chain.final_block() == joined.block_number
    assert reader.is_active_member(node.address, fid)
    assert [e.name for e in reader.events(names=["MemberAdded", "KeyDelivered"])] == ["MemberAdded"]
    writer.w3.provider.make_request("anvil_mine", [hex(1)])
    assert [e.name for e in reader.events(names=["MemberAdded", "KeyDelivered"])] == ["MemberAdded", "KeyDelivered"]


def test_a_write_whose_block_is_reorganised_away_before_its_depth_is_sent_again(anvil):
    chain = connect(anvil, confirmations=3)
    w3 = chain.w3
    to = Account.create().address
    box: dict = {}

    def send() -> None:
        try:
            box["receipt"] = chain.fund(to, 5, chain.dev_accounts()[1])
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc
    t = threading.Thread(target=send, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while w3.eth.get_balance(to) != 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    first_block = w3.eth.block_number
    # its block is replaced by an empty one; Anvil drops the transaction (it is not re-queued)
    w3.provider.make_request("anvil_reorg", [1, []])
    assert w3.eth.get_balance(to) == 0
    while t.is_alive() and time.monotonic() < deadline:
        w3.provider.make_request("evm_mine", [])
        time.sleep(0.2)
    t.join(5)
    assert "error" not in box, box.get("error")
    receipt = box["receipt"]
    assert w3.eth.get_balance(to) == 5  # fogfed broadcast it again; mined in the new chain
    assert int(receipt["blockNumber"]) > first_block - 1
    assert w3.eth.get_block(int(receipt["blockNumber"]))["hash"] == receipt["blockHash"]
    assert chain.final_block() >= int(receipt["blockNumber"])
