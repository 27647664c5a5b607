"""The fog node as a Python API: identity, keys, upload, fetch, cache, peer serving.

Paper Algorithms 4 (encrypt), 8 (add file) and 9 (retrieval) on the node side.
Upload order (nothing lost): encrypt + store the ciphertext (the store
confirms) -> store the encrypted file key -> register on chain -> cache and
announce. Fetch order: free hasAccess view (refused locally, so an honest
node never spends gas on a strike) -> recorded access -> file record, its
registration's content digest and the encrypted key -> file key -> for each
source (own cache, fresh peer caches with damage-reported holders last, storage): verify
against the CID, decrypt to a temp file, check the plaintext hash, rename;
on a mismatch report damage on chain and try the next source.
See docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fogfed import abe
from fogfed.chain import Chain, ChainError, ContractRevert, FogFed, public_key_commitment
from fogfed.errors import FogfedError, InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.keys.keystore import KdfParams, write_private_file
from fogfed.node.cache import BlobCache, CacheEntry, CacheError, check_file_id
from fogfed._faults import step
from fogfed.node.datapath import (
    PlaintextMismatch, UploadLeftovers, clean_temp, decrypt_checked, encrypt_and_store, matches_cid, phase, read_blob,
    reclaim_leftovers, store_blob,
    temp_file, write_pieces,
)
from fogfed.node.keyring import Keyring
from fogfed.node.records import Uploads, source_key
from fogfed.node.peer import PeerClient, PeerError, PeerServer
from fogfed.protocol.attributes import check_user_policy, federation_attribute, policy_descriptor, scoped_policy
from fogfed.protocol.membertree import MemberTree
from fogfed.protocol.refresh import Bundle
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.files import cid_of_file_id, encsk_aad, file_id_for, file_id_of_cid
from fogfed.protocol.keydelivery import (
    MAX_SEALED_BYTES, KeyDeliveryError, check_address, open_node_key, referenced_digest,
)
from fogfed.storage import ContentStore
from fogfed.storage.errors import StorageError

Progress = Callable[[int], object]
IDENTITY, KEYS, CONFIG, FILES, CACHE, TMP = "identity.json", "keys.json", "config.json", "files.json", "cache", "tmp"
HASH_MISMATCH, FAILED_AUTHENTICATION = "hash-mismatch", "ciphertext-invalid"  # FogFed.reportDamage reasons
ACCESS_DENIED_REASONS = {1: "the file is not registered", 2: "this node is not a member",
                         3: "this node was removed", 4: "the file belongs to another federation"}
PEER_MISBEHAVED = {"too_large": FAILED_AUTHENTICATION, "too_slow": "unavailable"}
MAX_PEERS = 8
HOLDERS_CONSIDERED = 4 * MAX_PEERS  # fresh holders read from the chain, of which the MAX_PEERS least reported are tried
ZERO_HOLDER = "0x" + "00" * 20  # reportDamage's holder for the stored copy
ANNOUNCE_MARGIN = 60  # announce for a little less than the maximum, so clocks may differ
ANNOUNCE_CHECK_MAX = 300.0  # seconds between announcement renewals of a serving node, at most


class NodeError(FogfedError):
    """A node operation could not be done."""


class NotMember(NodeError):
    """This node is not an active member of any federation."""


class AccessDenied(NodeError):
    """The contract refused this node access to the file."""


class FetchFailed(NodeError):
    """No source gave an intact copy; nothing was written at the destination."""


@dataclass(frozen=True)
class UploadResult:
    """A file uploaded and registered (paper Algorithms 4 and 8)."""

    file_id: bytes
    cid: str
    plaintext_sha256: bytes
    size: int
    federation_id: int
    epoch: int
    policy: str
    shared_with: tuple[int, ...] = ()
    announced: bool = False
    gas: dict[str, int] = field(default_factory=dict)
    descriptor: str = ""  # the compact text registered on chain (policy with covers named, not listed)
    resumed: bool = False  # an earlier, interrupted upload of the same source was found on chain and finished

    @property
    def file_id_hex(self) -> str:
        """``0x`` + 64 hex digits, as the CLI prints and accepts it."""
        return "0x" + self.file_id.hex()


@dataclass(frozen=True)
class FetchResult:
    """A file retrieved (paper Algorithm 9): ``source`` is "cache", "peer:<address>" or "storage"."""

    file_id: bytes
    dest: Path
    source: str
    size: int
    plaintext_sha256: bytes
    damage_reports: tuple[str, ...] = ()
    gas: dict[str, int] = field(default_factory=dict)


def parse_file_id(value: bytes | str) -> bytes:
    """A file id from 32 bytes or ``0x`` + 64 hex digits (a CID is not an id: ids name the uploader too)."""
    if isinstance(value, (bytes, bytearray)):
        return check_file_id(value)
    if not isinstance(value, str):
        raise InputError(f"file id must be bytes or text, got {type(value).__name__}")
    text = value.strip()
    if text.startswith("0x") and len(text) == 66:
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            pass
    elif text.startswith("Qm"):
        raise InputError(f"{text:.80} is a CID, not a file id",
                         "a file id is keccak256(uploader, CID digest): give the 0x id upload printed")
    raise InputError(f"malformed file id {value!r:.80}", "give 0x and 64 hex digits, as upload printed it")


class FogNode:
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
        _write_json(home / CONFIG, config)
        return cls(home, fed, identity, keyring, store, config)

    @classmethod
    def open(cls, home: Path, chain: Chain, store: ContentStore, passphrase: str) -> "FogNode":
        """Open an existing node home; WrongPassphrase for a wrong passphrase."""
        home = Path(home)
        if not (home / IDENTITY).exists():
            raise NodeError(f"no node in {home}", "run `fogfed node init` first")
        config = _check_config(home / CONFIG, _read_json(home / CONFIG, "node config"))
        kdf = KdfParams(*config["kdf"]) if config.get("kdf") else None
        identity = NodeIdentity.load(home / IDENTITY, passphrase)
        keyring = Keyring.load(home / KEYS, passphrase, kdf)
        if chain.chain_id != config["chain_id"]:
            raise NodeError(f"this node belongs to chain {config['chain_id']}, the RPC is chain {chain.chain_id}",
                            "connect to the chain the node was created on")
        fed = FogFed.at(chain, config["contract"], deploy_block=config.get("deploy_block"))
        return cls(home, fed, identity, keyring, store, config)

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

    def _save_config(self) -> None:
        _write_json(self.home / CONFIG, self.config)

    # -- membership and keys ----------------------------------------------------------------

    def enrollment_request(self, location: str, service: str) -> EnrollmentRequest:
        """A signed request for the TAS operator (paper Algorithm 2, the node's side)."""
        return EnrollmentRequest.create(self.identity, location, service, chain_id=self.chain_id,
                                        contract=self.fed.address)

    def membership(self) -> tuple[int, bool]:
        """(federation id, active) as the contract records them."""
        member = self.fed.member(self.address)
        return member.federation_id, member.active

    def _require_member(self, what: str) -> int:
        fid, active = self.membership()
        if not active:
            raise NotMember(f"{self.address} is not an active member of any federation, so it cannot {what}",
                            "enroll with the TAS first (fogfed node request, then tas enroll)" if fid == 0 else
                            "this node was removed by the TAS or for false claims")
        return fid

    def refresh_keys(self) -> int:
        """Pull keys the TAS delivered on chain; returns how many new ones were stored.

        One view call tells the block of the latest delivery; only that block
        is searched unless an epoch was skipped, then the blocks since the last look.
        """
        latest = self.fed.peer_blocks(self.address)[0]
        seen = self.config.get("key_block", 0)
        if latest == 0 or latest <= seen:
            return 0
        deliveries = self._deliveries(latest, latest)
        if any(self._missing_before(d) for d in deliveries):
            deliveries = self._deliveries(seen + 1, latest)
        added = 0
        for d in deliveries:
            fid, epoch = d["federationId"], d["epoch"]
            if self.keyring.get(fid, epoch) is not None:
                continue
            sealed = d["sealedKey"]
            digest = referenced_digest(sealed)
            if digest is not None:  # the box itself is in the content store (verified against its CID)
                sealed = read_blob(self.store, cid_of_file_id(digest), MAX_SEALED_BYTES)
            sk = open_node_key(self.identity, sealed, self.public_key(fid), chain_id=self.chain_id,
                               contract=self.fed.address, federation_id=fid, epoch=epoch,
                               is_operator=self.fed.is_operator)
            added += self.keyring.add(fid, epoch, sk)
        self.config["key_block"] = latest
        self._save_config()
        return added

    def _deliveries(self, first: int, last: int) -> list[dict]:
        """Arguments of this node's KeyDelivered events in blocks ``first``..``last``."""
        return [e.args for e in self.fed.events(first, last, ["KeyDelivered"], where={"node": self.address})]

    def _missing_before(self, delivery: dict) -> bool:
        held = self.keyring.latest_epoch(delivery["federationId"])
        return held is not None and held < delivery["epoch"] - 1

    def public_key(self, federation_id: int | None = None) -> abe.PublicKey:
        """The system public key, read from a FederationCreated event and checked against the commitment."""
        fid = federation_id or self.membership()[0]
        if fid == 0:
            raise NotMember(f"{self.address} has no federation yet, so no public key to read")
        commitment = self.fed.federation(fid).public_key_commitment
        if self._pk is not None and public_key_commitment(self._pk.to_bytes()) == commitment:
            return self._pk
        cached = self.config.get("public_key")
        raw = bytes.fromhex(cached) if cached else None
        if raw is None or public_key_commitment(raw) != commitment:
            raw = self.fed.federation_public_key(fid)
            self.config["public_key"] = raw.hex()
            self._save_config()
        self._pk = abe.PublicKey.from_bytes(raw)
        return self._pk

    def _ensure_key(self, fid: int) -> None:
        # One key per membership and tree generation (no re-keying on removals): look only when missing.
        if self.keyring.latest_epoch(fid) is None:
            self.refresh_keys()
        self.pull_refreshes(fid)

    def pull_refreshes(self, federation_id: int) -> int:
        """Take this node's keys from the bundles of tree refreshes it has none for; returns how many.

        The bundle is read from the content store by the digest the chain
        holds (TreeRefreshed), so it is the one the TAS committed to; the
        entry is opened like a delivered key (sender a TAS operator, bound to
        this chain, contract, node, federation and the refresh's epoch).
        """
        tree = self.member_tree(federation_id)
        held = {a.split(":")[2] for sk in self.keyring.candidates() for a in sk.attributes
                if a.startswith(f"ct:{federation_id}:")}
        added = 0
        for gen, state in sorted({**tree.past, tree.generation: tree}.items()):
            if state.bundle is None or str(gen) in held or self.address not in state.leaves:
                continue
            limit = 48 + (state.assigned + 1) * (22 + MAX_SEALED_BYTES)
            bundle = Bundle.from_bytes(read_blob(self.store, cid_of_file_id(state.bundle), limit))
            if (bundle.chain_id, bundle.contract, bundle.federation_id, bundle.generation) != (
                    self.chain_id, self.fed.address, federation_id, gen):
                raise KeyDeliveryError(f"the key bundle of generation {gen} is not for this federation",
                                       "tell the TAS operator; the chain's commitment does not match")
            found = bundle.entry(self.address)
            if found is None or found[0] != state.leaves[self.address]:
                continue  # joined while the refresh was being built: `tas sync` delivers its key
            sk = open_node_key(self.identity, found[1], self.public_key(federation_id), chain_id=self.chain_id,
                               contract=self.fed.address, federation_id=federation_id, epoch=bundle.epoch,
                               is_operator=self.fed.is_operator)
            added += self.keyring.add(federation_id, bundle.epoch, sk)
        return added

    def member_tree(self, federation_id: int) -> MemberTree:
        """The federation's member tree replayed from chain events (kept in memory, synced on each call)."""
        tree = self._trees.setdefault(federation_id, MemberTree(federation_id))
        return tree.sync(self.fed)

    # -- federations (for policies that span them) -------------------------------------------

    def _federation_attributes(self) -> dict[int, tuple[str, str]]:
        """(location, service) of every federation, from FederationCreated events, remembered locally."""
        known = {int(k): tuple(v) for k, v in self.config.get("federations", {}).items()}
        if len(known) < self.fed.settings().federation_count:
            start = max(self.config.get("federations_block", 0), self.fed.deploy_block)
            for e in self.fed.events(start, names=["FederationCreated"]):
                known[e.args["federationId"]] = (e.args["location"], e.args["service"])
                self.config["federations_block"] = e.block_number
            self.config["federations"] = {str(k): list(v) for k, v in known.items()}
            self._save_config()
        return known

    def _policy_for(self, policy: str | None, fid: int) -> tuple[str, str, int, dict[int, int]]:
        """(CP-ABE policy, compact descriptor to register, own epoch, other federations to share with).

        The policy is ``(P) and (cover of each federation that satisfies P)``
        (docs/architecture.md, "Revocation inside the policy"); the descriptor
        names each cover by (generation, epoch, assigned leaves) so anyone can
        recompute it, and the contract refuses it once the own epoch is stale.
        """
        parsed = check_user_policy(federation_attribute(fid) if policy is None else policy)
        trees = {fid: self.member_tree(fid)}
        if policy is not None:
            for other, (loc, svc) in self._federation_attributes().items():
                if other != fid and parsed.satisfied_by([f"loc:{loc}", f"svc:{svc}", f"ff:{other}"]):
                    tree = self.member_tree(other)
                    if tree.leaves:  # a federation without members cannot read anything
                        trees[other] = tree
        if not parsed.satisfied_by(self._own_attributes(fid)):
            trees.pop(fid)  # the policy excludes the uploader's own federation (it still registers the file)
            if not trees:
                raise InputError("no federation can satisfy this policy",
                                 "name attributes of a federation that has members")
        clauses = {f: t.clause() for f, t in trees.items()}
        descriptor = policy_descriptor(parsed, {f: t.descriptor() for f, t in trees.items()})
        epoch = self._trees[fid].epoch
        return scoped_policy(parsed, clauses), descriptor, epoch, {f: t.epoch for f, t in trees.items() if f != fid}

    def _own_attributes(self, fid: int) -> list[str]:
        loc, svc = self._federation_attributes().get(fid, ("", ""))
        return [f"loc:{loc}", f"svc:{svc}", f"ff:{fid}"]

    # -- upload -----------------------------------------------------------------------------

    def upload(self, path: Path, *, policy: str | None = None, progress: Progress | None = None) -> UploadResult:
        """Paper Algorithms 4 + 8: encrypt, store, then register on chain; cache and announce.

        Nothing is registered unless storage confirmed the ciphertext and the
        encrypted key; a failure before registration leaves ``path`` untouched
        and the upload can be retried. ``policy`` (over loc:/svc:/ff:
        attributes) shares the file with every federation that satisfies it.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path} is not a readable file")
        fid = self._require_member("upload")
        self._ensure_key(fid)
        policy_text, descriptor, epoch, shares = self._policy_for(policy, fid)
        pk = self.public_key(fid)
        source = source_key(path, policy)
        earlier_id = self.uploads.pending(source)
        # an upload of this very file was interrupted: registered, or not at all?
        earlier = self.uploads.registration(earlier_id) if earlier_id is not None else None
        given_up = {earlier_id} if earlier_id is not None and earlier is None else set()
        reclaim_leftovers(self.home / TMP, self.store, self._registered_key, given_up)  # what failed uploads stored
        if earlier is not None:  # registered, its answer lost (a kill, the chain away): finish that one
            return self._finish_earlier(earlier, source, path, shares)
        if earlier_id is not None:
            self.uploads.finish(source)
        file_key = os.urandom(32)
        with temp_file(self.home / TMP) as (ct_path, ct_copy), UploadLeftovers(self.home / TMP, self.store) as left:
            # a local store's copy is the cache's: the ciphertext is written once (datapath.py)
            cid, info, ct_sha = encrypt_and_store(self.store, path, file_key,
                                                  None if getattr(self.store, "local", False) else ct_copy, progress)
            digest = file_id_of_cid(cid)
            file_id = file_id_for(self.address, digest)
            left.stored(cid, "0x" + file_id.hex())
            self.uploads.begin(source, "0x" + file_id.hex())
            step("upload:stored")
            gas: dict[str, int] = {}
            for attempt in range(3):  # a removal between reading the epoch and registering makes it stale
                encsk = abe.encrypt(pk, policy_text, file_key, aad=encsk_aad(self.chain_id, self.fed.address,
                                                                            file_id))
                encsk_ref = file_id_of_cid(store_blob(self.store, encsk, left))
                left.sending("0x" + file_id.hex())
                try:
                    tx = self.fed.register_file(self.account, fid, digest, info.plaintext_sha256, encsk_ref,
                                                descriptor, epoch)
                    break
                except ContractRevert as exc:
                    if exc.error_name != "StaleEpoch" or attempt == 2:
                        raise
                    policy_text, descriptor, epoch, shares = self._policy_for(policy, fid)
            gas["registerFile"] = tx.gas_used
            step("upload:registered")
            for other in sorted(shares):
                gas[f"shareFile:{other}"] = self.fed.share_file(self.account, file_id, other).gas_used
            announced = self._cache_and_announce(file_id, ct_path, ct_sha, gas, cid=cid)
            left.finish({cid, cid_of_file_id(encsk_ref)})  # unpins the keys of attempts that went stale
        self._record_upload(file_id, cid, path, info.plaintext_size, fid, epoch, descriptor)
        self.uploads.finish(source)
        return UploadResult(file_id, cid, info.plaintext_sha256, info.plaintext_size, fid, epoch, policy_text,
                            tuple(sorted(shares)), announced, gas, descriptor)

    def _registered_key(self, file_id_hex: str) -> str | None:
        """The encrypted key's CID if this node registered ``file_id_hex``; None if not (or unknown now)."""
        try:
            record = self.fed.file(bytes.fromhex(file_id_hex[2:]))
        except (ChainError, ValueError):
            return None
        return cid_of_file_id(record.enc_sk_ref) if record.uploader.lower() == self.address.lower() else None

    def _finish_earlier(self, earlier: dict, source: str, path: Path, shares: dict[int, int]) -> UploadResult:
        """The steps an interrupted upload of the same source left undone: its shares, its record."""
        file_id = bytes.fromhex(earlier["file_id"][2:])
        size = path.stat().st_size
        gas: dict[str, int] = {}
        done = {e.args["federationId"] for e in self.fed.events(names=["FileShared"], where={"fileId": file_id})}
        for other in sorted(set(shares) - done):
            gas[f"shareFile:{other}"] = self.fed.share_file(self.account, file_id, other).gas_used
        self._record_upload(file_id, earlier["cid"], path, size, earlier["federation_id"], earlier["epoch"],
                            earlier["policy"])
        self.uploads.finish(source)
        announced = bool(self.fed.cache_expiry(file_id, self.address))
        return UploadResult(file_id, earlier["cid"], bytes.fromhex(earlier["plaintext_sha256"][2:]), size,
                            earlier["federation_id"], earlier["epoch"], earlier["policy"], tuple(sorted(shares)),
                            announced, gas, earlier["policy"], resumed=True)

    def _record_upload(self, file_id: bytes, cid: str, path: Path, size: int, fid: int, epoch: int,
                       policy: str) -> None:
        self.uploads.add({"file_id": "0x" + file_id.hex(), "cid": cid, "name": path.name, "size": size,
                          "federation_id": fid, "epoch": epoch, "policy": policy, "uploaded_at": int(time.time())})

    def files(self) -> list[dict]:
        """Files this node uploaded: every registration the chain shows, oldest first, with the
        local name and time where this node recorded them (fogfed.node.records)."""
        return self.uploads.list()

    # -- cache and announcements ------------------------------------------------------------

    def _expiry(self) -> int:
        # A little short of the maximum, so that clocks may differ; a third short for tiny lifetimes.
        lifetime = self.max_cache_lifetime()
        return self.fed.chain.now() + lifetime - min(ANNOUNCE_MARGIN, lifetime // 3)

    def max_cache_lifetime(self) -> int:
        """The longest cache announcement the contract accepts, in seconds."""
        return self.fed.settings().max_cache_lifetime

    def announce_interval(self) -> float:
        """How often a serving node should renew its announcements: a third of the maximum cache
        lifetime (so a renewal is never late by a whole lifetime), at most 5 minutes, at least 1 s."""
        return max(1.0, min(self.max_cache_lifetime() / 3, ANNOUNCE_CHECK_MAX))

    def _cache_and_announce(self, file_id: bytes, path: Path, sha256: bytes | None, gas: dict[str, int], *,
                            cid: str | None = None) -> bool:
        """Cache the verified ciphertext and announce it on chain.

        ``sha256`` None: the bytes are the local store's file ``cid`` and the
        cache refers to them (``put_ref``). Otherwise the file at ``path`` is
        moved in with ``sha256``, the digest taken while it was written, so the
        cache neither reads nor hashes it again (its every open re-checks it).
        """
        try:
            if sha256 is None:
                self.cache.put_ref(file_id, cid)  # type: ignore[arg-type]
            else:
                self.cache.put_file(file_id, path, sha256)
        except (CacheError, InputError):
            return False  # a copy too large for the cache is simply not cached
        if not self._may_announce(file_id):
            return False  # shared-federation readers keep a private copy but cannot announce it
        expires = self._expiry()
        try:
            gas["announceCache"] = self.fed.announce_cache(self.account, file_id, expires).gas_used
        except ChainError:
            return False
        self.cache.set_expiry(file_id, expires)
        return True

    def _withdraw(self, file_id: bytes) -> None:
        # on_evict: a copy left the cache, so its announcement must go too
        if self.fed.cache_expiry(file_id, self.address):
            self.fed.withdraw_cache(self.account, file_id)

    def cache_entries(self) -> list[CacheEntry]:
        """The local cache's entries, least recently used first."""
        return self.cache.entries()

    def evict(self, file_id: bytes | str) -> bool:
        """Drop a cached copy (its announcement is withdrawn); False if it was not cached."""
        return self.cache.remove(parse_file_id(file_id))

    def refresh_announcements(self, *, margin: int = 300) -> int:
        """Re-announce held copies whose announcement expires within ``margin`` seconds; returns how many.

        The expiry is read from the chain (the source of truth), not the local index, so an
        announcement ended by anyone else is renewed at the next turn."""
        now = self.fed.chain.now()
        fid, active = self.membership()
        if not active:
            return 0
        done = 0
        for entry in self.cache.entries():
            if self.fed.cache_expiry(entry.file_id, self.address) - now > margin:
                continue
            if not self._may_announce(entry.file_id):
                continue
            expires = self._expiry()
            self.fed.announce_cache(self.account, entry.file_id, expires)
            self.cache.set_expiry(entry.file_id, expires)
            done += 1
        return done

    def _may_announce(self, file_id: bytes) -> bool:
        """Only members of a file's own federation may announce a copy (shared readers may not)."""
        return self.fed.is_active_member(self.address, self.fed.file(file_id).federation_id)

    # -- fetch ------------------------------------------------------------------------------

    def fetch(self, file_id: bytes | str, dest: Path, *, progress: Progress | None = None) -> FetchResult:
        """Paper Algorithm 9: from the own cache, a fresh peer cache or storage; verified; damage reported.

        A copy that fails any check is reported on chain, discarded, and the
        next source is tried; if none works FetchFailed is raised and nothing
        is written at ``dest``.
        """
        file_id = parse_file_id(file_id)
        dest = Path(dest)
        if dest.is_dir():
            raise InputError(f"{dest} is a directory", "give a file path to write the plaintext to")
        if not dest.parent.is_dir():
            raise InputError(f"folder {dest.parent} does not exist")
        fid = self._require_member("fetch files")
        self._check_access(file_id)
        self._ensure_key(fid)
        gas: dict[str, int] = {}
        tx = self.fed.record_access(self.account, file_id)
        gas["recordAccess"] = tx.gas_used
        if not tx.value:
            reason = next((e.args["reason"] for e in tx.events if e.name == "AccessDenied"), None)
            raise AccessDenied(f"access to file 0x{file_id.hex()} denied by the contract: "
                               f"{ACCESS_DENIED_REASONS.get(reason, 'refused')}",
                               "only active members of the file's federation (or one it is shared with) may fetch")
        record = self.fed.file(file_id)
        plain_sha = record.plaintext_hash
        digest = bytes(self.fed.file_registration(file_id)["contentDigest"])
        if file_id_for(record.uploader, digest) != file_id:
            raise FetchFailed(f"the chain's registration of file 0x{file_id.hex()} does not name it",
                              "the RPC endpoint is not trustworthy; use another")
        reports: list[str] = []
        unavailable: list[str] = []  # why a source gave nothing (IPFS down, peer gone): kept for the error
        try:
            file_key = self._file_key(file_id, record.enc_sk_ref, record.federation_id)
        except StorageError as exc:
            if not _is_damage(exc):
                raise
            reports.append(self._report(file_id, ZERO_HOLDER, FAILED_AUTHENTICATION, "encrypted key", exc, gas))
            raise FetchFailed(f"the encrypted key of file 0x{file_id.hex()} is damaged in storage ({reports[0]})",
                              "nothing was written; the damage was reported on chain") from None
        cid = cid_of_file_id(digest)
        total = self._file_size(cid)  # ciphertext bytes, as the file's DAG declares them
        for source, holder, fill in self._sources(file_id, cid):
            with temp_file(self.home / TMP) as (ct_path, ct):
                phase(progress, f"fetching from {source.split(':')[0]}", total)
                try:
                    ct_sha = fill(ct, progress)
                except (PeerError, StorageError, CacheError, InputError) as exc:
                    code = getattr(exc, "code", "")
                    if code in PEER_MISBEHAVED:  # flooded past the declared size, or trickled past the deadline
                        reports.append(self._report(file_id, holder, PEER_MISBEHAVED[code], source, exc, gas))
                        continue
                    if code in ("not_cached",) or not _is_damage(exc):
                        unavailable.append(f"{source}: {getattr(exc, 'message', exc)}")
                        continue
                    reports.append(self._report(file_id, holder, FAILED_AUTHENTICATION, source, exc, gas))
                    continue
                # only a peer's bytes need their CID computed: the cache checks its own, and the
                # store checks every block against its CID as it gives it out
                from_peer = holder not in (None, ZERO_HOLDER)
                if from_peer:
                    phase(progress, "verifying", total)
                if from_peer and not matches_cid(ct_path, cid, progress):
                    reports.append(self._report(file_id, holder, FAILED_AUTHENTICATION, source,
                                                "bytes do not match the file's CID", gas))
                    continue
                try:
                    phase(progress, "decrypting", total)
                    info = decrypt_checked(file_key, ct_path, dest, plain_sha, progress)
                except PlaintextMismatch as exc:
                    reports.append(self._report(file_id, holder, HASH_MISMATCH, source, exc, gas))
                    continue
                except InputError as exc:  # StreamError: failed authentication
                    reports.append(self._report(file_id, holder, FAILED_AUTHENTICATION, source, exc, gas))
                    continue
                if source == "storage" and getattr(self.store, "local", False):
                    self._cache_and_announce(file_id, ct_path, None, gas, cid=cid)  # the store's copy
                elif source != "cache":
                    self._cache_and_announce(file_id, ct_path, ct_sha, gas)
                if source == "storage" and record.damaged:
                    self._report_intact(file_id, gas)
                return FetchResult(file_id, dest, source, info.plaintext_size, plain_sha, tuple(reports), gas)
        raise FetchFailed(f"no intact copy of file 0x{file_id.hex()} could be retrieved"
                          + (f" ({'; '.join(reports + unavailable)})" if reports or unavailable else ""),
                          "nothing was written; the damage was reported on chain" if reports else
                          "check that the content store is reachable and try again")

    def _file_key(self, file_id: bytes, encsk_ref: bytes, file_fid: int) -> bytes:
        encsk = read_blob(self.store, cid_of_file_id(encsk_ref))
        pk = self.public_key(file_fid) if self.membership()[1] else self.public_key()
        aad = encsk_aad(self.chain_id, self.fed.address, file_id)
        for sk in self.keyring.candidates():
            try:
                return abe.decrypt(pk, sk, encsk, aad=aad)
            except (abe.PolicyNotSatisfied, abe.DecryptionError):
                continue
        raise AccessDenied(f"none of this node's keys can decrypt the key of file 0x{file_id.hex()}",
                           "the file's policy excludes this node, or its key for the file's epoch is missing "
                           "(fogfed node join)")

    def _sources(self, file_id: bytes, cid: str):
        """(name, holder for damage reports, fill function) in the order to try them."""
        if file_id in self.cache:
            def from_cache(out, progress):
                with self.cache.open(file_id) as f:
                    return write_pieces(iter(lambda: f.read(1 << 16), b""), out, progress)
            yield "cache", None, from_cache
        holders = [h.holder for h in self.fed.fresh_cache_holders(file_id, limit=HOLDERS_CONSIDERED)
                   if h.holder != self.address]
        if holders:
            reported = self._damage_reporters(file_id)
            # Holders with damage reports from the most distinct members go last (stable otherwise).
            holders.sort(key=lambda h: len(reported.get(h, ())))
        bound = self._declared_size(cid) if holders else 0
        for holder in holders[:MAX_PEERS]:
            url = self.fed.endpoint(holder)
            if not url:
                continue

            def from_peer(out, progress, holder=holder, url=url):
                result = self.peer_client.fetch(url, holder, file_id, out, progress=progress, max_bytes=bound)
                out.flush()
                return result.sha256
            yield f"peer:{holder}", holder, from_peer

        def from_storage(out, progress):
            # a local store's bytes are cached by reference (no digest); others' copies need one
            return write_pieces(self.store.cat(cid, progress=progress), out,
                                digest=not getattr(self.store, "local", False))
        yield "storage", ZERO_HOLDER, from_storage

    def _file_size(self, cid: str) -> int | None:
        """The ciphertext's size as its DAG declares it, or None when storage cannot tell (for progress)."""
        try:
            return self.store.size(cid)
        except StorageError:
            return None

    def _declared_size(self, cid: str) -> int:
        """The most a peer may send: the size the file's DAG declares (its root block in storage, checked
        against the CID), or this node's cache cap when storage cannot tell."""
        try:
            return self.store.size(cid)
        except StorageError:
            return self.cache.max_bytes

    def _damage_reporters(self, file_id: bytes) -> dict[str, set[str]]:
        """Holder -> distinct members that reported its copy of ``file_id`` damaged (FileDamaged events)."""
        out: dict[str, set[str]] = {}
        for e in self.fed.events(self.fed.deploy_block, names=["FileDamaged"], where={"fileId": file_id}):
            if e.args["holder"] != ZERO_HOLDER:
                out.setdefault(e.args["holder"], set()).add(e.args["reporter"])
        return out

    def _check_access(self, file_id: bytes) -> None:
        """Refuse locally, with no transaction, what recordAccess would refuse (the free hasAccess view).

        A refused recordAccess by a member of another federation counts a false claim against
        this node, and enough of them remove it: an honest node must never send one.
        """
        if self.fed.has_access(self.address, file_id):
            return
        try:
            self.fed.file(file_id)
        except ContractRevert:
            raise AccessDenied(f"there is no file 0x{file_id.hex()} on chain; no transaction was sent",
                               "check the file id (0x and 64 hex digits, as upload printed it)") from None
        member = self.fed.member(self.address)
        threshold = self.fed.settings().false_claim_threshold
        raise AccessDenied(f"file 0x{file_id.hex()} belongs to another federation and is not shared with this "
                           f"node's; no transaction was sent (recording this access would count a false claim: "
                           f"{member.false_claims} of {threshold} counted so far, removal at {threshold})",
                           "ask the uploader to share it, or fetch it from a node of its federation")

    def _report_intact(self, file_id: bytes, gas: dict[str, int]) -> None:
        """The stored copy was marked damaged but decrypted intact here: clear the mark on chain."""
        try:
            gas["reportIntact"] = self.fed.report_intact(self.account, file_id).gas_used
        except ChainError:
            pass  # the mark stays; the next intact fetch clears it

    def _report(self, file_id: bytes, holder: str | None, reason: int, source: str, why: object,
                gas: dict[str, int]) -> str:
        """Report a bad copy on chain (Algorithm 9's damage report); returns a line for the result."""
        text = f"{source}: {getattr(why, 'message', why)}"
        if holder is None:  # own cache: the cache already dropped it; nothing on chain to blame
            return text
        try:
            gas[f"reportDamage:{source}"] = self.fed.report_damage(self.account, file_id, reason, holder).gas_used
            return text + " (reported)"
        except ChainError as exc:
            return text + f" (report failed: {exc.message})"

    # -- peer serving -----------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> PeerServer:
        """Start the peer server and publish its endpoint on chain; returns the running PeerServer."""
        if self._server is not None:
            return self._server
        self._require_member("serve peers")
        server = PeerServer(self.identity, self.cache, self._may_read,
                            chain_id=self.chain_id, contract_address=self.fed.address, host=host,
                            port=port).start()
        try:
            self.fed.set_endpoint(self.account, server.url)
        except FogfedError:
            server.stop()
            raise
        self._server = server
        return server

    def _may_read(self, requester: str, file_id: bytes) -> bool:
        """Whether the contract lets ``requester`` read ``file_id`` (member of its federation or a shared one)."""
        return self.fed.has_access(requester, file_id)


def _is_damage(exc: Exception) -> bool:
    from fogfed.storage.errors import ContentCorrupted
    return isinstance(exc, ContentCorrupted) or getattr(exc, "code", "") == "corrupt"


_CONFIG_FIELDS: dict[str, Any] = {
    "format": str, "version": int, "address": str, "contract": str, "deploy_block": (int, type(None)),
    "chain_id": int, "cache_bytes": int, "key_block": int, "kdf": (list, type(None)),
    "public_key": str, "federations": dict, "federations_block": int,
}
_CONFIG_REQUIRED = ("format", "version", "address", "contract", "chain_id", "cache_bytes")


def _check_config(path: Path, config: Any) -> dict[str, Any]:
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


def _write_json(path: Path, doc: Any) -> None:
    write_private_file(path, json.dumps(doc, indent=1, sort_keys=True).encode())


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise NodeError(f"{what} {path} is missing or not JSON", "restore it from a backup") from None


__all__ = ["AccessDenied", "FetchFailed", "FetchResult", "FogNode", "NodeError", "NotMember", "UploadResult",
           "KeyDeliveryError", "parse_file_id"]
