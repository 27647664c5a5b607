"""The chain or the IPFS daemon goes away in the middle of `fogfed node upload` (SPEC section 6).

`node upload` runs in-process (fogfed.cli.main) against Anvil behind a relay that is taken down at a
named step (fogfed._faults, the FOGFED_KILL_AT names) or right after registerFile reached Anvil, and
against a real js-ipfs daemon that is stopped (SIGTERM) at a step or in the middle of the transfer.
While a service is down the command fails with one line naming it; once it is back the same command
finishes the upload: one FileRegistered per file, the node's list equal to the chain, the registered
ciphertext readable from IPFS, and no transaction sent when IPFS was down before anything was stored.
The daemon's pins afterwards are those of the registered files and nothing else: what an interrupted
attempt pinned (its ciphertext, its wrapped key) is unpinned by the attempt or by the retry
(fogfed.node.leftovers.UploadLeftovers), also when the daemon's reply to the add is lost after it
pinned (a proxy drops it; the uploader survives or is killed), and when registerFile was left in
Anvil's mempool (automine off) and then mined, replaced by another transaction with its nonce, or
dropped: kept while it may still be mined, unpinned once the chain shows it never can be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from fogfed._faults import at_step
from fogfed.chain import connect, connection
from fogfed.node import FogNode
from fogfed.node.home import TMP
from fogfed.node.leftovers import reclaim_leftovers
from fogfed.protocol.files import cid_of_file_id
from fogfed.storage import IpfsStore
from fogfed.storage.cids import parse_cid
from fogfed.storage.jsipfs import JsIpfsNode
from fogfed.tas import TrustedAuthority
from tests.cli.helpers import PASSPHRASE, run_inproc
from tests.fixtures.outage import RpcRelay
from tests.storage.hostile import ReplyDroppingProxy
from tests.tas.test_faults import LIGHT


@pytest.fixture(scope="module")
def world(tmp_path_factory, anvil_url: str):
    from eth_account import Account

    root = tmp_path_factory.mktemp("nodeoutages")
    ipfs = JsIpfsNode(root / "ipfs")
    ipfs.start()
    relay = RpcRelay(anvil_url).start()
    try:
        direct = connect(anvil_url)
        key = Account.create()
        direct.fund(key.address, 100 * 10**18, sender=direct.dev_accounts()[6])
        tas = TrustedAuthority.init(root / "tas", direct, PASSPHRASE, account=key, kdf=LIGHT)
        node = FogNode.init(root / "node", direct, tas.contract_address, IpfsStore(ipfs.api_url), PASSPHRASE,
                            kdf=LIGHT)
        tas.enroll(node.enrollment_request("outage", "health"), approve=True, fund_wei=10**18)
        node.refresh_keys()
        address = node.address
        node.close()
        yield root, relay, ipfs, tas, address
    finally:
        relay.down()
        ipfs.stop()


@pytest.fixture()
def upload(world, monkeypatch, capsys):
    root, relay, ipfs, _, _ = world
    for k in [k for k in os.environ if k.startswith("FOGFED_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("FOGFED_HOME", str(root))
    monkeypatch.setenv("FOGFED_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("FOGFED_RPC", relay.url)
    monkeypatch.setenv("FOGFED_IPFS", ipfs.api_url)
    monkeypatch.chdir(root)
    return lambda src: run_inproc(capsys, "node", "upload", "--home", str(root / "node"), str(src), "--json")


def registrations(tas: TrustedAuthority, uploader: str) -> list[str]:
    return ["0x" + bytes(e.args["fileId"]).hex()
            for e in tas.fed.events(names=["FileRegistered"], where={"uploader": uploader})]


def _mined_registrations(tas: TrustedAuthority, uploader: str, before: list[str], relay: RpcRelay) -> list[str]:
    """The registrations after ``before``, once Anvil has mined the one it accepted: automine runs just
    after eth_sendRawTransaction answers, which on a loaded machine can be after the node gave up."""
    deadline = time.monotonic() + 20
    while True:
        new = registrations(tas, uploader)[len(before):]
        if new or time.monotonic() > deadline:
            assert new, f"nothing registered; the relay saw {relay.calls[-12:]}"
            return new
        time.sleep(0.2)


def pins(ipfs: JsIpfsNode) -> set[str]:
    """The daemon's recursive pins, asked over its HTTP API (CIDv0)."""
    reply = requests.post(f"{ipfs.api_url}/api/v0/pin/ls", params={"type": "recursive"}, timeout=30)
    reply.raise_for_status()
    return {parse_cid(k).key for k in reply.json()["Keys"]}


