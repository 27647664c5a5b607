"""Nothing is lost (SPEC section 6): storage stopping mid-upload, the chain unreachable."""

from __future__ import annotations

import hashlib

import pytest

from fogfed.chain import ChainUnreachable, connect
from fogfed.chain.devnet import start_anvil
from fogfed.errors import FogfedError
from fogfed.node import FogNode
from fogfed.storage import IpfsStore, StorageError
from fogfed.storage.jsipfs import JsIpfsNode
from fogfed.tas import TrustedAuthority
from tests.e2e.conftest import LIGHT, PASS


def digest(path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def test_ipfs_stopped_mid_upload_registers_nothing_and_retry_succeeds(anvil_url, tmp_path):
    chain = connect(anvil_url)
    accounts = chain.dev_accounts()
    ipfs = JsIpfsNode(tmp_path / "ipfs")
    try:
        ipfs.start()
        store = IpfsStore(ipfs.api_url)
        tas = TrustedAuthority.init(tmp_path / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
        node = FogNode.init(tmp_path / "n", chain, tas.contract_address, store, PASS, account=accounts[5], kdf=LIGHT)
        tas.enroll(node.enrollment_request("mecca", "video"), approve=True)
        big = tmp_path / "big.bin"
        big.write_bytes(bytes(range(256)) * 16 * 1024)  # 4 MiB: many chunks, time to pull the plug
        before = digest(big)

        def pull_plug(done: int) -> None:
            if done >= 1 << 20 and ipfs.pid is not None:
                ipfs.kill()
        with pytest.raises(StorageError) as failure:
            node.upload(big, progress=pull_plug)
        assert "IPFS" in str(failure.value) or "unreachable" in str(failure.value).lower()
        assert digest(big) == before  # the local file is untouched
        assert tas.fed.events(names=["FileRegistered"]) == []  # nothing registered
        assert node.files() == [] and node.cache_entries() == []
        ipfs.start()  # same repo, new port
        node.store = IpfsStore(ipfs.api_url)
        up = node.upload(big)
        assert len(tas.fed.events(names=["FileRegistered"])) == 1
        assert node.fetch(up.file_id, tmp_path / "back.bin").plaintext_hash == before
        node.close()
    finally:
        ipfs.cleanup()


def test_chain_unreachable_gives_a_clear_error_and_leaves_the_file(ipfs_api, tmp_path):
    with start_anvil(log=tmp_path / "anvil.log") as anvil:
        chain = connect(anvil.url)
        accounts = chain.dev_accounts()
        tas = TrustedAuthority.init(tmp_path / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
        node = FogNode.init(tmp_path / "n", chain, tas.contract_address, IpfsStore(ipfs_api), PASS,
                            account=accounts[6], kdf=LIGHT)
        tas.enroll(node.enrollment_request("taif", "iot"), approve=True)
        node.refresh_keys()
    # Anvil is gone now.
    src = tmp_path / "f.bin"
    src.write_bytes(b"keep me" * 1000)
    before = digest(src)
    with pytest.raises(ChainUnreachable, match="cannot reach the Ethereum node") as failure:
        node.upload(src)
    assert isinstance(failure.value, FogfedError) and failure.value.hint
    with pytest.raises(ChainUnreachable):
        node.fetch(b"\x01" * 32, tmp_path / "out.bin")
    assert digest(src) == before and not (tmp_path / "out.bin").exists()
    node.close()
