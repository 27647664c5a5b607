"""The fog node as a Python API: identity, keys, upload, fetch, cache, peer serving.

FogNode is assembled from one part per concern, each a module of its own:
membership and keys (membership.py), policies across federations
(sharing.py), upload (upload.py, paper Algorithms 4 and 8), cache,
announcements and the peer server (serving.py), fetch (fetch.py, paper
Algorithm 9); home.py holds the home directory's layout and config. This
module sets a node up and opens it, and re-exports the API's names.
See docs/architecture.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fogfed import abe
from fogfed.chain import Chain, FogFed
from fogfed.chain.types import DecodedEvent
from fogfed.errors import InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.keys.keystore import KdfParams
from fogfed.node.cache import BlobCache
from fogfed.node.datapath import clean_temp
from fogfed.node.errors import AccessDenied, FetchFailed, NodeError, NoNodeHome, NotMember, UntrustedFile
from fogfed.node.fetch import Fetching
from fogfed.node.home import CACHE, CONFIG, IDENTITY, KEYS, TMP, check_config, read_json, write_json
from fogfed.node.keyring import Keyring
from fogfed.node.peer import PeerClient, PeerServer
from fogfed.node.records import Uploads
from fogfed.node.results import FetchResult, UploadResult, parse_file_id
from fogfed.node.treelog import TREE_LOG, TreeEventCache, cache_key
from fogfed.node.upload import Uploading
from fogfed.protocol.keydelivery import KeyDeliveryError, check_address
from fogfed.protocol.membertree import MemberTree
from fogfed.storage import ContentStore


class FogNode(Uploading, Fetching):
    """One fog node with its home directory (identity.json, keys.json, cache/, config.json, files.json)."""

    def __init__(self, home: Path, fed: FogFed, identity: NodeIdentity, keyring: Keyring,
                 store: ContentStore, config: dict[str, Any]) -> None:
        self.home, self.fed, self.identity, self.keyring, self.store = Path(home), fed, identity, keyring, store
        self.config = config
        self.cache = BlobCache(self.home / CACHE, config["cache_bytes"], on_evict=self._withdraw, store=store)
        self.peer_client = PeerClient(identity, self.chain_id, fed.address)
        self._server: PeerServer | None = None
        self._pk: abe.PublicKey | None = None
        self._trees: dict[int, MemberTree] = {}
        self._tree_log: list[DecodedEvent] = []  # FogFed's tree events up to block _tree_log_block
        self._tree_log_block = -1
        self._tree_cache = TreeEventCache(self.home / TREE_LOG, cache_key(identity.account.key), self.chain_id,
                                          fed.address)
        self._tree_cached_block = -1  # the last block the home's cache holds, as this process knows
        self.uploads = Uploads(self.home, fed, identity.address)
        clean_temp(self.home / TMP)  # what killed runs left (ciphertext copies), never a live process's

    # -- set-up -----------------------------------------------------------------------------

    @classmethod
    def init(cls, home: Path, chain: Chain, fed_address: FogFed | str, store: ContentStore, passphrase: str, *,
             account: LocalAccount | str | None = None, kdf: KdfParams | None = None,
             cache_bytes: int = 1 << 30) -> "FogNode":
        """A new node: generates its identity (or uses ``account``'s Ethereum key) and writes its keystores."""
        home = Path(home)
        if (home / IDENTITY).exists():
            raise NodeError(f"a node already exists in {home}", "open it instead, or use another directory")
        if type(cache_bytes) is not int or cache_bytes <= 0:
            raise InputError(f"cache size must be a positive number of bytes, got {cache_bytes!r}")
        identity = NodeIdentity.generate()
        if account is not None:
            identity = NodeIdentity(account if isinstance(account, LocalAccount) else Account.from_key(account),
                                    identity.enc_private)
        fed = FogFed.at(chain, check_address(getattr(fed_address, "address", fed_address), "contract address"))
        config = {"format": "fogfed-node", "version": 1, "address": identity.address, "contract": fed.address,
                  "deploy_block": fed.deploy_block, "chain_id": chain.chain_id, "cache_bytes": cache_bytes,
                  "key_block": 0,
                  "kdf": None if kdf is None else [kdf.memory_cost, kdf.iterations, kdf.lanes]}
        home.mkdir(parents=True, exist_ok=True)
        identity.save(home / IDENTITY, passphrase, kdf=kdf)
        keyring = Keyring.create(home / KEYS, passphrase, kdf)
        write_json(home / CONFIG, config)
        return cls(home, fed, identity, keyring, store, config)

    @classmethod
    def open(cls, home: Path, chain: Chain, store: ContentStore, passphrase: str) -> "FogNode":
        """Open an existing node home; WrongPassphrase for a wrong passphrase."""
        home = Path(home)
        if not (home / IDENTITY).exists():
            raise NoNodeHome(f"no node in {home}", "run `fogfed node init` first (or pass the right --home)")
        config = check_config(home / CONFIG, read_json(home / CONFIG, "node config"))
        kdf = KdfParams(*config["kdf"]) if config.get("kdf") else None
        identity = NodeIdentity.load(home / IDENTITY, passphrase)
        keyring = Keyring.load(home / KEYS, passphrase, kdf)
        if chain.chain_id != config["chain_id"]:
            raise NodeError(f"this node belongs to chain {config['chain_id']}, the RPC is chain {chain.chain_id}",
                            "connect to the chain the node was created on")
        fed = FogFed.at(chain, config["contract"], deploy_block=config.get("deploy_block"))
        return cls(home, fed, identity, keyring, store, config)

    def close(self) -> None:
        """Stop serving and close the cache."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.cache.close()

    def __enter__(self) -> "FogNode":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AccessDenied", "FetchFailed", "FetchResult", "FogNode", "NodeError", "NotMember", "UntrustedFile",
           "UploadResult", "KeyDeliveryError", "parse_file_id"]
