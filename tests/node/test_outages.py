"""The chain or the IPFS daemon goes away in the middle of `fogfed node upload` (SPEC section 6).

`node upload` runs in-process (fogfed.cli.main) against Anvil behind a relay that is taken down at a
named step (fogfed._faults, the FOGFED_KILL_AT names) or right after registerFile reached Anvil, and
against a real js-ipfs daemon that is stopped (SIGTERM) at a step or in the middle of the transfer.
While a service is down the command fails with one line naming it; once it is back the same command
finishes the upload: one FileRegistered per file, the node's list equal to the chain, the registered
ciphertext readable from IPFS, and no transaction sent when IPFS was down before anything was stored.
The daemon's pins afterwards are those of the registered files and nothing else: what an interrupted
attempt pinned (its ciphertext, its wrapped key) is unpinned by the attempt or by the retry
(fogfed.node.leftovers.UploadLeftovers).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

from fogfed._faults import at_step
from fogfed.chain import connect
from fogfed.node import FogNode
from fogfed.protocol.files import cid_of_file_id
from fogfed.storage import IpfsStore
from fogfed.storage.cids import parse_cid
from fogfed.storage.jsipfs import JsIpfsNode
from fogfed.tas import TrustedAuthority
from tests.cli.helpers import PASSPHRASE, run_inproc
from tests.fixtures.outage import RpcRelay
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
