"""A typed wrapper of the FogFedMobility contract (handover verified by on-chain records).

Same style as :class:`fogfed.chain.FogFed`: transactions take the signing
account first and return :class:`TxResult` (with FogFed's and this contract's
events decoded); reverts raise :class:`ContractRevert` with the custom error
of either contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from fogfed.chain import args as a
from fogfed.chain.artifacts import load_artifact
from fogfed.chain.connection import Chain, checksum
from fogfed.chain.contract import FogFed
from fogfed.chain.errors import ChainError, ContractRevert, NotFogFedContract
from fogfed.chain.events import decode_log, decode_receipt, topics_for
from fogfed.chain.reverts import decode_revert
from fogfed.chain.types import DecodedEvent, TxResult

NAME = "FogFedMobility"
#: checkHandover status codes (the contract's constants) and what each means.
HANDOVER_STATUS = {
    0: "ok", 1: "no record on chain (never enrolled)", 2: "the record is revoked (removed member)",
    3: "the presented encryption key is not the one on chain", 4: "no common ancestor federation in reach",
    5: "the destination federation does not exist", 6: "the node is already a member there",
    7: "false claims are counted against the node",
}


@dataclass(frozen=True)
class Handover:
    """Answer of checkHandover: ``ok`` with the level the record was found at, or the refusal."""

    status: int
    level: int
    from_federation: int

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def reason(self) -> str:
        return HANDOVER_STATUS.get(self.status, f"status {self.status}")


def deploy_mobility(chain: Chain, deployer: LocalAccount, fed: FogFed, *, grant: bool = True) -> "FogFedMobility":
    """Deploy FogFedMobility next to ``fed``; ``grant`` also makes it a FogFed operator (deployer = admin)."""
    artifact = load_artifact(NAME)
    contract = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = contract.constructor(fed.address).data_in_transaction
    receipt = chain.send(deployer, to=None, data=bytes.fromhex(data.removeprefix("0x")), function="deploy mobility")
    mob = FogFedMobility(chain, receipt["contractAddress"], fed, deploy_block=int(receipt["blockNumber"]))
    mob.deploy_receipt = receipt
    if grant:
        fed.set_operator(deployer, mob.address, True)
    return mob


class FogFedMobility:
    """The FogFedMobility contract at ``address`` serving ``fed`` (use :meth:`at` or :func:`deploy_mobility`)."""

    def __init__(self, chain: Chain, address: str, fed: FogFed, *, deploy_block: int = 0) -> None:
        self.chain, self.fed, self.deploy_block = chain, fed, deploy_block
        self.address = checksum(address, "mobility contract address")
        self.deploy_receipt: Any = None
        self._contract = chain.w3.eth.contract(address=self.address, abi=load_artifact(NAME)["abi"])

    def __repr__(self) -> str:
        return f"FogFedMobility({self.address} for {self.fed.address})"

    @classmethod
    def at(cls, chain: Chain, address: str, fed: FogFed, *, deploy_block: int = 0) -> "FogFedMobility":
        """The mobility contract at ``address``; NotFogFedContract unless its code is ours and serves ``fed``."""
        address = checksum(address, "mobility contract address")
        code = bytes(chain.w3.eth.get_code(address))
        mob = cls(chain, address, fed, deploy_block=deploy_block)
        # The runtime code embeds the immutable FogFed address, so compare after reading it.
        try:
            served = mob._call("fogfed") if code else None
        except ChainError:
            served = None
        if not code or not served or not is_mobility_code(code, served):
            raise NotFogFedContract(f"the contract at {address} is not this fogfed's FogFedMobility",
                                    "deploy it with fogfed.chain.mobility.deploy_mobility (or `fogfed tas mobility-deploy`)")
        if served != fed.address:
            raise NotFogFedContract(f"the mobility contract at {address} serves FogFed {served}, not {fed.address}",
                                    "use the mobility contract deployed for this FogFed")
        return mob

    # -- plumbing -------------------------------------------------------------------------

    def _transact(self, account: LocalAccount, function: str, *fn_args: Any) -> TxResult:
        data = self._contract.encode_abi(function, args=list(fn_args))
        try:
            receipt = self.chain.send(account, to=self.address, data=bytes.fromhex(data[2:]), function=function)
        except ContractRevert as exc:
            raise _redecode(exc, function) from None
        tx_hash = receipt["transactionHash"]
        return TxResult(tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex(), receipt,
                        int(receipt["gasUsed"]), int(receipt["blockNumber"]), self._events(receipt))

    def _events(self, receipt: Any) -> list[DecodedEvent]:
        out = decode_receipt(receipt, self.fed.address) + decode_receipt(receipt, self.address, NAME)
        return sorted(out, key=lambda e: e.log_index)

    def _call(self, function: str, *fn_args: Any) -> Any:
        fn = self._contract.get_function_by_name(function)(*fn_args)
        try:
            raw = self.chain.call({"to": self.address, "data": fn._encode_transaction_data()}, function)
        except ContractRevert as exc:
            raise _redecode(exc, function) from None
        types = [o["type"] for o in fn.abi["outputs"]]
        try:
            out = [to_checksum_address(v) if t == "address" else v for v, t in zip(abi_decode(types, raw), types)]
        except (DecodingError, ValueError) as exc:
            raise NotFogFedContract(f"{function} returned malformed data from {self.address}",
                                    "is this a FogFedMobility contract?") from exc
        return out[0] if len(out) == 1 else tuple(out)

    # -- handover -------------------------------------------------------------------------

    def check_handover(self, node_address: str, to_federation: int, expected_key: bytes) -> Handover:
        """The contract's handover check (a free view): record found in the destination or an ancestor?"""
        status, level, from_fid = self._call("checkHandover", checksum(node_address, "node address"),
                                             a.uint(to_federation, 32, "destination federation id"),
                                             a.bytes_n(expected_key, 32, "encryption public key"))
        return Handover(int(status), int(level), int(from_fid))

    def move_member(self, tas: LocalAccount, node_address: str, to_federation: int, expected_key: bytes) -> TxResult:
        """Hand a verified node over (FogFed removeMember + addMember, same key). ``.value``: MemberMoved args."""
        result = self._transact(tas, "moveMember", checksum(node_address, "node address"),
                                a.uint(to_federation, 32, "destination federation id"),
                                a.bytes_n(expected_key, 32, "encryption public key", nonzero=True))
        moved = result.event("MemberMoved").args
        return TxResult(result.tx_hash, result.receipt, result.gas_used, result.block_number, result.events, moved)

    # -- events ---------------------------------------------------------------------------

    def events(self, names: list[str] | None = None, *, node: str | None = None,
               from_block: int | None = None) -> list[DecodedEvent]:
        """This contract's events in block order, optionally only some names and one node."""
        wanted = topics_for(names or None, NAME)
        topics: list[Any] = [wanted]
        if node is not None:
            topics.append("0x" + bytes(12).hex() + checksum(node, "node address")[2:].lower())
        start = self.deploy_block if from_block is None else from_block
        end = self.chain.final_block()  # nothing a reorganisation could take back (fogfed.chain.finality)
        if end < start:
            return []
        try:
            logs = self.chain.w3.eth.get_logs({"address": self.address, "topics": topics,
                                               "fromBlock": start, "toBlock": end})
        except Exception as exc:  # noqa: BLE001 - any provider failure
            raise ChainError(f"cannot read FogFedMobility events: {exc}") from None
        out = [e for e in (decode_log(log, NAME) for log in logs) if e is not None]
        return sorted(out, key=lambda e: (e.block_number, e.log_index))