def leftover_records(root: Path) -> list[Path]:
    return sorted((root / "node" / "tmp").glob("*.stored"))


def check_after(world, src: Path, before: list[str], out: str, pinned_before: set[str]) -> dict:
    """One new registration, the file the retry printed; the node's list equals the chain; IPFS has it,
    and pins exactly what it pinned before plus that file's ciphertext and wrapped key."""
    root, relay, ipfs, tas, address = world
    result = json.loads(out)
    regs = registrations(tas, address)
    assert regs == before + [result["file_id"]]
    key = cid_of_file_id(tas.fed.file(bytes.fromhex(result["file_id"][2:])).enc_sk_ref)
    assert pins(ipfs) == pinned_before | {result["cid"], key}
    assert leftover_records(root) == []
    with FogNode.open(root / "node", connect(relay.url), IpfsStore(ipfs.api_url), PASSPHRASE) as node:
        assert [f["file_id"] for f in node.files()] == regs
        assert node.files()[-1]["name"] == src.name
    assert sum(len(b) for b in IpfsStore(ipfs.api_url).cat(result["cid"])) >= src.stat().st_size
    return result


def source(world, name: str) -> Path:
    src = world[0] / name
    src.write_bytes(os.urandom(200_000))
    return src


def assert_error(code: int, out: str, err: str, message: str, hint: str) -> None:
    """Under --json the error is the one JSON document on stdout: exit 1, a message naming the service."""
    assert code == 1 and "Traceback" not in err, err
    doc = json.loads(out)["error"]
    assert message in doc["message"] and hint in doc["hint"] and doc["exit_code"] == 1, doc


def assert_chain_down(code: int, out: str, err: str, relay: RpcRelay) -> None:
    assert_error(code, out, err, f"cannot reach the Ethereum node at {relay.url}", "is it running")


def assert_ipfs_down(code: int, out: str, err: str, ipfs: JsIpfsNode) -> None:
    assert_error(code, out, err, f"IPFS node at http://127.0.0.1:{ipfs.port} is unreachable", "start the node")


@pytest.mark.parametrize("stop_at", ["upload:stored", "upload:registered"])
def test_chain_stopped_mid_upload(world, upload, stop_at: str) -> None:
    root, relay, ipfs, tas, address = world
    src, before = source(world, f"chain-{stop_at.replace(':', '-')}.bin"), registrations(tas, address)
    pinned = pins(ipfs)
    with at_step(stop_at, relay.down):
        code, out, err = upload(src)
    assert_chain_down(code, out, err, relay)
    assert len(registrations(tas, address)) == len(before) + (stop_at == "upload:registered")
    relay.up()
    code, out, err = upload(src)
    assert code == 0, err
    assert check_after(world, src, before, out, pinned)["resumed"] is (stop_at == "upload:registered")


@pytest.mark.parametrize("deliver", [False, True], ids=["reply-lost", "receipt-lost"])
def test_chain_lost_after_register_file_was_sent(world, upload, deliver: bool) -> None:
    """registerFile reached Anvil and was mined; then the chain went away (before its reply, or while the
    node waited for the receipt). The retry finishes that registration instead of making a second file."""
    root, relay, ipfs, tas, address = world
    src, before = source(world, f"sent-{deliver}.bin"), registrations(tas, address)
    pinned = pins(ipfs)
    relay.down_after("eth_sendRawTransaction", 1, deliver=deliver)
    code, out, err = upload(src)
    assert_chain_down(code, out, err, relay)
    [registered] = _mined_registrations(tas, address, before, relay)
    relay.up()
    code, out, err = upload(src)
    assert code == 0, err
    result = check_after(world, src, before, out, pinned)
    assert result["resumed"] is True and result["file_id"] == registered


def test_ipfs_stopped_after_the_ciphertext_was_stored(world, upload) -> None:
    root, relay, ipfs, tas, address = world
    src, before = source(world, "ipfs-stored.bin"), registrations(tas, address)
    pinned = pins(ipfs)
    sent = relay.count("eth_sendRawTransaction")
    with at_step("upload:stored", ipfs.stop):  # the wrapped file key goes to IPFS next
        code, out, err = upload(src)
    assert_ipfs_down(code, out, err, ipfs)
    assert relay.count("eth_sendRawTransaction") == sent and registrations(tas, address) == before
    [record] = leftover_records(root)  # the daemon was down: the attempt could not unpin its ciphertext
    first = json.loads(record.read_text().splitlines()[0])["cid"]
    ipfs.start()
    assert IpfsStore(ipfs.api_url).has(first) and pins(ipfs) == pinned | {first}  # a real leftover
    code, out, err = upload(src)
    assert code == 0, err
    assert check_after(world, src, before, out, pinned)["resumed"] is False
    assert not IpfsStore(ipfs.api_url).has(first)


