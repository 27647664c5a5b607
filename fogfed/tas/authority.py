"""The TAS: one CP-ABE authority for the whole system, federations, enrollment, removal, re-keying.

Paper Algorithm 1 runs once (``init``): the master key and the TAS's Ethereum
key live only in the encrypted keystore ``<home>/tas.json``. Every
federation's FFPK on chain is this one system public key (the deviation from
the paper's per-federation key pair that lets a policy span federations).
Membership change is revocation inside the policy (fogfed.tas.revocation,
docs/architecture.md): every member holds one key with the path of its leaf
of its federation's member tree; a removal is one transaction that revokes
the leaf (no key is delivered to anyone); a join delivers exactly one key; a
refresh is one transaction committing to a bundle of every member's new key.

The chain is the source of truth (fogfed.tas.state): federations, members,
their X25519 keys and the keys delivered are read from the contract's views
and events; ``<home>/state.json`` holds only authenticated settings, and
``<home>/tas.sqlite`` spent nonces, a cache of the chain and the journal of
operations in flight (fogfed.tas.journal). Every operation that sends
transactions holds ``<home>/tas.lock`` and checks the chain before each
step, so running it again, or :meth:`TrustedAuthority.sync`, finishes what
a kill or an unreachable chain interrupted, without doing anything twice.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fogfed import abe
from fogfed.chain import Chain, ContractRevert, FogFed, deploy
from fogfed.chain.args import note
from fogfed.chain.contract import MAX_REMOVAL_NOTE
from fogfed.chain.mobility import FogFedMobility
from fogfed.errors import FogfedError, InputError
from fogfed._faults import step
from fogfed.keys.keystore import KdfParams, MalformedKeystore, load_keystore, save_keystore
from fogfed.protocol.attributes import generation_height, node_attributes, normalise_location, normalise_service
from fogfed.protocol.enrollment import EnrollmentRejected, EnrollmentRequest
from fogfed.protocol.files import cid_of_file_id, file_id_of_cid
from fogfed.protocol.keydelivery import check_address, key_reference, seal_node_key
from fogfed.protocol.refresh import Bundle
from fogfed.tas import batch, inflight
from fogfed.tas.journal import Entry, Journal
from fogfed.tas.results import EnrollmentResult, FederationInfo, RefreshResult, RekeyResult, RemovalResult
from fogfed.tas.revocation import MemberTrees, RefreshPolicy
from fogfed.tas.state import (MAC_SECRET, STATE, ChainCache, LocalDb, TasLock, TasStateError, conversion_key,
                              load_settings, save_settings)
from fogfed.tas.verifier import AttributeVerifier, OperatorApproval

KIND = "tas"
KEYSTORE = "tas.json"


class TasError(FogfedError):
    """A TAS operation could not be done."""


class TasInputError(TasError, InputError):
    """A TAS operation refused for what it was given (a home without a TAS, a federation or node that is
    not this TAS's): nothing was done; exit code 2 in the CLI."""


class TrustedAuthority:
    """The trusted authority server's state and operations (explicit home directory)."""

    def __init__(self, home: Path, fed: FogFed, account: LocalAccount, pk: abe.PublicKey, msk: abe.MasterKey,
                 settings: dict[str, Any], mac_key: bytes) -> None:
        self.home, self.fed, self.account = Path(home), fed, account
        self.public_key, self._msk, self._settings = pk, msk, settings
        self._mac_key = mac_key
        self._mobility: FogFedMobility | None = None
        self._db = LocalDb(self.home)
        self.journal = Journal(self._db)
        self.cache = ChainCache(self._db, fed, pk.to_bytes(), settings.get("deploy_block"))
        self._lock = TasLock(self.home)
        self.trees = MemberTrees(fed, self._bundle_nodes)
        self.store = None  # a ContentStore: keys are then delivered by reference (use_store)

    # -- set-up -----------------------------------------------------------------------------

    @classmethod
    def init(cls, home: Path, chain: Chain, passphrase: str, *, fed: FogFed | str | None = None,
             account: LocalAccount | str | None = None, scheme: str = abe.DEFAULT_SCHEME,
             kdf: KdfParams | None = None) -> "TrustedAuthority":
        """Paper Algorithm 1 (Setup): ABE system keys, TAS keystore in ``home``; Algorithm 5 if ``fed`` is None.

        ``fed`` is the address of an already deployed FogFed on which
        ``account`` is a TAS operator. ``account`` is the TAS's Ethereum
        account (a funded key on a devnet); None generates one, which then
        needs funds (and the operator role) before any transaction.
        """
        home = Path(home)
        if (home / KEYSTORE).exists():
            raise TasError(f"a TAS is already initialised in {home}", "open it instead, or use another directory")
        acct = _account(account)
        pk, msk = abe.setup(scheme)
        if fed is None:
            contract = deploy(chain, acct)
        else:
            contract = FogFed.at(chain, check_address(getattr(fed, "address", fed), "contract address"))
            if not contract.is_operator(acct.address):
                raise TasError(f"{acct.address} is not a TAS operator of contract {contract.address}",
                               "ask the contract admin to grant it the operator role")
        settings = {"contract": contract.address, "deploy_block": contract.deploy_block,
                    "chain_id": chain.chain_id, "address": acct.address, "mobility": None}
        home.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        save_keystore(home / KEYSTORE, {"abe_public_key": pk.to_bytes(), "abe_master_key": msk.to_bytes(),
                                        "eth_private_key": bytes(acct.key), MAC_SECRET: key},
                      passphrase, kind=KIND, kdf=kdf)
        tas = cls(home, contract, acct, pk, msk, settings, key)
        tas._save()
        return tas

    @classmethod
    def open(cls, home: Path, chain: Chain, passphrase: str) -> "TrustedAuthority":
        """Open an initialised TAS; WrongPassphrase for a wrong passphrase, TasStateError for a damaged file."""
        home = Path(home)
        if not (home / KEYSTORE).exists():
            raise TasInputError(f"no TAS in {home}", "run `fogfed tas init` first (or pass the right --home)")
        secrets = load_keystore(home / KEYSTORE, passphrase, kind=KIND)
        try:
            pk = abe.PublicKey.from_bytes(secrets["abe_public_key"])
            msk = abe.MasterKey.from_bytes(secrets["abe_master_key"])
            acct = Account.from_key(secrets["eth_private_key"])
        except (KeyError, InputError, ValueError):
            raise MalformedKeystore(f"keystore {home / KEYSTORE} does not hold a TAS's keys") from None
        key = secrets.get(MAC_SECRET)
        if key is not None and len(key) != 32:
            raise MalformedKeystore(f"keystore {home / KEYSTORE} holds a bad {MAC_SECRET}")
        converting = key is None  # a home of the first design (or its conversion cut short)
        if converting:
            key = conversion_key(bytes(acct.key))
        settings, old_nonces = load_settings(home, key, allow_v1=converting)
        if settings["address"] != acct.address:
            raise TasStateError(f"TAS state {home / STATE} names account {settings['address']}, the keystore "
                                f"holds {acct.address}", "restore the state file that belongs to this keystore")
        try:
            check_address(settings["contract"], "contract address")
        except InputError:
            raise TasStateError(f"TAS state {home / STATE} is damaged: bad contract address",
                                "restore it from a backup") from None
        if chain.chain_id != settings["chain_id"]:
            raise TasError(f"this TAS belongs to chain {settings['chain_id']}, the RPC is chain {chain.chain_id}",
                           "connect to the chain the TAS was initialised on")
        contract = FogFed.at(chain, settings["contract"], deploy_block=settings.get("deploy_block"))
        tas = cls(home, contract, acct, pk, msk, settings, key)
        if converting:
            if not contract.is_operator(acct.address):
                raise TasStateError(f"TAS state {home / STATE}: {acct.address} is not an operator of "
                                    f"{contract.address}", "restore the state file that belongs to this keystore")
            with tas._db.transaction() as c:
                c.executemany("INSERT OR IGNORE INTO nonces VALUES (?, 0)", [(n,) for n in old_nonces or []])
            tas._save()  # authenticated first, then the key into the keystore: each step repeatable
            save_keystore(home / KEYSTORE, {**secrets, MAC_SECRET: key}, passphrase, kind=KIND, overwrite=True)
        return tas

    def _save(self) -> None:
        save_settings(self.home, self._mac_key, self._settings)

    def close(self) -> None:
        """Close the local database."""
        self._db.close()

    def use_store(self, store) -> None:
        """Deliver keys through ``store``: the sealed box goes there, a 36-byte reference on chain."""
        self.store = store

    @property
    def mobility(self) -> FogFedMobility | None:
        """The mobility contract this TAS moves nodes with (its settings remember it), or None."""
        address = self._settings.get("mobility")
        if address and (self._mobility is None or self._mobility.address != address):
            self._mobility = FogFedMobility.at(self.fed.chain, address, self.fed)
        return self._mobility if address else None

    def use_mobility(self, mobility: FogFedMobility | str) -> FogFedMobility:
        """Record the mobility contract of this TAS (checked against FogFed), used for every move from now on."""
        if not isinstance(mobility, FogFedMobility):
            mobility = FogFedMobility.at(self.fed.chain, check_address(mobility, "mobility contract"), self.fed)
        self.check_mobility(mobility)
        if not self._settings.get("mobility"):
            self._settings["mobility"] = mobility.address
            self._save()
        self._mobility = mobility
        return mobility

    def check_mobility(self, mobility: FogFedMobility) -> None:
        """TasError unless ``mobility`` serves this TAS's FogFed and is the one it uses (if it uses one yet).

        A TAS has at most one: another one's settings would silently replace the recorded ones.
        """
        if mobility.fed.address != self.contract_address:
            raise TasError(f"mobility contract {mobility.address} serves FogFed {mobility.fed.address}, "
                           f"not this TAS's {self.contract_address}")
        current = self._settings.get("mobility")
        if current and current != mobility.address:
            raise TasError(f"this TAS already uses the mobility contract {current}, not {mobility.address}",
                           "give that address (or leave --mobility out)")

    @property
    def address(self) -> str:
        """The TAS's Ethereum account."""
        return self.account.address

    @property
    def contract_address(self) -> str:
        """The FogFed contract this TAS manages."""
        return self.fed.address

    @property
    def chain_id(self) -> int:
        """The chain the contract lives on."""
        return self.fed.chain.chain_id

    # -- federations ------------------------------------------------------------------------

    def create_federation(self, location: str, service: str, parent: int = 0) -> FederationInfo:
        """Paper Algorithm 6 (+3, FFPK): create the federation for (location, service) on chain.

        Its FFPK is the system public key, posted in the FederationCreated event.
        """
        loc, svc = normalise_location(location), normalise_service(service)
        if type(parent) is not int or parent < 0:
            raise InputError(f"parent federation must be an id >= 0, got {parent!r}")
        with self._lock.held():
            tx = self.fed.create_federation(self.account, loc, svc, self.public_key.to_bytes(), parent)
        return FederationInfo(tx.value, loc, svc, parent, 0, (), tx.tx_hash, tx.gas_used)

    def federations(self) -> list[FederationInfo]:
        """Every federation of this TAS (created under its system key), with epoch and active members, from chain."""
        self.cache.refresh()
        out = []
        members = self._active_by_federation()
        for fid, fed in self.cache.federations().items():
            record = self.fed.federation(fid)
            out.append(FederationInfo(fid, fed["location"], fed["service"], record.parent, record.epoch,
                                      tuple(members.get(fid, ()))))
        return out

    def created_federation(self, federation_id: int) -> dict[str, Any] | None:
        """Location, service and parent of a federation of this TAS (a copy), or None."""
        feds = self.cache.federations()
        if federation_id not in feds:
            self.cache.refresh()
            feds = self.cache.federations()
        return feds.get(federation_id)

    def enrolled_member(self, node_address: str) -> dict[str, Any] | None:
        """A member of one of this TAS's federations, from chain: federation_id, enc_public_key (hex),
        location, service, active; None for a node never enrolled in one."""
        member = self.fed.member(node_address)
        fed = self.created_federation(member.federation_id) if member.federation_id else None
        if fed is None:
            return None
        return {"federation_id": member.federation_id, "enc_public_key": member.encryption_key.hex(),
                "location": fed["location"], "service": fed["service"], "active": member.active}

    def _active_by_federation(self) -> dict[int, list[str]]:
        ours = self.cache.federations()
        out: dict[int, list[str]] = {}
        for addr in self.cache.nodes():
            member = self.fed.member(addr)
            if member.active and member.federation_id in ours:
                out.setdefault(member.federation_id, []).append(addr)
        return out

    def active_members(self, federation_id: int) -> list[str]:
        """The federation's active members, from chain (every node ever added, checked with the member view)."""
        self.cache.refresh()
        return self._active_by_federation().get(federation_id, [])

    # -- enrollment -------------------------------------------------------------------------

    def enroll(self, request: EnrollmentRequest, *, verifier: AttributeVerifier | None = None,
               approve: bool = False, fund_wei: int = 0) -> EnrollmentResult:
        """Paper Algorithms 2 (Join), 7 (add FN) and 3 (FNSK): verify, assign, register, deliver the key.

        The request's signature, chain, contract and freshness are checked
        first; then ``verifier`` (default OperatorApproval(approve)) decides on
        the attributes. The node joins the federation with its (location,
        service), created if none exists, and receives its key sealed on chain.
        ``fund_wei`` > 0 also sends it that much ether for gas (devnets).
        The contract's event order assigns the node a fresh leaf of the
        federation's member tree; its one key carries that leaf's path. Files
        uploaded before it joined are outside its reach (backward secrecy:
        their covers hold only the leaves assigned then), and nobody else is
        re-keyed.

        Idempotent: the same request again finishes an enrollment that was
        interrupted at any step (journal entry keyed by its nonce, every step
        checked on chain first) and does nothing for one that completed.
        """
        if not isinstance(request, EnrollmentRequest):
            raise InputError("enroll needs an EnrollmentRequest", "parse it with EnrollmentRequest.from_json")
        request.verify(chain_id=self.chain_id, contract=self.contract_address)
        key = request.nonce.hex()
        with self._lock.held():
            entry = self.journal.get(key)
            if entry is None:
                if self.nonce_used(request.nonce):
                    raise EnrollmentRejected("this enrollment request was already used (replay)",
                                             "ask the node for a fresh request")
                # Every check before any state change: an enrolled node's request must not create a
                # federation, bump an epoch or re-key anyone before addMember would revert.
                member = self.fed.member(request.address)
                if member.active:
                    raise EnrollmentRejected(f"{request.address} is already an active member of federation "
                                             f"{member.federation_id}; nothing was changed",
                                             "remove it first (fogfed tas remove) or move it; a lost key is "
                                             "delivered again with `fogfed tas reissue`")
                verdict = (verifier or OperatorApproval(approved=approve)).verify(request)
                if not verdict.ok:
                    raise EnrollmentRejected(f"enrollment of {request.address} refused: {verdict.reason}",
                                             "approve it explicitly or add the node to the allowlist")
                entry = self.journal.begin(key, "enroll", {
                    "address": request.address, "location": request.location, "service": request.service,
                    "enc_public_key": request.enc_public_key.hex(), "fund_wei": int(fund_wei),
                    "verdict": verdict.reason})
            elif entry.kind != "enroll" or entry.data["address"] != request.address:
                raise EnrollmentRejected("this enrollment request was already used (replay)",
                                         "ask the node for a fresh request")
            elif entry.done:
                done = self._completed(entry)
                if done is None:
                    raise EnrollmentRejected("this enrollment request was already used (replay)",
                                             "ask the node for a fresh request")
                return done
            step("enroll:journal")
            return self._finish_enroll(entry)

    def enroll_batch(self, requests: list[EnrollmentRequest], *, labels: list[str] | None = None,
                     verifier: AttributeVerifier | None = None, approve: bool = False, fund_wei: int = 0,
                     chunk: int = batch.CHUNK, skip_rejected: bool = False, progress=None
                     ) -> batch.BatchEnrollmentResult:
        """Paper Algorithms 2, 7 and 3 for many requests: every check first, ``addMembers`` per federation,
        one refresh commitment per federation delivering all their keys (fogfed.tas.batch). Idempotent."""
        return batch.enroll_batch(self, requests, labels=labels,
                                  verifier=verifier or OperatorApproval(approved=approve), fund_wei=fund_wei,
                                  chunk=chunk, skip_rejected=skip_rejected, progress=progress)

    def locked(self):
        """Hold ``tas.lock`` (re-entrant): one TAS operation at a time across the processes of this home
        (other TAS modules, e.g. moves, take it through this too)."""
        return self._lock.held()

    def _completed(self, entry: Entry) -> EnrollmentResult | None:
        """The result of a finished enrollment if the node is still the member it made, else None."""
        d = entry.data
        member = self.fed.member(d["address"])
        fid = d.get("federation_id")
        if not (member.active and member.federation_id == fid and member.encryption_key.hex() == d["enc_public_key"]):
            return None
        epoch = self.fed.federation(fid).epoch
        leaf = self.trees.leaf(fid, d["address"])
        return EnrollmentResult(d["address"], fid, bool(d.get("created")), epoch,
                                tuple(self._attributes(d["location"], d["service"], fid, leaf)),
                                f"already enrolled ({d['verdict']})", {}, leaf)

    def _attributes(self, location: str, service: str, fid: int, leaf: int) -> list[str]:
        """The key attributes of ``leaf`` in the federation's current tree generation (its height replayed)."""
        tree = self.trees.get(fid)
        return node_attributes(location, service, fid, leaf, tree.generation, tree.height)

    def _finish_enroll(self, entry: Entry) -> EnrollmentResult:
        """Run the enrollment's remaining steps, each checked on chain first; mark the entry done."""
        d = entry.data
        node, enc = d["address"], bytes.fromhex(d["enc_public_key"])
        gas: dict[str, int] = {}
        fid = self.fed.federation_by_attributes(d["location"], d["service"])
        if fid == 0:
            info = self.create_federation(d["location"], d["service"])
            fid, gas["createFederation"] = info.federation_id, info.gas_used or 0
            self.journal.update(entry, created=True)
        step("enroll:federation")
        member = self.fed.member(node)
        if not (member.active and member.federation_id == fid and member.encryption_key == enc):
            if member.active:
                raise TasError(f"{node} became a member of federation {member.federation_id} meanwhile",
                               "check it with `fogfed tas status`")
            refreshed = self.ensure_room(fid)
            if refreshed is not None:
                gas["bumpEpoch"] = refreshed.gas_used
            gas["addMember"] = self.fed.add_member(self.account, fid, node, enc).gas_used
        step("enroll:addMember")
        if d["fund_wei"] and not d.get("funded"):
            # A transfer leaves no event: the balance before it, recorded first, tells a retry whether it happened.
            if "balance_before" not in d:
                self.journal.update(entry, balance_before=self.fed.chain.balance(node))
                step("enroll:fund-recorded")
            if self.fed.chain.balance(node) <= d["balance_before"]:
                gas["fund"] = int(self.fed.chain.fund(node, d["fund_wei"], self.account)["gasUsed"])
                step("enroll:fund-sent")
            self.journal.update(entry, funded=True)
        step("enroll:fund")
        epoch = self.fed.federation(fid).epoch
        if self.trees.missing_keys(fid, only=[node]):  # not delivered since this join
            gas["deliverKey"] = self.deliver_keys(fid, epoch, [node])
        step("enroll:deliverKey")
        self.journal.update(entry, done=True, federation_id=fid)
        leaf = self.trees.leaf(fid, node)
        return EnrollmentResult(node, fid, bool(d.get("created")), epoch,
                                tuple(self._attributes(d["location"], d["service"], fid, leaf)),
                                d["verdict"], gas, leaf)

    def nonce_used(self, nonce: bytes) -> bool:
        """Whether a signed request (enrollment or move) with this nonce was already accepted."""
        return bool(self._db.query("SELECT 1 FROM nonces WHERE nonce = ?", (nonce.hex(),)))

    def _spend_nonce(self, nonce: bytes) -> None:
        import time

        with self._db.transaction() as c:
            c.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?)", (nonce.hex(), time.time()))

    def finish_move(self, entry: Entry) -> tuple[dict[str, int], int]:
        """Run a journalled move's remaining steps, each checked on chain first; mark the entry done.

        ``moveMember`` (one transaction: the old leaf revoked, the node added to the destination with the
        same X25519 key) unless the chain shows the node already there in a newer membership, then the
        one key for the destination unless delivered since that join. Returns the gas per step and the
        destination epoch. A handover the contract now refuses (e.g. the node was removed meanwhile)
        closes the entry with the reason and raises TasError: nothing is sent.
        """
        d = entry.data
        node, to, enc = d["address"], d["to_federation"], bytes.fromhex(d["enc_public_key"])
        gas: dict[str, int] = {}
        member = self.fed.member(node)
        if not (member.active and member.federation_id == to and member.encryption_key == enc
                and member.generation > d["generation"]):
            mobility = self.mobility
            if mobility is None or mobility.address != d["mobility"]:
                raise TasError(f"the move of {node} was accepted through mobility contract {d['mobility']}, "
                               f"this TAS now uses {mobility.address if mobility else 'none'}")
            check = mobility.check_handover(node, to, enc)
            if not check.ok:
                self.journal.update(entry, done=True, refused=check.reason)
                raise TasError(f"the move of {node} to federation {to} cannot be finished: {check.reason}; "
                               "nothing was sent", "check the node with `fogfed tas status`")
            refreshed = self.ensure_room(to)  # a full tree: one refresh first, the move never fails
            if refreshed is not None:
                gas["bumpEpoch"] = refreshed.gas_used
            gas["moveMember"] = mobility.move_member(self.account, node, to, enc).gas_used
        step("move:moveMember")
        if node in self.trees.missing_keys(to):  # no key delivered since it joined `to`
            gas["deliverKey"] = self.deliver_keys(to, self.fed.federation(to).epoch, [node])
        step("move:deliverKey")
        epoch = self.fed.federation(to).epoch  # read before the entry is closed: a failed read leaves it open
        self.journal.update(entry, done=True, gas={**d.get("gas", {}), **gas})
        return gas, epoch

    def issue_key(self, attributes: list[str]) -> abe.SecretKey:
        """Paper Algorithm 3 (KeyGen): a CP-ABE key for ``attributes`` under the system master key."""
        return abe.keygen(self.public_key, self._msk, attributes)

    def deliver_keys(self, federation_id: int, epoch: int, nodes: list[str]) -> int:
        """Paper Algorithm 3 (FNSK): keygen for each node's leaf, sealed to it, posted on chain; gas used.

        The key is sealed to the X25519 key the contract records for the node, never a local copy.
        ``epoch`` is the federation's current epoch (the box is bound to it); the key itself stays
        valid across epochs: removals revoke other leaves, not it.
        """
        fed = self.created_federation(federation_id)
        if fed is None:
            raise TasError(f"federation {federation_id} is not one of this TAS's")
        gas = 0
        for node in nodes:
            member = self.fed.member(node)
            if not (member.active and member.federation_id == federation_id):
                raise TasError(f"{node} is not an active member of federation {federation_id}; it gets no keys")
            leaf = self.trees.leaf(federation_id, member.address)
            sk = self.issue_key(self._attributes(fed["location"], fed["service"], federation_id, leaf))
            sealed = seal_node_key(self.account, member.encryption_key, sk,
                                   chain_id=self.chain_id, contract=self.contract_address,
                                   node=member.address, federation_id=federation_id, epoch=epoch)
            if self.store is not None:
                sealed = key_reference(file_id_of_cid(self.store.add(io.BytesIO(sealed))))
            gas += self.fed.deliver_key(self.account, member.address, federation_id, epoch, sealed).gas_used
            step("deliverKey")
        return gas

    # -- removal and refresh ----------------------------------------------------------------

    def remove(self, node_address: str, reason: str = "removed by the TAS operator") -> RemovalResult:
        """Paper Algorithm 10 (remove rogue FN) with cryptographic revocation: one transaction, no key delivery.

        ``reason`` goes on chain (RemovalNoted event, at most 256 bytes of
        UTF-8). The contract marks the member removed (its leaf is revoked from the
        next epoch on, which the removal advances); every later upload's cover
        leaves that leaf out, so the removed node's keys match no later file.

        Idempotent and resumable: a journal entry (keyed by the node and its
        membership's generation) is written before the transaction; running it
        again after a kill or an outage at any step first waits for a removal
        still in the mempool, then sends nothing if the chain shows the member
        removed (``status`` "finished" or "already removed", with the removal
        found on chain) and sends the one transaction otherwise. An address
        that was never a member of this TAS's federations is an InputError.
        """
        node = check_address(node_address, "node address")
        note(reason, "removal reason", MAX_REMOVAL_NOTE)  # before any lock, read or gas
        with self._lock.held():
            self.fed.chain.settle(self.account)  # a removal sent by a killed run is mined (or dropped) first
            member = self.fed.member(node)
            if member.federation_id == 0 or self.created_federation(member.federation_id) is None:
                raise InputError(f"{node} is not a member of any federation of this TAS",
                                 "check the address with `fogfed tas status`")
            key = f"remove:{node}:{member.generation}"
            entry = self.journal.get(key)
            if not member.active:
                return self._removed_already(member, entry)
            status = "removed" if entry is None else "finished"  # finished: an earlier run was interrupted
            if entry is None:
                entry = self.journal.begin(key, "remove", {"address": node, "federation_id": member.federation_id,
                                                           "generation": member.generation, "reason": reason},
                                           spend=False)
            else:
                self.journal.update(entry, reason=reason)
            step("remove:journal")
            tx = self.fed.remove_member(self.account, node, reason)
            step("remove:removeMember")
            self.journal.update(entry, done=True, epoch=tx.value, tx=tx.tx_hash)
            step("remove:done")
        return RemovalResult(node, member.federation_id, tx.value, reason, None, {"removeMember": tx.gas_used},
                             status, tx.tx_hash, self.address, tx.block_number)

    def _removed_already(self, member: Any, entry: Entry | None) -> RemovalResult:
        """The removal of an inactive member as the chain shows it; its journal entry marked done."""
        fid = member.federation_id
        removals = [e for e in self.fed.events(names=["MemberRemoved"], where={"node": member.address})
                    if e.args["federationId"] == fid]
        if not removals:  # an inactive member of a known federation always has its removal event
            raise TasError(f"{member.address} is inactive in federation {fid} but the chain shows no removal",
                           "check the RPC endpoint: it may serve an incomplete event log")
        last = removals[-1]
        same_tx = [e for e in self.fed.events(last.block_number, last.block_number, ["EpochAdvanced", "RemovalNoted"])
                   if e.tx_hash == last.tx_hash]
        epochs = [e.args["epoch"] for e in same_tx if e.name == "EpochAdvanced" and e.args["federationId"] == fid]
        notes = [e.args["note"] for e in same_tx if e.name == "RemovalNoted"]
        if entry is not None and not entry.done:
            status = "finished"  # the interrupted run's transaction reached the chain: nothing is left
        else:
            status = "already removed"
        if entry is not None:
            self.journal.update(entry, done=True, tx=last.tx_hash)
        by = last.args["by"] if last.args["reason"] == 1 else "the contract (false claims)"
        return RemovalResult(member.address, fid, epochs[0] if epochs else self.fed.federation(fid).epoch,
                             notes[0] if notes else "", None, {}, status, last.tx_hash, by, last.block_number)

    def _finish_removal(self, entry: Entry) -> None:
        """``tas sync``: send an interrupted removal the chain does not show yet (with its recorded reason)."""
        d = entry.data
        member = self.fed.member(d["address"])
        if member.active and member.generation == d["generation"]:
            tx = self.fed.remove_member(self.account, d["address"], d["reason"])
            step("remove:removeMember")
            self.journal.update(entry, done=True, epoch=tx.value, tx=tx.tx_hash)
        else:
            self.journal.update(entry, done=True)

    def refresh(self, federation_id: int, progress=None) -> RefreshResult:
        """A new member-tree generation for the federation: one transaction, no gas per member.

        Every active member gets a fresh key for its leaf of the new generation
        (members keep their order: leaves 0..m-1, nothing revoked, so covers
        shrink to a few nodes; the height is ``generation_height(m)``, which
        every replayer derives too); the sealed keys go into one bundle in the
        content store and ``bumpEpoch`` commits to its digest. The contract
        refuses the commit if the epoch moved meanwhile (a removal), so a
        removed node never gets a new key; the bundle is then built again.
        Members keep their older keys for older files.

        Resumable: the journal records the bundle's digest before the
        transaction, so after a kill at any step, running it again (or
        ``sync``) finishes this refresh instead of starting another; the
        contract's epoch check makes two commits for one epoch impossible.
        """
        fid = federation_id
        if self.created_federation(fid) is None:
            raise TasInputError(f"federation {fid} is not one of this TAS's",
                                "list them with `fogfed tas federation list`")
        if self.store is None:
            raise TasError("a refresh needs a content store for its key bundle",
                           "give --ipfs URL (the embedded store is made by the first `fogfed node init` on "
                           "this machine); from Python: tas.use_store(store)")
        with self._lock.held():
            entry = next((e for e in self.journal.unfinished("refresh") if e.data["federation_id"] == fid), None)
            if entry is None:
                entry = self._begin_refresh(fid)
            return self._finish_refresh(entry, progress)

    def _begin_refresh(self, fid: int) -> Entry:
        tree = self.trees.get(fid)
        epoch = self.fed.federation(fid).epoch
        return self.journal.begin(f"refresh:{fid}:{tree.generation}:{epoch}", "refresh",
                                  {"federation_id": fid, "generation": tree.generation, "epoch": epoch})

    def _finish_refresh(self, entry: Entry, progress=None) -> RefreshResult:
        """Build and store the bundle (once), commit to it, check the generation the chain replays."""
        for _ in range(4):  # a removal (stale epoch) or a join that changed the height: build again
            d, fid = entry.data, entry.data["federation_id"]
            tree = self.trees.get(fid)
            ours = tree.past.get(d["generation"] + 1, tree) if tree.generation > d["generation"] else None
            if ours is not None and d.get("digest") and ours.bundle == bytes.fromhex(d["digest"]):
                if ours.height == d["height"]:
                    return self._refresh_done(entry, d.get("gas", 0))  # mined (before a kill, or just now)
                # a member joined while the bundle was built: the keys are for the wrong height
                self.journal.update(entry, done=True, abandoned="a join changed the new generation's height")
                entry = self._begin_refresh(fid)
                continue
            if tree.generation > d["generation"] or self.fed.federation(fid).epoch != d["epoch"]:
                self.journal.update(entry, done=True, abandoned="the tree changed before the commit")
                entry = self._begin_refresh(fid)
                continue
            digest = bytes.fromhex(d["digest"]) if d.get("digest") else None
            if digest is None or not self._bundle_stored(digest):
                digest = self._store_bundle(entry, tree, progress)
            step("refresh:stored")
            try:
                tx = self.fed.bump_epoch(self.account, fid, d["epoch"], digest)
            except ContractRevert as exc:
                if exc.error_name != "StaleEpoch":
                    raise
                continue  # an earlier send of this commit was mined, or a removal came first: look again
            step("refresh:mined")
            self.journal.update(entry, gas=tx.gas_used)
        raise TasError(f"the member tree of federation {entry.data['federation_id']} kept changing during refresh",
                       "run `fogfed tas refresh` again when removals and joins have settled")

    def _store_bundle(self, entry: Entry, tree, progress=None) -> bytes:
        d, fid = entry.data, entry.data["federation_id"]
        fed = self.created_federation(fid)
        order = tree.refresh_order()
        height = generation_height(len(order))
        keys = self._encryption_keys(fid)
        members = [(n, fed["location"], fed["service"], keys.get(n) or self.fed.member(n).encryption_key)
                   for n in order]
        bundle = self.build_bundle(fid, d["epoch"] + 1, d["generation"] + 1, members, progress, height=height)
        data = bundle.to_bytes()
        digest = file_id_of_cid(self.store.add(io.BytesIO(data)))
        self.journal.update(entry, digest=digest.hex(), height=height, members=len(order), bundle_bytes=len(data))
        return digest

    def _encryption_keys(self, federation_id: int) -> dict[str, bytes]:
        """Each node's X25519 key from its latest MemberAdded in the federation (one log query, not N views).

        The contract sets a node's key only when it enrols it, in the same call
        that emits MemberAdded with that key, so the latest event holds the key
        the ``member`` view returns (314 s of N views for N = 10,000 on a loaded Anvil).
        """
        keys = {}
        for e in self.fed.events(names=["MemberAdded"], where={"federationId": federation_id}):
            keys[e.args["node"]] = bytes(e.args["encryptionKey"])
        return keys

    def _bundle_stored(self, digest: bytes) -> bool:
        try:
            return self._bundle_nodes(digest) is not None
        except FogfedError:
            return False

    def _bundle_nodes(self, digest: bytes) -> set[str] | None:
        """The nodes of the bundle ``digest`` names (None without a content store)."""
        if self.store is None:
            return None
        data = b"".join(self.store.cat(cid_of_file_id(digest)))
        return {node for node, _ in Bundle.from_bytes(data).entries}

    def _refresh_done(self, entry: Entry, gas: int) -> RefreshResult:
        """Mark the refresh done, after delivering the key of every member its bundle missed.

        A second TAS process (another home of the same account, or another
        operator) may enroll a node between the building of the bundle and its
        commit; the contract does not refuse that (a join does not move the
        epoch), and the new generation gives the newcomer a leaf with no entry.
        Found from the chain right after the commit (and by any later ``sync``),
        it gets its one key here.
        """
        d, fid = entry.data, entry.data["federation_id"]
        late = self.trees.missing_keys(fid)
        late_gas = self.deliver_keys(fid, self.fed.federation(fid).epoch, late) if late else 0
        step("refresh:late")
        self.journal.update(entry, done=True)
        return RefreshResult(fid, d["generation"] + 1, d["epoch"] + 1, d["members"],
                             d["bundle_bytes"], bytes.fromhex(d["digest"]), gas, tuple(late), late_gas)

    def ensure_room(self, federation_id: int) -> RefreshResult | None:
        """Refresh the federation first when its tree has no free leaf (so a join never fails); else None.

        The new generation has room for at least twice its members, so over a
        federation's growth this costs O(1) extra keys per join (amortised;
        docs/mobility.md gives the measured figure).
        """
        tree = self.trees.get(federation_id)
        if not (tree.full or tree.waiting):
            return None
        if self.store is None:
            raise TasError(f"federation {federation_id}'s member tree is full ({tree.capacity} leaves): a join needs "
                           "a refresh first, and a refresh needs a content store", "give --ipfs (or a store)")
        return self.refresh(federation_id)

    def refresh_policy(self) -> RefreshPolicy:
        """When ``sync`` refreshes a federation (``tas.sqlite``; defaults until set)."""
        rows = self._db.query("SELECT v FROM meta WHERE k = 'refresh_policy'")
        try:
            return RefreshPolicy.from_json(rows[0][0]) if rows else RefreshPolicy()
        except (ValueError, KeyError, TypeError, InputError):
            raise TasStateError(f"the refresh policy in {self.home / 'tas.sqlite'} is damaged",
                                "set it again with `fogfed tas refresh-policy`") from None

    def set_refresh_policy(self, policy: RefreshPolicy) -> None:
        with self._db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES ('refresh_policy', ?)", (policy.to_json(),))

    def refreshes_due(self, federation_id: int | None = None) -> dict[int, str]:
        """Federations (all of this TAS's, or the one given) whose tree the refresh policy says to refresh
        now, with the reason (free view calls)."""
        policy = self.refresh_policy()
        if federation_id is None:
            self.cache.refresh()
        out = {}
        for fid in self.cache.federations() if federation_id is None else [federation_id]:
            reason = policy.reason(self.trees.get(fid))
            if reason is not None:
                out[fid] = reason
        return out

    def refresh_due(self, progress=None) -> list[RefreshResult]:
        """Finish interrupted refreshes, then refresh every federation the policy says is due."""
        if self.store is None:
            raise TasError("refreshes need a content store for their key bundles", "give --ipfs (or a store)")
        out = []
        with self._lock.held():
            for entry in self.journal.unfinished("refresh"):
                out.append(self._finish_refresh(entry, progress))
            done = {r.federation_id for r in out}
            for fid in self.refreshes_due():
                if fid not in done:
                    out.append(self.refresh(fid, progress))
        return out

    def build_bundle(self, federation_id: int, epoch: int, generation: int,
                     members: list[tuple[str, str, str, bytes]], progress=None, *,
                     height: int | None = None) -> Bundle:
        """Keygen + seal for each (node, location, service, X25519 key) at leaves 0..m-1 of ``generation``.

        ``height``: the new generation's (default ``generation_height(len(members))``, what the chain's
        replay gives it when the commit carries exactly these members).
        """
        height = generation_height(len(members)) if height is None else height
        entries = []
        for leaf, (node, location, service, enc_key) in enumerate(members):
            sk = self.issue_key(node_attributes(location, service, federation_id, leaf, generation, height))
            entries.append((node, seal_node_key(self.account, enc_key, sk, chain_id=self.chain_id,
                                                contract=self.contract_address, node=node,
                                                federation_id=federation_id, epoch=epoch)))
            if progress is not None:
                progress(1)
        return Bundle(self.chain_id, self.contract_address, federation_id, epoch, generation, tuple(entries))

    def sync(self) -> list[RekeyResult]:
        """Finish what the chain shows undone: enrollments, removals and moves interrupted (journal,
        each step checked on chain first), then the key of every active member whose latest join has
        no delivery after it. A completed removal needs nothing more: the chain's event log revokes
        the leaf by itself."""
        out = []
        with self._lock.held():
            self.fed.chain.settle(self.account)  # what a killed run left in the mempool is mined first
            if self.store is not None:  # a refresh cut short: finish it before keys are looked for
                for entry in self.journal.unfinished("refresh"):
                    self._finish_refresh(entry)
            for entry in self.journal.unfinished():
                if entry.kind == "enroll":
                    self._finish_enroll(entry)
                elif entry.kind == "remove":
                    self._finish_removal(entry)
                elif entry.kind == "move":
                    try:
                        gas, epoch = self.finish_move(entry)
                    except TasError:  # refused now: closed in the journal, nothing sent
                        continue
                    if "deliverKey" in gas:
                        out.append(RekeyResult(entry.data["to_federation"], epoch, (entry.data["address"],),
                                               gas["deliverKey"]))
                elif entry.kind == batch.KIND:
                    batch.finish_batch(self, entry)
            self.cache.refresh()
            for fid in self.cache.federations():
                if self._bundle_for_another_height(fid):
                    self.refresh(fid)
                nodes = self.trees.missing_keys(fid)
                if nodes:
                    epoch = self.fed.federation(fid).epoch
                    out.append(RekeyResult(fid, epoch, tuple(nodes), self.deliver_keys(fid, epoch, nodes)))
        return out

    def _bundle_for_another_height(self, federation_id: int) -> bool:
        """Whether the current generation's bundle was built for a tree of another height than the chain's.

        A join mined while another process built the bundle can change the new
        generation's height (derived from its member count): every key in the
        bundle is then for another tree, and the generation needs a refresh of its own.
        """
        tree = self.trees.get(federation_id)
        bundled = self.trees.bundle_nodes(tree)
        return bundled is not None and generation_height(len(bundled)) != tree.height

    def reissue(self, node_address: str) -> int:
        """Deliver the current key to one active member again (e.g. it lost its keyring); gas used."""
        node = check_address(node_address, "node address")
        rec = self.enrolled_member(node)
        if rec is None:
            raise TasInputError(f"{node} was not enrolled in a federation of this TAS",
                                "check the address with `fogfed tas status`")
        if not rec["active"]:
            raise TasInputError(f"{node} is not an active member; removed nodes get no keys",
                                "a removed node enrolls again with a fresh request")
        fid = rec["federation_id"]
        with self._lock.held():
            return self.deliver_keys(fid, self.fed.federation(fid).epoch, [node])

    def pending(self) -> list[int]:
        """Federations with an active member whose latest join has no key delivery after it."""
        self.cache.refresh()
        return [fid for fid in self.cache.federations()
                if self.trees.missing_keys(fid) or self._bundle_for_another_height(fid)]

    def status(self) -> dict:
        """Addresses, contract, federations with epochs, members and member trees, members awaiting a key,
        and the journal's unfinished operations (fogfed.tas.inflight: kind, federations, nodes, step
        reached, start time and the commands that finish each)."""
        feds = self.federations()
        trees = {f.federation_id: self.trees.summary(f.federation_id) for f in feds}
        return {
            "tas": self.address, "contract": self.contract_address, "chain_id": self.chain_id,
            "mobility": self._settings.get("mobility"),
            "scheme": self.public_key.scheme,
            "federations": [{"id": f.federation_id, "location": f.location, "service": f.service,
                             "parent": f.parent, "epoch": f.epoch, "members": list(f.members),
                             **trees[f.federation_id]} for f in feds],
            "pending_keys": self.pending(),
            "unfinished": inflight.describe(self.journal.unfinished(), feds,
                                            {fid: t["tree_generation"] for fid, t in trees.items()}),
        }


def _account(account: LocalAccount | str | bytes | None) -> LocalAccount:
    if account is None:
        return Account.from_key(os.urandom(32))
    if isinstance(account, LocalAccount):
        return account
    try:
        return Account.from_key(account)
    except (ValueError, TypeError):
        raise InputError("TAS account must be a private key (32 bytes / 0x hex) or a LocalAccount") from None
