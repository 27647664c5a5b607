"""A typed wrapper of the deployed FogFed contract.

One snake_case method per contract function. Transactions take the signing
``LocalAccount`` first and return a :class:`TxResult`; views return small
frozen dataclasses. Reverts raise :class:`ContractRevert` with the custom
error's name, arguments and a sentence (most surface at gas estimation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, to_checksum_address


from fogfed.chain import args as a
from fogfed.chain.artifacts import load_artifact
from fogfed.chain.connection import Chain, checksum
from fogfed.chain.errors import ChainError, InvalidArgument, NotFogFedContract
from fogfed.chain.events import decode_log, decode_receipt, topics_for, topics_where
from fogfed.chain.reverts import decode_revert
from fogfed.chain.types import (
    CacheHolder,
    DecodedEvent,
    Federation,
    FileRecord,
    Member,
    Settings,
    TxResult,
)

ZERO_ADDRESS = "0x" + "00" * 20
LOG_BATCH = 2_000  # blocks per eth_getLogs request
DAMAGE_REASONS = {"hash-mismatch": 1, "ciphertext-invalid": 2, "unavailable": 3}
MAX_SEALED_KEY = 8192
MAX_REMOVAL_NOTE = 256  # bytes of UTF-8, Membership.MAX_REMOVAL_NOTE_LENGTH
MAX_PUBLIC_KEY = 8192


def _runtime_code() -> bytes:
    return bytes.fromhex(load_artifact()["deployedBytecode"].removeprefix("0x"))


def deploy(chain: Chain, deployer: LocalAccount) -> "FogFed":
    """Paper Algorithm 5: deploy FogFed from ``deployer`` (it becomes admin and TAS operator)."""
    bytecode = bytes.fromhex(load_artifact()["bytecode"].removeprefix("0x"))
    receipt = chain.send(deployer, to=None, data=bytecode, function="deploy")
    fed = FogFed(chain, receipt["contractAddress"], deploy_block=int(receipt["blockNumber"]))
    fed.deploy_receipt = receipt
    return fed


class FogFed:
    """The FogFed contract at ``address`` on ``chain`` (use :meth:`at` or :func:`deploy`)."""

    def __init__(self, chain: Chain, address: str, *, deploy_block: int = 0) -> None:
        self.chain = chain
        self.address = checksum(address, "contract address")
        self.deploy_block = deploy_block
        self.deploy_receipt: Any = None
        self._contract = chain.w3.eth.contract(address=self.address, abi=load_artifact()["abi"])

    def __repr__(self) -> str:
        return f"FogFed({self.address} on {self.chain.label})"

    @classmethod
    def at(cls, chain: Chain, address: str, *, deploy_block: int | None = None) -> "FogFed":
        """The FogFed at ``address``; NotFogFedContract when it has no code or other code.

        ``deploy_block`` (where :meth:`events` starts) is found by bisection when not given.
        """
        address = checksum(address, "contract address")
        code = bytes(chain.w3.eth.get_code(address))
        if not code:
            raise NotFogFedContract(f"no contract at {address} on {chain.label}",
                                    "check the address, and that it was deployed on this chain")
        if code != _runtime_code():
            raise NotFogFedContract(f"the contract at {address} is not this fogfed's FogFed "
                                    f"(runtime code differs: {len(code)} bytes)",
                                    "deploy FogFed with `fogfed deploy`, or upgrade fogfed to the matching version")
        if deploy_block is None:
            deploy_block = _first_block_with_code(chain, address)
        return cls(chain, address, deploy_block=deploy_block)

    # -- plumbing -------------------------------------------------------------

    def _transact(self, account: LocalAccount, function: str, *fn_args: Any, gas: int | None = None,
                  on_nonce: Callable[[int], object] | None = None) -> TxResult:
        data = self._contract.encode_abi(function, args=list(fn_args))
        receipt = self.chain.send(account, to=self.address, data=bytes.fromhex(data[2:]), gas=gas, function=function,
                                  on_nonce=on_nonce)
        tx_hash = receipt["transactionHash"]
        return TxResult(
            tx_hash=tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex(),
            receipt=receipt,
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
            events=decode_receipt(receipt, self.address),
        )

    def _call(self, function: str, *fn_args: Any) -> Any:
        fn = self._contract.get_function_by_name(function)(*fn_args)
        raw = self.chain.call({"to": self.address, "data": fn._encode_transaction_data()}, function)
        types = [o["type"] for o in fn.abi["outputs"]]
        try:
            out = [_checksummed(v, t) for v, t in zip(abi_decode(types, raw), types)]
        except (DecodingError, ValueError) as exc:
            raise NotFogFedContract(f"{function} returned malformed data from {self.address}",
                                    "is this a FogFed contract?") from exc
        return out[0] if len(out) == 1 else tuple(out)

    @staticmethod
    def _with_value(result: TxResult, value: Any) -> TxResult:
        return TxResult(result.tx_hash, result.receipt, result.gas_used, result.block_number, result.events, value)

    # -- roles and settings ---------------------------------------------------

    def settings(self) -> Settings:
        """Admin, pending admin, federation count, false-claim threshold, max cache lifetime."""
        admin, pending, count, threshold, lifetime = self._call("settings")
        return Settings(admin, None if pending == ZERO_ADDRESS else pending, count, threshold, lifetime)

    def is_operator(self, account: str) -> bool:
        """Whether ``account`` may run TAS functions (the admin always may)."""
        return bool(self._call("isOperator", checksum(account, "account")))

    def begin_admin_transfer(self, admin: LocalAccount, new_admin: str | None) -> TxResult:
        """Name the next admin (None cancels); it must call :meth:`accept_admin`."""
        return self._transact(admin, "beginAdminTransfer", checksum(new_admin or ZERO_ADDRESS, "new admin"))

    def accept_admin(self, account: LocalAccount) -> TxResult:
        """Take over the admin role (after begin_admin_transfer named ``account``)."""
        return self._transact(account, "acceptAdmin")

    def set_operator(self, admin: LocalAccount, account: str, enabled: bool) -> TxResult:
        """Grant or revoke the TAS operator role (admin only)."""
        if not isinstance(enabled, bool):
            raise InvalidArgument(f"enabled must be True or False, got {enabled!r}")
        return self._transact(admin, "setOperator", checksum(account, "account"), enabled)

    def configure(self, tas: LocalAccount, false_claim_threshold: int, max_cache_lifetime: int) -> TxResult:
        """Set the automatic-removal threshold and the longest cache announcement (seconds)."""
        return self._transact(tas, "configure", a.uint(false_claim_threshold, 16, "false-claim threshold"),
                              a.uint(max_cache_lifetime, 32, "max cache lifetime"))

    # -- federations ----------------------------------------------------------

    def create_federation(self, tas: LocalAccount, location: str, service: str, ffpk: bytes,
                          parent: int = 0) -> TxResult:
        """Paper Algorithm 6. ``.value`` is the new federation id."""
        result = self._transact(tas, "createFederation", a.text(location, "location", 64),
                                a.text(service, "service", 64), a.blob(ffpk, "federation public key", MAX_PUBLIC_KEY),
                                a.uint(parent, 32, "parent federation id"))
        return self._with_value(result, result.event("FederationCreated").args["federationId"])

    def bump_epoch(self, tas: LocalAccount, federation_id: int, epoch: int, bundle: bytes) -> TxResult:
        """Refresh a federation's member tree built at ``epoch`` (StaleEpoch if it moved): new epoch and
        generation, keys in ``bundle`` (digest of its CIDv0 in the content store). ``.value``: the new epoch."""
        result = self._transact(tas, "bumpEpoch", a.uint(federation_id, 32, "federation id"),
                                a.uint(epoch, 32, "epoch"), a.bytes_n(bundle, 32, "bundle digest", nonzero=True))
        return self._with_value(result, result.event("EpochAdvanced").args["epoch"])

    def federation(self, federation_id: int) -> Federation:
        """A federation's record; ContractRevert(UnknownFederation) if there is none."""
        fid = a.uint(federation_id, 32, "federation id")
        commitment, parent, epoch = self._call("federation", fid)
        if not any(commitment):
            raise decode_revert(_error_data("UnknownFederation", fid), "federation")
        return Federation(fid, bytes(commitment), parent, epoch)

    def federation_by_attributes(self, location: str, service: str) -> int:
        """Id of the federation with these attributes, 0 if none (the TAS's Join lookup)."""
        return int(self._call("federationByAttributes", a.attributes_hash(location, service)))

    def federation_public_key(self, federation_id: int) -> bytes:
        """The federation public key bytes from its creation event, checked against the stored commitment."""
        fed = self.federation(federation_id)
        for event in self.events(names=["FederationCreated"], where={"federationId": federation_id}):
            key = event.args["publicKey"]
            if a.public_key_commitment(key) == fed.public_key_commitment:
                return key
        raise ChainError(f"no creation event with a matching public key for federation {federation_id}",
                         "the node's event history may be pruned; ask the TAS for the key")

    # -- membership -----------------------------------------------------------

    def add_member(self, tas: LocalAccount, federation_id: int, node_address: str, enc_pubkey: bytes) -> TxResult:
        """Paper Algorithm 7: enrol a node with its X25519 public key."""
        return self._transact(tas, "addMember", a.uint(federation_id, 32, "federation id"),
                              checksum(node_address, "node address"),
                              a.bytes_n(enc_pubkey, 32, "encryption public key", nonzero=True))

    def add_members(self, tas: LocalAccount, federation_id: int, node_addresses: list[str],
                    enc_pubkeys: list[bytes]) -> TxResult:
        """Enrol several nodes in one transaction (all or nothing). ``.value`` is the count."""
        nodes = [checksum(n, f"node address #{i}") for i, n in enumerate(node_addresses)]
        keys = [a.bytes_n(k, 32, f"encryption public key #{i}", nonzero=True) for i, k in enumerate(enc_pubkeys)]
        if not nodes or len(nodes) != len(keys):
            raise InvalidArgument(f"need one key per node and at least one node, got {len(nodes)} and {len(keys)}")
        result = self._transact(tas, "addMembers", a.uint(federation_id, 32, "federation id"), nodes, keys)
        return self._with_value(result, len(nodes))

    def remove_member(self, tas: LocalAccount, node_address: str, note: str = "") -> TxResult:
        """Paper Algorithm 10: remove a node; its federation's epoch advances (``.value`` new epoch).

        ``note`` is the operator's reason, stored on chain in a RemovalNoted event (at most 256
        bytes of UTF-8, no control characters; checked here before any gas is spent)."""
        result = self._transact(tas, "removeMember", checksum(node_address, "node address"),
                                a.note(note, "removal reason", MAX_REMOVAL_NOTE))
        return self._with_value(result, result.event("EpochAdvanced").args["epoch"])

    def deliver_key(self, tas: LocalAccount, node_address: str, federation_id: int, epoch: int,
                    sealed_key: bytes) -> TxResult:
        """Paper Algorithm 3: post a node's sealed CP-ABE key for the current epoch (KeyDelivered event)."""
        return self._transact(tas, "deliverKey", checksum(node_address, "node address"),
                              a.uint(federation_id, 32, "federation id"), a.uint(epoch, 32, "epoch"),
                              a.blob(sealed_key, "sealed key", MAX_SEALED_KEY))

    def member(self, node_address: str) -> Member:
        """A node's membership record (all zero for a never-enrolled address)."""
        addr = checksum(node_address, "node address")
        fid, active, claims, generation, joined, key = self._call("member", addr)
        return Member(addr, fid, active, claims, generation, joined, bytes(key))

    def is_active_member(self, node_address: str, federation_id: int) -> bool:
        """Whether the node is an active member of the federation."""
        return bool(self._call("isActiveMember", checksum(node_address, "node address"),
                               a.uint(federation_id, 32, "federation id")))

    def member_has_attributes(self, node_address: str, location: str, service: str) -> bool:
        """Whether the node is an active member of the federation with these attributes
        (verifyMember through eth_call: free, nothing recorded)."""
        return bool(self._call("verifyMember", checksum(node_address, "node address"),
                               a.attributes_hash(location, service)))

    def verify_member(self, sender: LocalAccount, node_address: str, location: str, service: str) -> TxResult:
        """The same check as a recorded transaction (MemberVerified event). ``.value`` is the answer."""
        result = self._transact(sender, "verifyMember", checksum(node_address, "node address"),
                                a.attributes_hash(location, service))
        return self._with_value(result, result.event("MemberVerified").args["result"])

    # -- files ----------------------------------------------------------------

    def register_file(self, member: LocalAccount, federation_id: int, content_digest: bytes, plaintext_hash: bytes,
                      enc_sk_ref: bytes, policy: str, epoch: int, cid_codec: int = 0,
                      on_nonce: Callable[[int], object] | None = None) -> TxResult:
        """Paper Algorithm 8 in one transaction. ``content_digest`` is the sha2-256 digest of the
        ciphertext's CID (``cid_codec`` 0 for CIDv0, else the CIDv1 codec). ``.value`` is the file id,
        keccak256(uploader ++ digest) (see fogfed.protocol.files.file_id_for). ``on_nonce``: see
        :meth:`Chain.send <fogfed.chain.connection.Chain.send>`."""
        digest = a.bytes_n(content_digest, 32, "content digest", nonzero=True)
        result = self._transact(member, "registerFile", a.uint(federation_id, 32, "federation id"), digest,
                                a.uint(cid_codec, 32, "CID codec"),
                                a.bytes_n(plaintext_hash, 32, "plaintext hash", nonzero=True),
                                a.bytes_n(enc_sk_ref, 32, "encrypted-key reference", nonzero=True),
                                a.uint(epoch, 32, "epoch"), a.text(policy, "policy", 1024), on_nonce=on_nonce)
        return self._with_value(result, bytes(result.event("FileRegistered").args["fileId"]))

    def file_registration(self, file_id: bytes) -> dict:
        """Arguments of the file's FileRegistered event (its content digest, CID codec and policy text);
        ContractRevert(UnknownFile) if there is none. The caller checks the digest against the id."""
        record = self.file(file_id)
        found = self.events(self.deploy_block, names=["FileRegistered"],
                            where={"fileId": record.file_id})
        if not found:
            raise decode_revert(_error_data("UnknownFile", record.file_id), "file")
        return dict(found[-1].args)

    def record_access(self, account: LocalAccount, file_id: bytes) -> TxResult:
        """Paper "Getting SK and file index": never reverts for a refusal; ``.value`` True when granted
        (AccessGranted event), False when denied (AccessDenied with a reason)."""
        result = self._transact(account, "recordAccess", a.bytes_n(file_id, 32, "file id"))
        return self._with_value(result, any(e.name == "AccessGranted" for e in result.events))

    def report_damage(self, member: LocalAccount, file_id: bytes, reason: int | str,
                      holder: str | None = None) -> TxResult:
        """Report a damaged stored copy (holder None: file marked damaged) or a holder's cached copy."""
        code = DAMAGE_REASONS.get(reason, reason) if isinstance(reason, str) else reason
        if not isinstance(code, int) or code not in DAMAGE_REASONS.values():
            raise InvalidArgument(f"damage reason must be one of {sorted(DAMAGE_REASONS)} or 1-3, got {reason!r}")
        return self._transact(member, "reportDamage", a.bytes_n(file_id, 32, "file id"),
                              checksum(holder or ZERO_ADDRESS, "holder"), code)

    def report_intact(self, member: LocalAccount, file_id: bytes) -> TxResult:
        """Report the stored copy retrieved intact: clears the file's damage mark."""
        return self._transact(member, "reportIntact", a.bytes_n(file_id, 32, "file id"))

    def file(self, file_id: bytes) -> FileRecord:
        """A file's record; ContractRevert(UnknownFile) if there is none."""
        fid = a.bytes_n(file_id, 32, "file id")
        ph, ref, pref, uploader, fed, epoch, at, damaged = self._call("file", fid)
        if fed == 0:
            raise decode_revert(_error_data("UnknownFile", fid), "file")
        return FileRecord(fid, bytes(ph), bytes(ref), bytes(pref), uploader, fed, epoch, at, damaged)

    def share_file(self, uploader: LocalAccount, file_id: bytes, federation_id: int) -> TxResult:
        """Let members of another federation read a file (its uploader only)."""
        return self._transact(uploader, "shareFile", a.bytes_n(file_id, 32, "file id"),
                              a.uint(federation_id, 32, "federation id"))

    def has_access(self, node_address: str, file_id: bytes) -> bool:
        """Whether the node may read the file now (member of its federation or of one it is shared with)."""
        return bool(self._call("hasAccess", checksum(node_address, "node address"), a.bytes_n(file_id, 32, "file id")))

    # -- peers ----------------------------------------------------------------

    def set_endpoint(self, member: LocalAccount, url: str) -> TxResult:
        """Publish the URL where the caller serves cached copies (EndpointSet event)."""
        return self._transact(member, "setEndpoint", a.text(url, "endpoint URL", 256))

    def peer_blocks(self, node_address: str) -> tuple[int, int]:
        """Blocks of the node's latest KeyDelivered and EndpointSet events (0: none)."""
        key_block, endpoint_block = self._call("peerBlocks", checksum(node_address, "node address"))
        return int(key_block), int(endpoint_block)

    def endpoint(self, node_address: str) -> str | None:
        """The URL the node published last (None: never), read from the one block peerBlocks names."""
        node = checksum(node_address, "node address")
        block = self.peer_blocks(node)[1]
        if not block:
            return None
        found = self.events(block, block, ["EndpointSet"], where={"node": node})
        return found[-1].args["url"] if found else None

    # -- caches ---------------------------------------------------------------

    def announce_cache(self, member: LocalAccount, file_id: bytes, expires_at: int) -> TxResult:
        """Announce (or renew) a cached copy until ``expires_at`` (unix seconds)."""
        return self._transact(member, "announceCache", a.bytes_n(file_id, 32, "file id"),
                              a.uint(expires_at, 64, "expiry"))

    def withdraw_cache(self, account: LocalAccount, file_id: bytes, holder: str | None = None) -> TxResult:
        """Withdraw one's own announcement (holder None) or prune someone's stale one."""
        return self._transact(account, "withdrawCache", a.bytes_n(file_id, 32, "file id"),
                              checksum(holder or account.address, "holder"))

    def cache_expiry(self, file_id: bytes, holder: str) -> int:
        """A holder's announced expiry (0: none)."""
        return int(self._call("cacheExpiry", a.bytes_n(file_id, 32, "file id"), checksum(holder, "holder")))

    def fresh_cache_holders(self, file_id: bytes, *, page_size: int = 200,
                            limit: int | None = None) -> list[CacheHolder]:
        """Holders of a fresh cached copy (unexpired, still active members of the file's federation);
        at most ``limit`` of them (None: all)."""
        fid = a.bytes_n(file_id, 32, "file id")
        a.uint(page_size, 16, "page size")
        if limit is not None:
            a.uint(limit, 16, "limit")
        holders: list[str] = []
        offset, total = 0, None
        while (total is None or offset < total) and (limit is None or len(holders) < limit):
            size = max(page_size, 1) if limit is None else max(min(page_size, limit - len(holders)), 1)
            page, offset, total = self._call("freshCacheHolders", fid, offset, size)
            holders.extend(page)
        return [CacheHolder(h, self.cache_expiry(fid, h)) for h in holders[:limit]]

    # -- events ---------------------------------------------------------------

    def events(self, from_block: int | None = None, to_block: int | None = None,
               names: Iterable[str] | None = None, *, where: Mapping[str, Any] | None = None) -> list[DecodedEvent]:
        """FogFed events in block order (``eth_getLogs`` in batches of 2,000 blocks).

        ``where`` fixes indexed arguments (e.g. ``{"node": address}``) and needs exactly one name.
        """
        names = None if names is None else list(names)
        if where:
            if names is None or len(names) != 1:
                raise InvalidArgument("filtering on indexed arguments needs exactly one event name")
            topics = topics_where(names[0], dict(where))
        else:
            topics = [topics_for(names)] if names is not None else None
        return self._logs(self.deploy_block if from_block is None else from_block, to_block, topics)

    def _logs(self, start: int, end: int | None, topics: list[Any] | None) -> list[DecodedEvent]:
        w3 = self.chain.w3
        # only final blocks: nothing is acted on that a reorganisation could take back
        a.uint(start, 64, "from_block")
        if end is None:
            end = self.chain.final_block()
            if end < start:
                return []
        a.uint(end, 64, "to_block")
        out: list[DecodedEvent] = []
        block = start
        while block <= end:
            last = min(block + LOG_BATCH - 1, end)
            query: dict[str, Any] = {"address": self.address, "fromBlock": block, "toBlock": last}
            if topics is not None:
                query["topics"] = topics
            try:
                logs = w3.eth.get_logs(query)
            except Exception as exc:  # noqa: BLE001
                raise self.chain.unreachable(exc) or ChainError(
                    f"cannot read FogFed events in blocks {block}-{last}: {exc}") from None
            out.extend(e for e in map(decode_log, logs) if e is not None)
            block = last + 1
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out


def _error_data(name: str, *values: Any) -> bytes:
    """Revert data of custom error ``name``: lets views report a missing record like the contract would."""
    item = next(i for i in load_artifact()["abi"] if i["type"] == "error" and i["name"] == name)
    types = [i["type"] for i in item["inputs"]]
    return function_signature_to_4byte_selector(f"{name}({','.join(types)})") + abi_encode(types, list(values))


def _checksummed(value: Any, typ: str) -> Any:
    if typ == "address":
        return to_checksum_address(value)
    if typ == "address[]":
        return [to_checksum_address(v) for v in value]
    return value


def _first_block_with_code(chain: Chain, address: str) -> int:
    """Bisect for the deployment block; 0 when the node cannot answer historical queries."""
    w3 = chain.w3
    lo, hi = 0, int(w3.eth.block_number)
    try:
        while lo < hi:
            mid = (lo + hi) // 2
            if w3.eth.get_code(address, block_identifier=mid):
                hi = mid
            else:
                lo = mid + 1
    except Exception:  # noqa: BLE001 - pruned or non-archive node: scan from genesis
        return 0
    return lo


__all__ = ["FogFed", "deploy", "DAMAGE_REASONS"]