def test_ipfs_down_before_the_upload_costs_no_gas(world, upload) -> None:
    root, relay, ipfs, tas, address = world
    src, before = source(world, "ipfs-before.bin"), registrations(tas, address)
    pinned = pins(ipfs)
    sent = relay.count("eth_sendRawTransaction")
    ipfs.stop()
    try:
        code, out, err = upload(src)
        assert_ipfs_down(code, out, err, ipfs)
        assert relay.count("eth_sendRawTransaction") == sent
    finally:
        ipfs.start()
    code, out, err = upload(src)
    assert code == 0, err
    check_after(world, src, before, out, pinned)


def test_ipfs_stopped_in_the_middle_of_the_transfer(world) -> None:
    """The daemon stops while the ciphertext streams to it (after its first 256 KiB chunk)."""
    from fogfed.storage.errors import StorageUnavailable

    root, relay, ipfs, tas, address = world
    src = world[0] / "ipfs-midway.bin"
    src.write_bytes(os.urandom(3 << 20))
    before = registrations(tas, address)
    pinned = pins(ipfs)
    chain = connect(relay.url)

    def stop_midway(done: int) -> None:
        if done >= 1 << 20 and ipfs.pid is not None:
            ipfs.stop()
    with FogNode.open(root / "node", chain, IpfsStore(ipfs.api_url), PASSPHRASE) as node:
        with pytest.raises(StorageUnavailable, match=f"IPFS node at http://127.0.0.1:{ipfs.port} is unreachable"):
            node.upload(src, progress=stop_midway)
    assert registrations(tas, address) == before
    ipfs.start()
    with FogNode.open(root / "node", chain, IpfsStore(ipfs.api_url), PASSPHRASE) as node:
        result = node.upload(src)
    assert registrations(tas, address) == before + [result.file_id_hex]
    assert sum(len(b) for b in IpfsStore(ipfs.api_url).cat(result.cid)) >= src.stat().st_size
    key = cid_of_file_id(tas.fed.file(result.file_id).enc_sk_ref)
    assert pins(ipfs) == pinned | {result.cid, key} and leftover_records(root) == []


def _record(root: Path) -> tuple[list[str], list[dict]]:
    """The CIDs and the registerFile signings of the one upload record left."""
    [path] = leftover_records(root)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [e["cid"] for e in lines if "cid" in e], [e for e in lines if "sent" in e]


def _uploaded(world, out: str) -> tuple[str, str]:
    """(ciphertext CID, wrapped-key CID) of the upload the CLI printed."""
    result = json.loads(out)
    return result["cid"], cid_of_file_id(world[3].fed.file(bytes.fromhex(result["file_id"][2:])).enc_sk_ref)


