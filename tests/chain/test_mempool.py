"""Transactions on a busy network, on an Anvil of this module's own with automine off: a stuck
transaction replaced with bumped fees, a journal that survives a killed process and a transaction
dropped from the mempool, and clear errors for a fee cap, an underpriced send and a nonce taken by
another program."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from fogfed.chain import connect
from fogfed.chain.devnet import start_anvil
from fogfed.chain.errors import TransactionReplaced, TransactionUnderpriced
from fogfed.chain.nonces import TxJournal, bump_fees

pytestmark = pytest.mark.anvil
GWEI = 10**9
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    with start_anvil(log=tmp_path_factory.mktemp("anvil-mempool") / "anvil.log") as node:
        yield node.url


@pytest.fixture
def w3(anvil):
    w3 = Web3(Web3.HTTPProvider(anvil))
    yield w3
    w3.provider.make_request("evm_setIntervalMining", [0])
    w3.provider.make_request("evm_setAutomine", [True])


def _rpc(w3, method, *params):
    reply = w3.provider.make_request(method, list(params))
    assert "error" not in reply, reply
    return reply.get("result")


def _in_thread(fn):
    box: dict = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _wait_for(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_bump_fees_rises_at_least_an_eighth_and_follows_the_node():
    old = {"maxFeePerGas": 800, "maxPriorityFeePerGas": 80}
    assert bump_fees(old, {"maxFeePerGas": 10, "maxPriorityFeePerGas": 1}) == {"maxFeePerGas": 901,
                                                                              "maxPriorityFeePerGas": 91}
    assert bump_fees(old, {"maxFeePerGas": 5000, "maxPriorityFeePerGas": 300}) == {"maxFeePerGas": 5000,
                                                                                  "maxPriorityFeePerGas": 300}
    assert bump_fees({"gasPrice": 100}, {"gasPrice": 1}) == {"gasPrice": 114}


def test_a_stuck_transaction_is_replaced_with_bumped_fees(w3, anvil):
    chain = connect(anvil, stuck_after=1.0)
    sender, to = chain.dev_accounts()[2:4]
    nonce = int(w3.eth.get_transaction_count(sender.address, "latest"))
    _rpc(w3, "evm_setAutomine", False)
    first_fees = chain._fees()
    t, box = _in_thread(lambda: chain.fund(to.address, 7, sender))
    _wait_for(lambda: int(w3.eth.get_transaction_count(sender.address, "pending"))
              > int(w3.eth.get_transaction_count(sender.address, "latest")))
    # accepted into the mempool; now the base fee jumps above its fee cap, as in a rush
    _rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(first_fees["maxFeePerGas"] * 50))
    for _ in range(40):  # blocks keep coming; the first send's fee cap is below their base fee
        _rpc(w3, "evm_mine")
        if not t.is_alive():
            break
        time.sleep(0.25)
    t.join(30)
    assert "error" not in box, box.get("error")
    receipt = box["result"]
    assert receipt["status"] == 1
    assert len(chain.replacements) == 1
    stuck, mined = chain.replacements[0]
    assert mined == Web3.to_hex(receipt["transactionHash"]) != stuck
    assert int(receipt["effectiveGasPrice"]) > first_fees["maxFeePerGas"]  # it paid more than the first cap
    assert w3.eth.get_transaction(mined)["nonce"] == nonce  # the same nonce: a replacement, not a second send


_SENDER = """
import sys
from fogfed.chain import connect
chain = connect(sys.argv[1], tx_journal=sys.argv[2] or None, stuck_after=1000)
chain.fund(sys.argv[3], 11, chain.dev_accounts()[int(sys.argv[4])])
"""


def _killed_while_waiting(w3, anvil, journal_dir, account: int, to: str) -> int:
    """Run a process that sends 11 wei to ``to`` and waits (automine off); kill it once the
    transaction is in the mempool, then drop the mempool. Returns the transaction's nonce."""
    sender = connect(anvil).dev_accounts()[account]
    nonce = int(w3.eth.get_transaction_count(sender.address, "latest"))
    _rpc(w3, "evm_setAutomine", False)
    proc = subprocess.Popen([sys.executable, "-c", _SENDER, anvil, str(journal_dir or ""), to, str(account)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    try:
        _wait_for(lambda: int(w3.eth.get_transaction_count(sender.address, "pending")) > nonce)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process dies waiting for its receipt
        proc.wait()
    _rpc(w3, "anvil_dropAllTransactions")  # ... and the node forgets the transaction
    assert int(w3.eth.get_transaction_count(sender.address, "pending")) == nonce
    _rpc(w3, "evm_setAutomine", True)
    return nonce


def test_the_journal_survives_a_killed_process_and_a_dropped_transaction(w3, anvil, tmp_path):
    journal_dir = tmp_path / "txs"
    first_to, second_to = Account.create().address, Account.create().address
    nonce = _killed_while_waiting(w3, anvil, journal_dir, 4, first_to)
    chain = connect(anvil, tx_journal=journal_dir)  # the restarted process
    sender = chain.dev_accounts()[4]
    journal = TxJournal(journal_dir, 31337, sender.address)
    sent = journal.pending()[nonce].hashes
    receipt = chain.fund(second_to, 22, sender)
    assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce + 1  # nonce not reused
    assert w3.eth.get_balance(first_to) == 11 and w3.eth.get_balance(second_to) == 22  # nothing lost
    assert w3.eth.get_transaction_receipt(sent[-1])["status"] == 1  # the dropped one, broadcast again
    assert list(journal.pending()) == [nonce]  # re-sent, kept until a receipt is seen
    assert chain.recover(sender).mined == [nonce]
    assert journal.pending() == {} and json.loads(journal.path.read_text())["pending"] == {}


def test_without_a_journal_the_dropped_transfer_is_lost(w3, anvil):
    """The control for the test above: what the journal prevents."""
    lost, kept = Account.create().address, Account.create().address
    nonce = _killed_while_waiting(w3, anvil, None, 5, lost)
    chain = connect(anvil)
    receipt = chain.fund(kept, 22, chain.dev_accounts()[5])
    assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce  # the lost one's nonce
    assert w3.eth.get_balance(lost) == 0 and w3.eth.get_balance(kept) == 22


def test_a_nonce_taken_by_another_program_is_reported_as_replaced(w3, anvil):
    chain = connect(anvil, stuck_after=1000)
    sender = chain.dev_accounts()[6]
    nonce = int(w3.eth.get_transaction_count(sender.address, "latest"))
    _rpc(w3, "evm_setAutomine", False)
    t, box = _in_thread(lambda: chain.fund(Account.create().address, 1, sender))
    _wait_for(lambda: int(w3.eth.get_transaction_count(sender.address, "pending")) > nonce)
    fees = bump_fees(chain._fees(), chain._fees())  # the other program outbids fogfed's transaction
    other = sender.sign_transaction({"to": sender.address, "value": 0, "gas": 21000, "nonce": nonce,
                                     "chainId": 31337, **bump_fees(fees, fees)})
    w3.eth.send_raw_transaction(other.raw_transaction)
    _rpc(w3, "evm_mine")
    t.join(20)
    assert isinstance(box.get("error"), TransactionReplaced), box
    assert f"nonce {nonce}" in box["error"].message


def test_a_fee_above_the_cap_is_refused_before_anything_is_sent(w3, anvil):
    chain = connect(anvil, max_fee_per_gas=1)
    sender = chain.dev_accounts()[7]
    before = int(w3.eth.get_transaction_count(sender.address, "pending"))
    with pytest.raises(TransactionUnderpriced, match="above the cap of 1 wei"):
        chain.fund(Account.create().address, 1, sender)
    assert int(w3.eth.get_transaction_count(sender.address, "pending")) == before


def test_a_fee_below_the_base_fee_is_a_clear_error(w3, anvil, monkeypatch):
    chain = connect(anvil)
    sender = chain.dev_accounts()[8]
    monkeypatch.setattr(chain, "_fees", lambda: {"maxFeePerGas": 1, "maxPriorityFeePerGas": 1})
    with pytest.raises(TransactionUnderpriced, match="below the base fee"):
        chain.fund(Account.create().address, 1, sender)


def test_on_nonce_hears_the_nonce_before_the_transaction_leaves(w3, anvil):
    """``Chain.send(on_nonce=)`` is told the nonce while the node has not seen the transaction yet (a
    caller that notes it can tell its fate after a kill); ``nonce_used`` stays False while the
    transaction waits in the mempool and turns True once it is mined."""
    chain = connect(anvil, stuck_after=1000)
    sender = chain.dev_accounts()[9]
    nonce = int(w3.eth.get_transaction_count(sender.address, "latest"))
    heard = []
    _rpc(w3, "evm_setAutomine", False)
    t, box = _in_thread(lambda: chain.send(sender, to=Account.create().address, value=1, function="fund",
                                           on_nonce=lambda n: heard.append(
                                               (n, int(w3.eth.get_transaction_count(sender.address, "pending"))))))
    _wait_for(lambda: int(w3.eth.get_transaction_count(sender.address, "pending")) > nonce)
    assert heard == [(nonce, nonce)]  # heard before the node had it
    assert not chain.nonce_used(sender.address, nonce)
    _rpc(w3, "evm_mine")
    t.join(20)
    assert "error" not in box, box.get("error")
    assert w3.eth.get_transaction(box["result"]["transactionHash"])["nonce"] == nonce
    assert chain.nonce_used(sender.address, nonce) and not chain.nonce_used(sender.address, nonce + 1)
