"""A deployed fogfed system shared by the tests of one module: TAS, two federations, five nodes.

Federation A (riyadh/health): n0, n1, n2. Federation B (jeddah/health): n3.
n4 is initialised but never enrolled (the outsider). Keystores use the
lightest Argon2 parameters the keystore accepts, to keep the suite quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fogfed.chain import ContractRevert, connect
from fogfed.keys import KdfParams
from fogfed.node import FogNode
from fogfed.storage import ContentStore, EmbeddedStore, IpfsStore
from fogfed.tas import TrustedAuthority

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
PASS = "correct horse battery"


@dataclass
class System:
    chain: object
    store: ContentStore
    tas: TrustedAuthority
    nodes: list[FogNode]
    root: Path
    accounts: list = field(default_factory=list)
    named: dict[str, FogNode] = field(default_factory=dict)

    def new_node(self, name: str, account=None, cache_bytes: int = 64 << 20) -> FogNode:
        """A node initialised in ``root/name`` (not enrolled), kept in ``nodes`` and ``named``."""
        node = FogNode.init(self.root / name, self.chain, self.tas.contract_address, self.store, PASS,
                            account=account, kdf=LIGHT, cache_bytes=cache_bytes)
        self.nodes.append(node)
        self.named[name] = node
        return node

    def close(self) -> None:
        for n in self.nodes:
            n.close()


def build_system(chain, store: ContentStore, root: Path, *, layout=("A", "A", "A", "B", None)) -> System:
    accounts = chain.dev_accounts()
    tas = TrustedAuthority.init(root / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
    tas.use_store(store)
    system = System(chain, store, tas, [], root, accounts)
    feds = {"A": ("riyadh", "health"), "B": ("jeddah", "health")}
    for i, fed in enumerate(layout):
        node = system.new_node(f"n{i}", accounts[i + 1])
        if fed is not None:
            tas.enroll(node.enrollment_request(*feds[fed]), approve=True)
            assert node.refresh_keys() == 1
    return system


def assert_cannot_write(node: FogNode, file_id: bytes) -> None:
    """The contract itself refuses a non-member's cache announcement and file registration."""
    with pytest.raises(ContractRevert, match="NotActiveMember"):
        node.fed.announce_cache(node.account, file_id, 2**40)
    with pytest.raises(ContractRevert, match="NotActiveMember"):
        node.fed.register_file(node.account, 1, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, "ff:1", 0)


@pytest.fixture(scope="module")
def anvil_system(anvil_url, ipfs_api, tmp_path_factory):
    """The system on Anvil with the real IPFS node (fresh contract per module)."""
    root = tmp_path_factory.mktemp("fogfed-e2e")
    system = build_system(connect(anvil_url), IpfsStore(ipfs_api), root)
    yield system
    system.close()


@pytest.fixture(scope="module")
def embedded_system(tmp_path_factory):
    """The same system on the in-process chain with the embedded store."""
    root = tmp_path_factory.mktemp("fogfed-embedded")
    system = build_system(connect(None), EmbeddedStore(root / "store"), root)
    yield system
    system.close()


@pytest.fixture
def plain(tmp_path) -> Path:
    """A 600 KiB file (three IPFS chunks, so the DAG has several blocks)."""
    path = tmp_path / "plain.bin"
    path.write_bytes(bytes(range(256)) * 2400)
    return path