@pytest.mark.parametrize("fate", ["mined", "replaced", "dropped-journaled", "dropped"])
def test_a_registration_left_in_the_mempool(world, upload, monkeypatch, anvil_url: str, fate: str) -> None:
    """Anvil not mining: registerFile waits in its mempool when the chain goes away. While it may still be
    mined, a reclaim keeps what the upload stored. Then it is mined (the next upload keeps that file), or
    another transaction takes its nonce (the next upload unpins it), or Anvil drops it: the transaction
    journal (on by default on a JSON-RPC chain) broadcasts it again with the next upload's first send, so
    it is mined and kept; without the journal the next upload's own registration takes the nonce, and
    the upload after that unpins it."""
    root, relay, ipfs, tas, address = world
    if fate == "dropped":
        monkeypatch.setenv("FOGFED_TX_JOURNAL", "off")
    src, before = source(world, f"mempool-{fate}.bin"), registrations(tas, address)
    pinned = pins(ipfs)

    def rpc(method: str, *params: object) -> object:
        reply = requests.post(anvil_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                              timeout=10).json()
        assert "error" not in reply, reply
        return reply.get("result")
    rpc("evm_setAutomine", False)
    try:
        with at_step("sent:registerFile", relay.down):
            code, out, err = upload(src)
        assert_chain_down(code, out, err, relay)
        relay.up()
        cids, signed = _record(root)
        [sent] = signed
        assert len(cids) == 2 and pins(ipfs) == pinned | set(cids)
        chain = connect(relay.url)
        with FogNode.open(root / "node", chain, IpfsStore(ipfs.api_url), PASSPHRASE) as node:
            assert not chain.nonce_used(sent["from"], sent["nonce"])  # in the mempool: may still be mined
            assert reclaim_leftovers(root / "node" / TMP, node.store, node._registered_key, (),
                                     node._registration_dropped) == 0
            account = node.account
        assert pins(ipfs) == pinned | set(cids) and len(leftover_records(root)) == 1
        if fate == "mined":
            rpc("evm_mine")
        elif fate == "replaced":  # the same nonce, higher fees: a transfer to itself wins the slot
            fees = {k: 3 * v for k, v in chain._fees().items()}
            other = account.sign_transaction({"to": account.address, "value": 0, "gas": 21000, "chainId": 31337,
                                              "nonce": sent["nonce"], **fees})
            chain.w3.eth.send_raw_transaction(other.raw_transaction)
            rpc("evm_mine")
            assert registrations(tas, address) == before
        else:
            rpc("anvil_dropAllTransactions")
            if fate == "dropped":  # a new CLI process would not remember the nonce after the dropped one
                monkeypatch.setattr(connection, "_slots", {})
    finally:
        rpc("evm_setAutomine", True)
    code, out, err = upload(source(world, f"after-{fate}.bin"))
    assert code == 0, err
    after = set(_uploaded(world, out))
    if fate == "mined":
        assert registrations(tas, address) == before + [sent["sent"], json.loads(out)["file_id"]]
        assert pins(ipfs) == pinned | set(cids) | after
    elif fate == "replaced":
        assert registrations(tas, address) == before + [json.loads(out)["file_id"]]
        assert pins(ipfs) == pinned | after
    else:  # the nonce was still open when this upload began (kept); then it was taken
        assert chain.nonce_used(sent["from"], sent["nonce"]) and pins(ipfs) == pinned | set(cids) | after
        journaled = fate == "dropped-journaled"  # broadcast again: the first attempt's file is registered
        assert registrations(tas, address) == before + [sent["sent"]] * journaled + [json.loads(out)["file_id"]]
        code, out, err = upload(source(world, f"after-{fate}-2.bin"))
        assert code == 0, err
        assert pins(ipfs) == pinned | (set(cids) if journaled else set()) | after | set(_uploaded(world, out))
    assert leftover_records(root) == []


def test_ipfs_add_reply_lost_after_the_pin(world) -> None:
    """The daemon pins the ciphertext, then its reply is lost (a proxy drops the connection): the upload
    fails naming IPFS, and unpins the ciphertext at once, since its CID was noted before the pin."""
    from fogfed.storage.errors import StorageUnavailable

    root, relay, ipfs, tas, address = world
    src, before = source(world, "reply-lost.bin"), registrations(tas, address)
    pinned = pins(ipfs)
    with ReplyDroppingProxy(ipfs.api_url) as proxy:
        held: list[bool] = []
        proxy.on_dropped = lambda: held.append(proxy.added[-1] in pins(ipfs))
        with FogNode.open(root / "node", connect(relay.url), IpfsStore(proxy.url), PASSPHRASE) as node:
            with pytest.raises(StorageUnavailable, match=f"IPFS node at {proxy.url} is unreachable while adding"):
                node.upload(src)
    assert held == [True]  # the daemon had pinned what the upload never heard back about
    assert pins(ipfs) == pinned and leftover_records(root) == [] and registrations(tas, address) == before


KILLED_IN_ADD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from fogfed.chain import connect
    from fogfed.node import FogNode
    from fogfed.storage import IpfsStore
    root, rpc, ipfs, src, passphrase = sys.argv[1:6]
    with FogNode.open(Path(root) / "node", connect(rpc), IpfsStore(ipfs), passphrase) as node:
        node.upload(Path(src))
""")


def test_killed_while_the_ipfs_add_reply_is_on_its_way(world, upload) -> None:
    """The daemon pinned the ciphertext; the uploader is killed (SIGKILL) before it read the reply. The
    next upload, of another file, unpins it."""
    root, relay, ipfs, tas, address = world
    src, before = source(world, "killed-in-add.bin"), registrations(tas, address)
    pinned = pins(ipfs)
    with ReplyDroppingProxy(ipfs.api_url) as proxy:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOGFED_")}
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        proc = subprocess.Popen([sys.executable, "-c", KILLED_IN_ADD, str(root), relay.url, proxy.url, str(src),
                                 PASSPHRASE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proxy.on_dropped = lambda: os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    [ct] = proxy.added
    assert pins(ipfs) == pinned | {ct} and _record(root) == ([ct], [])  # pinned, and noted before the pin
    code, out, err = upload(source(world, "after-killed-in-add.bin"))
    assert code == 0, err
    assert pins(ipfs) == pinned | set(_uploaded(world, out)) and leftover_records(root) == []
    assert registrations(tas, address) == before + [json.loads(out)["file_id"]]