# -- ABI tables -----------------------------------------------------------------------------

def is_mobility_code(code: bytes, fed_address: str) -> bool:
    """Whether ``code`` is the artifact's runtime code with the immutable FogFed address filled in.

    The artifact has zeros where solc places immutables; the address word cannot occur by chance."""
    word = bytes(12) + bytes.fromhex(fed_address[2:])
    expected = bytes.fromhex(load_artifact(NAME)["deployedBytecode"].removeprefix("0x"))
    return word in code and code.replace(word, bytes(32)) == expected


_SENTENCES = {
    "NotTas": (lambda x: f"{x['caller']} is not a TAS operator of FogFed",
               "send it from a TAS operator account"),
    "ZeroAddress": (lambda x: "the FogFed address is zero", None),
    "HandoverRefused": (lambda x: f"handover of {x['node']} to federation {x['toFederation']} refused: "
                                  f"{HANDOVER_STATUS.get(x['status'], x['status'])}",
                        "the node must create a fresh identity (fogfed node init) and enroll from scratch"),
}


def _redecode(exc: ContractRevert, function: str) -> ContractRevert:
    """FogFed's decoder leaves this contract's errors as unknown data; decode them here."""
    if exc.error_name == "NotTas" and function in {"moveMember"}:
        return ContractRevert("NotTas", {}, "FogFed refused the mobility contract: it is not a FogFed operator",
                              function=function, hint="the FogFed admin must grant it: set_operator(mobility, True)")
    raw = exc.error_args.get("data") if exc.error_name == "Revert" else None
    if not raw:
        return exc
    decoded = decode_revert(bytes.fromhex(raw.removeprefix("0x")), function, contract=NAME, sentences=_SENTENCES)
    return exc if decoded.error_name == "Revert" else decoded


__all__ = ["FogFedMobility", "Handover", "HANDOVER_STATUS", "deploy_mobility"]
