"""The persistent embedded chain: state survives processes, processes share it safely."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from eth_account import Account

from fogfed.chain.artifacts import load_artifact
from fogfed.chain.embedded import (LEGACY_FILE, LOCK_TIMEOUT_ENV, STATE_FILE, ChainBusy, ChainStateError, EmbeddedChain,
                                   open_chain, parse_embedded)

ANVIL_KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

# Runs in a fresh interpreter: every fact a test checks crosses a process boundary.
PRELUDE = textwrap.dedent("""
    import json, sys
    from eth_account import Account
    from fogfed.chain.embedded import open_chain
    chain = open_chain(sys.argv[1])
    w3 = chain.web3()
    keys = chain.private_keys
    def send(key, tx):
        acct = Account.from_key(key)
        tx = {"chainId": w3.eth.chain_id, "gas": 3_000_000, "maxFeePerGas": 10**10,
              "maxPriorityFeePerGas": 1, **tx}
        with chain.locked():  # nonce read and send as one step against other processes
            tx["nonce"] = w3.eth.get_transaction_count(acct.address)
            h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
        return w3.eth.wait_for_transaction_receipt(h)
""")


def run(state: Path, body: str, *args: str) -> dict:
    code = PRELUDE + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", code, str(state), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def spawn(state: Path, body: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(body), str(state), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


DEPLOY = """
    art = json.loads(sys.argv[2])
    r = send(keys[0], {"data": art["bytecode"]})
    t = send(keys[1], {"to": sys.argv[3], "value": 12345, "gas": 21000})
    print(json.dumps({"address": r.contractAddress, "tx": r.transactionHash.hex(), "block": r.blockNumber,
                      "logs": len(r.logs), "transfer_block": t.blockNumber}))
"""

CHECK = """
    art = json.loads(sys.argv[2])
    first = json.loads(sys.argv[3])
    r = w3.eth.get_transaction_receipt(first["tx"])
    logs = w3.eth.get_logs({"address": first["address"], "fromBlock": 0, "toBlock": "latest"})
    c = w3.eth.contract(address=first["address"], abi=art["abi"])
    deployer = Account.from_key(keys[0]).address
    again = send(keys[0], {"to": sys.argv[4], "value": 1, "gas": 21000})
    print(json.dumps({
        "receipt_block": r.blockNumber, "receipt_status": r.status, "receipt_logs": len(r.logs),
        "get_logs": len(logs), "code": len(w3.eth.get_code(first["address"])),
        "is_operator": c.functions.isOperator(deployer).call(),
        "nonce0": w3.eth.get_transaction_count(deployer),
        "balance": w3.eth.get_balance(sys.argv[4]), "block": w3.eth.block_number,
        "again_status": again.status,
    }))
"""


def test_deploy_in_one_process_use_in_another(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    art = json.dumps({k: load_artifact()[k] for k in ("abi", "bytecode")})
    payee = Account.create().address
    first = run(state, DEPLOY, art, payee)
    assert first["logs"] > 0 and first["transfer_block"] == first["block"] + 1

    second = run(state, CHECK, art, json.dumps(first), payee)
    assert second["receipt_block"] == first["block"] and second["receipt_status"] == 1
    assert second["get_logs"] == second["receipt_logs"] == first["logs"]
    assert second["code"] > 0 and second["is_operator"] is True
    # nonce 0 was the deployment; the new transfer used nonce 1, so the count is now 2
    assert second["nonce0"] == 2 and second["again_status"] == 1
    assert second["balance"] == 12345 + 1
    assert second["block"] == first["transfer_block"] + 1


def test_dev_accounts_are_anvils(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path / "c")
    assert chain.private_keys[0] == ANVIL_KEY0
    w3 = chain.web3()
    assert w3.eth.accounts[0] == Account.from_key(ANVIL_KEY0).address
    assert w3.eth.get_balance(w3.eth.accounts[0]) > 10**18
    # a second instance reads the same keys back from the state directory
    assert EmbeddedChain(tmp_path / "c").private_keys == chain.private_keys


def test_gas_estimate_is_confirmed_and_close(tmp_path: Path) -> None:
    # two runs instead of py-evm's binary search (fogfed.chain.embedded._checked_gas_estimate)
    chain = EmbeddedChain(tmp_path / "c")
    w3 = chain.web3()
    acct = Account.from_key(chain.private_keys[0])
    tx = {"from": acct.address, "data": load_artifact()["bytecode"], "chainId": w3.eth.chain_id}
    estimate = w3.eth.estimate_gas(tx)
    signed = acct.sign_transaction({**tx, "gas": estimate, "nonce": 0, "maxFeePerGas": 10**10,
                                    "maxPriorityFeePerGas": 1})
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt.status == 1  # the estimate itself is enough
    assert receipt.gasUsed <= estimate <= receipt.gasUsed + receipt.gasUsed // 63 + 2300
    with pytest.raises(Exception, match="revert"):  # a call that reverts at any gas is reported, not estimated
        w3.eth.estimate_gas({"from": acct.address, "to": receipt.contractAddress, "data": "0xdeadbeef"})


def test_constant_answers_skip_the_lock(tmp_path: Path) -> None:
    from fogfed._lock import ProcessLock

    chain = EmbeddedChain(tmp_path / "c", lock_timeout=0.3)
    w3 = chain.web3()
    first = (w3.eth.chain_id, w3.eth.accounts)
    other = ProcessLock(tmp_path / "c" / "lock", "the chain", 1)  # its own open file: as another process
    other.acquire()
    try:
        assert (w3.eth.chain_id, w3.eth.accounts) == first  # no turn of the lock needed
        with pytest.raises(ChainBusy):
            w3.eth.block_number  # noqa: B018 - state is read under the lock
    finally:
        other.release()
    assert w3.eth.block_number == 0


SENDER = """
    acct = int(sys.argv[2])
    for _ in range(3):
        send(keys[acct], {"to": "0x000000000000000000000000000000000000dEaD", "value": 1, "gas": 21000})
    print(json.dumps({"done": acct}))
