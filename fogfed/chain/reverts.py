"""Turn revert data into :class:`ContractRevert`: the custom error's name, its
arguments and one human sentence.

Revert data reaches web3 in different wrappers depending on the node
(``ContractCustomError.data`` from Anvil/Ganache, raw bytes inside an
eth-tester ``TransactionFailed`` on the embedded chain); :func:`revert_data`
finds it in any of them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from fogfed.chain.artifacts import load_artifact
from fogfed.chain.errors import ContractRevert

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_PANICS = {0x01: "an assertion failed", 0x11: "an arithmetic operation overflowed",
           0x12: "a division by zero", 0x21: "an invalid enum value", 0x32: "an array index out of bounds",
           0x41: "out of memory"}

_NOT_MEMBER_HINT = "only active members of that federation may do this; ask the TAS to enrol the node"
_TAS_HINT = "send it from a TAS operator account (the admin grants the role with setOperator)"

# One sentence per custom error of contracts/fogfed/IFogFedErrors.sol; a test checks all are here.
SENTENCES: dict[str, tuple[Callable[[dict[str, Any]], str], str | None]] = {
    "NotAdmin": (lambda a: f"{a['caller']} is not the admin", "send it from the admin account"),
    "NotPendingAdmin": (lambda a: f"{a['caller']} was not named as the next admin",
                        "the admin must first call beginAdminTransfer for this account"),
    "NotTas": (lambda a: f"{a['caller']} is neither the admin nor a TAS operator", _TAS_HINT),
    "ZeroAddress": (lambda a: "the zero address is not a valid account", None),
    "InvalidAttribute": (lambda a: "a federation attribute is empty or longer than 64 bytes", None),
    "InvalidPublicKey": (lambda a: "the federation public key is empty or longer than 8192 bytes", None),
    "FederationExists": (lambda a: f"federation {a['federationId']} already has these attributes",
                         "look it up with federation_by_attributes instead of creating it again"),
    "UnknownFederation": (lambda a: f"there is no federation {a['federationId']}", "check the federation id"),
    "AlreadyMember": (lambda a: f"{a['node']} is already an active member of federation {a['federationId']}",
                      "remove it first to enrol it elsewhere"),
    "NotActiveMember": (lambda a: f"{a['account']} is not an active member of any federation", _NOT_MEMBER_HINT),
    "NotFederationMember": (lambda a: f"{a['account']} is not a member of federation {a['federationId']}",
                            _NOT_MEMBER_HINT),
    "InvalidEncryptionKey": (lambda a: "the encryption public key is zero", "pass the node's 32-byte X25519 key"),
    "LengthMismatch": (lambda a: "the batch is empty or has a different number of nodes and keys",
                       "pass one key per node, at least one node"),
    "InvalidSealedKey": (lambda a: "the sealed key is empty or longer than 8192 bytes", None),
    "InvalidThreshold": (lambda a: "a false-claim threshold of 0 is not allowed", "use 1 or more"),
    "InvalidFileReference": (lambda a: "the content digest, plaintext hash or encrypted-key reference is zero", None),
    "InvalidPolicy": (lambda a: "the policy is empty or longer than 1024 bytes", None),
    "FileExists": (lambda a: f"file {a['fileId']} is already registered", None),
    "UnknownFile": (lambda a: f"there is no file {a['fileId']}", "check the file id (0x and 64 hex digits, as upload printed it)"),
    "StaleEpoch": (lambda a: f"federation {a['federationId']} is at key epoch {a['current']}, not {a['given']}",
                   "fetch the current epoch and its keys, re-encrypt the file key, then retry"),
    "InvalidExpiry": (lambda a: f"cache expiry {a['expiresAt']} is in the past or after {a['latestAllowed']}",
                      "pick an expiry in the future within the maximum cache lifetime"),
    "InvalidCacheLifetime": (lambda a: "a maximum cache lifetime of 0 s is not allowed", "use 1 second or more"),
    "NoCache": (lambda a: "that holder has no cache announcement for this file", None),
    "CacheStillFresh": (lambda a: "that cache announcement is still fresh and its holder still a member",
                        "only expired announcements or those of former members can be pruned"),
    "InvalidReason": (lambda a: "the damage reason code is unknown", "use 1, 2 or 3"),
    "NotUploader": (lambda a: f"{a['caller']} did not upload file {a['fileId']}", "only the uploader may share a file"),
    "InvalidEndpoint": (lambda a: f"the endpoint URL has {a['length']} bytes; 1 to 256 are allowed", None),
    "InvalidNote": (lambda a: f"the removal note has {a['length']} bytes; at most 256 are allowed", None),
}


def _plain(value: Any, typ: str) -> Any:
    return to_checksum_address(value) if typ == "address" else value


def _shown(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value


@lru_cache(maxsize=None)
def _errors(contract: str = "FogFed") -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    table = {}
    for item in load_artifact(contract)["abi"]:
        if item["type"] == "error":
            types = tuple(i["type"] for i in item["inputs"])
            names = tuple(i["name"] for i in item["inputs"])
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table[selector] = (item["name"], names, types)
    return table


def decode_revert(data: bytes, function: str | None = None, sender: str | None = None, *,
                  contract: str = "FogFed", sentences: dict | None = None) -> ContractRevert:
    """Decode revert ``data`` (custom error, ``Error(string)``, ``Panic`` or nothing).

    ``sender`` names the caller in sentences of errors that do not carry it (it is msg.sender).
    ``contract`` names the artifact whose custom errors are known, ``sentences`` their wording
    (FogFed's by default)."""
    selector, body = data[:4], data[4:]
    errors = _errors(contract)
    try:
        if selector in errors:
            name, names, types = errors[selector]
            args = {n: _plain(v, t) for n, v, t in zip(names, abi_decode(list(types), body), types)}
            sentence, hint = (SENTENCES if sentences is None else sentences).get(
                name, (lambda a: f"the contract refused with {name}", None))
            shown = {"caller": sender or "the sender", **{k: _shown(v) for k, v in args.items()}}
            return ContractRevert(name, args, sentence(shown), function=function, hint=hint)
        if selector == _ERROR_STRING:
            (reason,) = abi_decode(["string"], body)
            return ContractRevert("Error", {"reason": reason}, f"the contract refused: {reason}", function=function)
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], body)
            return ContractRevert("Panic", {"code": code}, f"the contract panicked: {_PANICS.get(code, hex(code))}",
                                  function=function, hint="this is a bug in the contract; please report it")
    except DecodingError:
        pass
    if not data:
        return ContractRevert("Revert", {}, "the transaction reverted without a reason", function=function,
                              hint="the call may have run out of gas or hit a contract without this function")
    return ContractRevert("Revert", {"data": "0x" + data.hex()},
                          f"the transaction reverted with unknown data 0x{data[:4].hex()}", function=function,
                          hint="is the address a FogFed contract of this fogfed version?")


_BYTES_LITERAL = re.compile(r"""(b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*")""")
_HEX = re.compile(r"0x[0-9a-fA-F]*")


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and _HEX.fullmatch(value) and len(value) % 2 == 0:
        return bytes.fromhex(value[2:])
    if isinstance(value, dict):  # {"data": ...} from most nodes, {"result": ...} from Ganache
        for key in ("data", "result"):
            if key in value:
                return _as_bytes(value[key])
    return None


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data carried by ``exc`` or any exception it was raised from, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        data = _as_bytes(getattr(current, "data", None))
        if data is not None:
            return data
        for arg in getattr(current, "args", ()):
            data = _as_bytes(arg)
            if data is not None:
                return data
            if isinstance(arg, str) and arg.startswith("execution reverted: b"):
                match = _BYTES_LITERAL.search(arg)
                if match:
                    return ast.literal_eval(match.group(1))
        current = current.__cause__ or current.__context__
    return None


def is_revert(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) says execution reverted."""
    from web3.exceptions import ContractLogicError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ContractLogicError) or "revert" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False
