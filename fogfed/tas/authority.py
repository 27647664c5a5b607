"""The TAS: one CP-ABE authority for the whole system, federations, enrollment, removal, re-keying.

Paper Algorithm 1 runs once (``init``): the master key and the TAS's Ethereum
key live only in the encrypted keystore ``<home>/tas.json``. Every
federation's FFPK on chain is this one system public key (the deviation from
the paper's per-federation key pair that lets a policy span federations).
A removal advances the federation's epoch on chain; the TAS then issues every
remaining member a key for the new epoch and delivers it sealed on chain.
``<home>/state.json`` (not secret) remembers the deployment, the members the
TAS enrolled, the epoch it last delivered keys for in each federation and the
mobility contract whose backward-secrecy settings apply to joins (if any).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fogfed import abe
from fogfed.chain import Chain, FogFed, deploy
from fogfed.chain.mobility import FogFedMobility
from fogfed.errors import FogfedError, InputError
from fogfed.keys.keystore import KdfParams, MalformedKeystore, load_keystore, save_keystore, write_private_file
from fogfed.protocol.attributes import node_attributes, normalise_location, normalise_service
from fogfed.protocol.enrollment import EnrollmentRejected, EnrollmentRequest
from fogfed.protocol.keydelivery import check_address, seal_node_key
from fogfed.tas.results import EnrollmentResult, FederationInfo, RekeyResult, RemovalResult
from fogfed.tas.secrecy import grant_history, keep_out_of_the_past
from fogfed.tas.verifier import AttributeVerifier, OperatorApproval

KIND = "tas"
KEYSTORE = "tas.json"
STATE = "state.json"
MAX_NONCES = 100_000


class TasError(FogfedError):
    """A TAS operation could not be done."""


class TrustedAuthority:
    """The trusted authority server's state and operations (explicit home directory)."""

    def __init__(self, home: Path, fed: FogFed, account: LocalAccount, pk: abe.PublicKey, msk: abe.MasterKey,
                 state: dict[str, Any]) -> None:
        self.home, self.fed, self.account = Path(home), fed, account
        self.public_key, self._msk, self._state = pk, msk, state
        self._mobility: FogFedMobility | None = None

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
        state = {"format": "fogfed-tas-state", "version": 1, "contract": contract.address,
                 "deploy_block": contract.deploy_block, "chain_id": chain.chain_id, "address": acct.address,
                 "federations": {}, "members": {}, "delivered": {}, "nonces": []}
        home.mkdir(parents=True, exist_ok=True)
        save_keystore(home / KEYSTORE, {"abe_public_key": pk.to_bytes(), "abe_master_key": msk.to_bytes(),
                                        "eth_private_key": bytes(acct.key)}, passphrase, kind=KIND, kdf=kdf)
        tas = cls(home, contract, acct, pk, msk, state)
        tas._save()
        return tas

    @classmethod
    def open(cls, home: Path, chain: Chain, passphrase: str) -> "TrustedAuthority":
        """Open an initialised TAS; WrongPassphrase for a wrong passphrase."""
        home = Path(home)
        if not (home / KEYSTORE).exists():
            raise TasError(f"no TAS in {home}", "run `fogfed tas init` first")
        secrets = load_keystore(home / KEYSTORE, passphrase, kind=KIND)
        try:
            pk = abe.PublicKey.from_bytes(secrets["abe_public_key"])
            msk = abe.MasterKey.from_bytes(secrets["abe_master_key"])
            acct = Account.from_key(secrets["eth_private_key"])
        except (KeyError, InputError, ValueError):
            raise MalformedKeystore(f"keystore {home / KEYSTORE} does not hold a TAS's keys") from None
        state = _load_state(home / STATE)
        if chain.chain_id != state["chain_id"]:
            raise TasError(f"this TAS belongs to chain {state['chain_id']}, the RPC is chain {chain.chain_id}",
                           "connect to the chain the TAS was initialised on")
        contract = FogFed.at(chain, state["contract"], deploy_block=state.get("deploy_block"))
        return cls(home, contract, acct, pk, msk, state)

    def _save(self) -> None:
        write_private_file(self.home / STATE, json.dumps(self._state, indent=1, sort_keys=True).encode())

    @property
    def mobility(self) -> FogFedMobility | None:
        """The mobility contract whose backward-secrecy settings apply to every join, or None."""
        address = self._state.get("mobility")
        if address and (self._mobility is None or self._mobility.address != address):
            self._mobility = FogFedMobility.at(self.fed.chain, address, self.fed)
        return self._mobility if address else None

    def use_mobility(self, mobility: FogFedMobility | str) -> FogFedMobility:
        """Record the mobility contract of this TAS: from now on joins apply its backward-secrecy settings."""
        if not isinstance(mobility, FogFedMobility):
            mobility = FogFedMobility.at(self.fed.chain, check_address(mobility, "mobility contract"), self.fed)
        self.check_mobility(mobility)
        if not self._state.get("mobility"):
            self._state["mobility"] = mobility.address
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
        current = self._state.get("mobility")
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
        tx = self.fed.create_federation(self.account, loc, svc, self.public_key.to_bytes(), parent)
        fid = tx.value
        self._state["federations"][str(fid)] = {"location": loc, "service": svc, "parent": parent}
        self._state["delivered"][str(fid)] = 0
        self._save()
        return FederationInfo(fid, loc, svc, parent, 0, (), tx.tx_hash, tx.gas_used)

    def federations(self) -> list[FederationInfo]:
        """Every federation this TAS created, with its epoch and active members read from chain."""
        out = []
        for fid_s, fed in sorted(self._state["federations"].items(), key=lambda kv: int(kv[0])):
            fid = int(fid_s)
            record = self.fed.federation(fid)
            out.append(FederationInfo(fid, fed["location"], fed["service"], record.parent, record.epoch,
                                      tuple(self.active_members(fid))))
        return out

    def created_federation(self, federation_id: int) -> dict[str, Any] | None:
        """Location, service and parent of a federation this TAS created (a copy), or None."""
        fed = self._state["federations"].get(str(federation_id))
        return dict(fed) if fed is not None else None

    def enrolled_member(self, node_address: str) -> dict[str, Any] | None:
        """This TAS's record of a node it enrolled (federation_id, enc_public_key hex, location, service), or None."""
        rec = self._state["members"].get(node_address)
        return dict(rec) if rec is not None else None

    def active_members(self, federation_id: int) -> list[str]:
        """Members this TAS enrolled that the chain shows active in the federation now."""
        # The TAS is the only account that can enrol or move members, so its own record
        # lists every candidate; the chain says which are still active there.
        out = []
        for addr, rec in sorted(self._state["members"].items()):
            if rec["federation_id"] == federation_id:
                member = self.fed.member(addr)
                if member.active and member.federation_id == federation_id:
                    out.append(addr)
        return out

    # -- enrollment -------------------------------------------------------------------------

    def enroll(self, request: EnrollmentRequest, *, verifier: AttributeVerifier | None = None,
               approve: bool = False, fund_wei: int = 0) -> EnrollmentResult:
        """Paper Algorithms 2 (Join), 7 (add FN) and 3 (FNSK): verify, assign, register, deliver the key.

        The request's signature, chain, contract and freshness are checked
        first; then ``verifier`` (default OperatorApproval(approve)) decides on
        the attributes. The node joins the federation with its (location,
        service), created if none exists, and receives its key sealed on chain.
        ``fund_wei`` > 0 also sends it that much ether for gas (devnets).
        With a mobility contract (:meth:`use_mobility`) the federation's
        backward-secrecy setting applies (fogfed.tas.secrecy); without one the
        node gets the current epoch's key only.
        """
        if not isinstance(request, EnrollmentRequest):
            raise InputError("enroll needs an EnrollmentRequest", "parse it with EnrollmentRequest.from_json")
        request.verify(chain_id=self.chain_id, contract=self.contract_address)
        if self.nonce_used(request.nonce):
            raise EnrollmentRejected("this enrollment request was already used (replay)",
                                     "ask the node for a fresh request")
        # Every check before any state change: an enrolled node's request must not create a
        # federation, bump an epoch or re-key anyone before addMember would revert.
        current = self.fed.member(request.address)
        if current.active:
            raise EnrollmentRejected(f"{request.address} is already an active member of federation "
                                     f"{current.federation_id}; nothing was changed",
                                     "remove it first (fogfed tas remove) or move it")
        verdict = (verifier or OperatorApproval(approved=approve)).verify(request)
        if not verdict.ok:
            raise EnrollmentRejected(f"enrollment of {request.address} refused: {verdict.reason}",
                                     "approve it explicitly or add the node to the allowlist")
        gas: dict[str, int] = {}
        fid = self.fed.federation_by_attributes(request.location, request.service)
        created = fid == 0
        mobility = self.mobility
        newcomer_rekey = None
        if created:
            info = self.create_federation(request.location, request.service)
            fid, gas["createFederation"] = info.federation_id, info.gas_used or 0
        elif mobility is not None:
            newcomer_rekey = keep_out_of_the_past(self, mobility, fid, gas)
        gas["addMember"] = self.fed.add_member(self.account, fid, request.address, request.enc_public_key).gas_used
        self._state["members"][request.address] = {
            "federation_id": fid, "enc_public_key": request.enc_public_key.hex(),
            "location": request.location, "service": request.service}
        self._spend_nonce(request.nonce)
        if fund_wei:
            gas["fund"] = int(self.fed.chain.fund(request.address, fund_wei, self.account)["gasUsed"])
        epoch = self.fed.federation(fid).epoch
        gas["deliverKey"] = self.deliver_keys(fid, epoch, [request.address])
        history = grant_history(self, mobility, request.address, fid, epoch, gas) if mobility else None
        return EnrollmentResult(request.address, fid, created, epoch,
                                tuple(node_attributes(request.location, request.service, fid, epoch)),
                                verdict.reason, gas, newcomer_rekey, history)

    def nonce_used(self, nonce: bytes) -> bool:
        """Whether a signed request (enrollment or move) with this nonce was already accepted."""
        return nonce.hex() in self._state["nonces"]

    def _spend_nonce(self, nonce: bytes) -> None:
        self._state["nonces"] = (self._state["nonces"] + [nonce.hex()])[-MAX_NONCES:]
        self._save()

    def record_move(self, node_address: str, federation_id: int, nonce: bytes) -> None:
        """Note that a node this TAS enrolled now belongs to ``federation_id`` (moved there); spend the nonce."""
        fed = self._state["federations"].get(str(federation_id))
        if node_address not in self._state["members"] or fed is None:
            raise TasError(f"{node_address} or federation {federation_id} is not known to this TAS")
        self._state["members"][node_address].update(federation_id=federation_id, location=fed["location"],
                                                    service=fed["service"])
        self._spend_nonce(nonce)

    def issue_key(self, attributes: list[str]) -> abe.SecretKey:
        """Paper Algorithm 3 (KeyGen): a CP-ABE key for ``attributes`` under the system master key."""
        return abe.keygen(self.public_key, self._msk, attributes)

    def deliver_keys(self, federation_id: int, epoch: int, nodes: list[str]) -> int:
        """Paper Algorithm 3 (FNSK): keygen for each node at ``epoch``, sealed to it, posted on chain; gas used."""
        gas = 0
        for node in nodes:
            rec = self._state["members"].get(node)
            if rec is None:
                raise TasError(f"{node} was not enrolled by this TAS; it gets no keys")
            sk = self.issue_key(node_attributes(rec["location"], rec["service"], federation_id, epoch))
            sealed = seal_node_key(self.account, bytes.fromhex(rec["enc_public_key"]), sk,
                                   chain_id=self.chain_id, contract=self.contract_address,
                                   node=node, federation_id=federation_id, epoch=epoch)
            gas += self.fed.deliver_key(self.account, node, federation_id, epoch, sealed).gas_used
        return gas

    # -- removal and re-keying ---------------------------------------------------------------

    def remove(self, node_address: str, reason: str = "removed by the TAS operator") -> RemovalResult:
        """Paper Algorithm 10 (remove rogue FN) with cryptographic revocation and re-keying of the rest.

        The contract advances the federation's epoch; every remaining member
        then gets a key for the new epoch, so files uploaded from now on are
        encrypted for an epoch attribute the removed node never holds.
        """
        node = check_address(node_address, "node address")
        member = self.fed.member(node)
        if not member.active:
            raise TasError(f"{node} is not an active member", "check the address with `fogfed tas status`")
        fid = member.federation_id
        tx = self.fed.remove_member(self.account, node)
        rekey = self.rekey_to(fid, tx.value)
        return RemovalResult(node, fid, tx.value, reason, rekey,
                             {"removeMember": tx.gas_used, "deliverKey": rekey.gas_used})

    def rekey_to(self, federation_id: int, epoch: int) -> RekeyResult:
        """Deliver keys for ``epoch`` (the federation's current one) to all its active members; remember it."""
        nodes = self.active_members(federation_id)
        gas = self.deliver_keys(federation_id, epoch, nodes)
        self._state["delivered"][str(federation_id)] = epoch
        self._save()
        return RekeyResult(federation_id, epoch, tuple(nodes), gas)

    def rekey(self, federation_id: int) -> RekeyResult:
        """Advance a federation's epoch (``bumpEpoch``) and deliver fresh keys to all its active members."""
        tx = self.fed.bump_epoch(self.account, federation_id)
        result = self.rekey_to(federation_id, tx.value)
        return RekeyResult(result.federation_id, result.epoch, result.nodes, result.gas_used + tx.gas_used)

    def sync(self) -> list[RekeyResult]:
        """Deliver keys for every federation whose epoch moved past the keys delivered (automatic removals)."""
        out = []
        for fid_s in sorted(self._state["federations"], key=int):
            fid = int(fid_s)
            epoch = self.fed.federation(fid).epoch
            if epoch != self._state["delivered"].get(fid_s, 0):
                out.append(self.rekey_to(fid, epoch))
        return out

    def reissue(self, node_address: str) -> int:
        """Deliver the current key to one active member again (e.g. it lost its keyring); gas used."""
        node = check_address(node_address, "node address")
        if node not in self._state["members"]:
            raise TasError(f"{node} was not enrolled by this TAS")
        member = self.fed.member(node)
        if not member.active:
            raise TasError(f"{node} is not an active member; removed nodes get no keys")
        return self.deliver_keys(member.federation_id, self.fed.federation(member.federation_id).epoch, [node])

    def status(self) -> dict:
        """Addresses, contract, federations with epochs and members, federations awaiting re-keying."""
        feds = self.federations()
        return {
            "tas": self.address, "contract": self.contract_address, "chain_id": self.chain_id,
            "mobility": self._state.get("mobility"),
            "scheme": self.public_key.scheme,
            "federations": [{"id": f.federation_id, "location": f.location, "service": f.service,
                             "parent": f.parent, "epoch": f.epoch, "members": list(f.members)} for f in feds],
            "pending_rekey": [f.federation_id for f in feds
                              if f.epoch != self._state["delivered"].get(str(f.federation_id), 0)],
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


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise TasError(f"TAS state {path} is missing", "restore it from a backup") from None
    except (OSError, ValueError):
        raise TasError(f"TAS state {path} is unreadable or not JSON", "restore it from a backup") from None
    need = {"format", "version", "contract", "chain_id", "federations", "members", "delivered", "nonces"}
    if not isinstance(state, dict) or state.get("format") != "fogfed-tas-state" or not need <= set(state):
        raise TasError(f"TAS state {path} is not a fogfed TAS state file", "restore it from a backup")
    return state