"""


def test_concurrent_processes_lose_no_transaction(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    open_chain(state)  # create genesis once, so the writers race only on transactions
    procs = [spawn(state, SENDER, str(i)) for i in (1, 2, 3)]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    w3 = EmbeddedChain(state).web3()
    assert w3.eth.block_number == 9
    for i in (1, 2, 3):
        assert w3.eth.get_transaction_count(w3.eth.accounts[i]) == 3
    assert w3.eth.get_balance("0x000000000000000000000000000000000000dEaD") == 9


def test_long_running_process_sees_other_processes_transactions(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    w3 = EmbeddedChain(state).web3()
    assert w3.eth.block_number == 0
    run(state, SENDER, "4")
    assert w3.eth.block_number == 3
    assert w3.eth.get_transaction_count(w3.eth.accounts[4]) == 3


def test_failed_body_leaves_saved_state_alone(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path / "c")
    w3 = chain.web3()
    with pytest.raises(RuntimeError), chain.locked():
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        raise RuntimeError("caller failed half-way")
    assert w3.eth.block_number == 0
    assert EmbeddedChain(tmp_path / "c").web3().eth.block_number == 0


@pytest.mark.parametrize("damage", ["truncate", "flip-header", "garbage", "empty", "first-design"])
def test_damaged_state_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    chain = EmbeddedChain(tmp_path / "c")
    w3 = chain.web3()
    for _ in range(5):
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
    chain.close()  # the last connection checkpoints the WAL into the database file
    path = tmp_path / "c" / STATE_FILE
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip-header":
        data[3] ^= 1
    elif damage == "garbage":
        data = bytearray(b"not a chain" * 10)
    elif damage == "first-design":  # a damaged whole-state file is refused, not converted into a new chain
        path.unlink()
        path = tmp_path / "c" / LEGACY_FILE
        data = bytearray(b"FOGFED-CHAIN-1\n" + b"x" * 80)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(ChainStateError) as info:
        EmbeddedChain(tmp_path / "c").web3().eth.get_balance(w3.eth.accounts[1])
    assert "damaged" in info.value.message and str(path) in info.value.message and info.value.hint


def test_first_design_directory_is_converted(tmp_path: Path) -> None:
    """A chain saved by the whole-file design opens with its history, then lives in SQLite."""
    chain = EmbeddedChain(tmp_path / "c")
    w3 = chain.web3()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 7})
    balance, block = w3.eth.get_balance(w3.eth.accounts[1]), w3.eth.block_number
    kv = {bytes(r[0]): bytes(r[1]) for r in chain._store._conn.execute("SELECT k, v FROM kv")}
    chain.close()
    (tmp_path / "c" / STATE_FILE).unlink()
    (tmp_path / "c" / LEGACY_FILE).write_bytes(_legacy_encode(kv))
    again = EmbeddedChain(tmp_path / "c").web3()
    assert again.eth.block_number == block and again.eth.get_balance(again.eth.accounts[1]) == balance
    assert not (tmp_path / "c" / LEGACY_FILE).exists() and (tmp_path / "c" / STATE_FILE).exists()


def _legacy_encode(kv: dict[bytes, bytes]) -> bytes:
    import hashlib
    import os
    import struct
    parts = [b"FOGFED-CHAIN-1\n", os.urandom(16), struct.pack(">Q", len(kv))]
    for k, v in kv.items():
        parts += [struct.pack(">II", len(k), len(v)), k, v]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


HOLDER = """
    import time
    with chain.locked():
        print(json.dumps({"holding": True}), flush=True)
        time.sleep(60)
"""


def test_lock_held_too_long_names_the_holder(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    open_chain(state)
    holder = spawn(state, HOLDER)
    try:
        assert json.loads(holder.stdout.readline()) == {"holding": True}
        with pytest.raises(ChainBusy) as info:
            EmbeddedChain(state, lock_timeout=0.5)
        assert f"process {holder.pid}" in info.value.message and "-c" in info.value.message
        assert "busy" in info.value.message and LOCK_TIMEOUT_ENV in info.value.hint
    finally:
        holder.kill()
        holder.wait()
    # a killed holder releases the lock at once (flock dies with the process)
    assert EmbeddedChain(state, lock_timeout=5).web3().eth.block_number == 0


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ChainStateError) as info:
        EmbeddedChain(blocker / "chain")
    assert str(blocker) in info.value.message


@pytest.mark.parametrize("rpc,expected", [
    (None, None), ("http://127.0.0.1:8545", None), ("embedded:/tmp/x", Path("/tmp/x")),
])
def test_parse_embedded(rpc: str | None, expected: Path | None) -> None:
    assert parse_embedded(rpc) == expected


@pytest.mark.parametrize("rpc", ["embedded:", "embedded:   "])
def test_parse_embedded_rejects_empty(rpc: str) -> None:
    with pytest.raises(ChainStateError):
        parse_embedded(rpc)
