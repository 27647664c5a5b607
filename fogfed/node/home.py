"""A node's home directory: its file names, the validated config.json, and the state every part of FogNode shares.

NodeHome declares the attributes FogNode sets up (fogfed.node.client) so that
the parts written as mixins (membership, sharing, upload, serving, fetch) can
name them; it holds no behaviour beyond the identity shortcuts and saving the config.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from fogfed import abe
from fogfed.chain import FogFed
from fogfed.chain.types import DecodedEvent
from fogfed.errors import InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.keys.keystore import KdfParams, write_private_file
from fogfed.node.cache import BlobCache
from fogfed.node.errors import NodeError
from fogfed.node.keyring import Keyring
from fogfed.node.peer import PeerClient, PeerServer
from fogfed.node.records import Uploads
from fogfed.node.treelog import TreeEventCache
from fogfed.protocol.keydelivery import check_address
from fogfed.protocol.membertree import MemberTree
from fogfed.storage import ContentStore

Progress = Callable[[int], object]
IDENTITY, KEYS, CONFIG, FILES, CACHE, TMP = "identity.json", "keys.json", "config.json", "files.json", "cache", "tmp"


class NodeHome:
    """The state of one node: home directory, contract, identity, keys, store, config, cache, peers."""

    home: Path
    fed: FogFed
    identity: NodeIdentity
    keyring: Keyring
    store: ContentStore
    config: dict[str, Any]
    cache: BlobCache
    peer_client: PeerClient
    uploads: Uploads
    _server: PeerServer | None
    _pk: abe.PublicKey | None
    _trees: dict[int, MemberTree]
    _tree_log: list[DecodedEvent]
    _tree_log_block: int
    _tree_cache: TreeEventCache
    _tree_cached_block: int

    @property
    def address(self) -> str:
        """This node's Ethereum account."""
        return self.identity.address

    @property
    def account(self) -> LocalAccount:
        """The account that signs this node's transactions."""
        return self.identity.account

    @property
    def chain_id(self) -> int:
        """The chain the contract lives on."""
        return self.fed.chain.chain_id

    def _save_config(self) -> None:
        write_json(self.home / CONFIG, self.config)


_CONFIG_FIELDS: dict[str, Any] = {
    "format": str, "version": int, "address": str, "contract": str, "deploy_block": (int, type(None)),
    "chain_id": int, "cache_bytes": int, "key_block": int, "kdf": (list, type(None)),
    "public_key": str, "federations": dict, "federations_block": int,
}
_CONFIG_REQUIRED = ("format", "version", "address", "contract", "chain_id", "cache_bytes")


def check_config(path: Path, config: Any) -> dict[str, Any]:
    """``config.json`` checked field by field: a damaged one is an error naming the file and field."""
    def damaged(why: str) -> NodeError:
        return NodeError(f"node config {path} is damaged: {why}",
                         "restore it from a backup (it holds the contract address, chain id and cache size)")
    if not isinstance(config, dict) or config.get("format") != "fogfed-node":
        raise NodeError(f"{path} is not a fogfed node config", "restore it from a backup")
    for name in _CONFIG_REQUIRED:
        if name not in config:
            raise damaged(f"{name!r} is missing")
    for name, types in _CONFIG_FIELDS.items():
        if name in config and (not isinstance(config[name], types) or isinstance(config[name], bool)):
            raise damaged(f"{name!r} is a {type(config[name]).__name__}")
    try:
        check_address(config["contract"], "contract address")
        check_address(config["address"], "node address")
        if config.get("kdf") is not None:
            KdfParams(*config["kdf"])
        if config.get("public_key") is not None:
            bytes.fromhex(config["public_key"])
    except (InputError, TypeError, ValueError) as exc:
        raise damaged(str(getattr(exc, "message", exc))) from None
    if config["cache_bytes"] <= 0:
        raise damaged("'cache_bytes' is not positive")
    return config


def write_json(path: Path, doc: Any) -> None:
    write_private_file(path, json.dumps(doc, indent=1, sort_keys=True).encode())


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise NodeError(f"{what} {path} is missing or not JSON", "restore it from a backup") from None

