"""The peer protocol's signed request: canonical message, headers, strict parsing, evidence.

A request for a cached blob is ``GET /v1/blob/<64 hex>`` with six headers.
The requester signs (EIP-191 personal_sign) a canonical text that binds the
chain, the contract, the serving peer (audience), the requester, method,
path, file id, a random 16-byte nonce and a timestamp: so a signature cannot
be replayed on another chain, deployment, peer, file or moment. The same
text plus the signature is the *evidence* a peer files on chain when a
non-member asks for a file.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from fogfed.errors import InputError
from fogfed.keys.signing import recover_signer, sign

VERSION_LINE = "fogfed peer request v1"
BLOB_PREFIX = "/v1/blob/"
H_REQUESTER = "X-Fogfed-Requester"
H_AUDIENCE = "X-Fogfed-Audience"
H_FILE = "X-Fogfed-File"
H_NONCE = "X-Fogfed-Nonce"
H_TIMESTAMP = "X-Fogfed-Timestamp"
H_SIGNATURE = "X-Fogfed-Signature"

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_FILE_ID = re.compile(r"0x[0-9a-f]{64}")
_NONCE = re.compile(r"[0-9a-f]{32}")
_TIMESTAMP = re.compile(r"[1-9][0-9]{0,11}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")
_PATH = re.compile(re.escape(BLOB_PREFIX) + r"([0-9a-f]{64})")
_HEADER_RULES = {
    H_REQUESTER: (_ADDRESS, "an 0x-prefixed 20-byte hex address"),
    H_AUDIENCE: (_ADDRESS, "an 0x-prefixed 20-byte hex address"),
    H_FILE: (_FILE_ID, "0x and 64 lowercase hex digits"),
    H_NONCE: (_NONCE, "32 lowercase hex digits (16 random bytes)"),
    H_TIMESTAMP: (_TIMESTAMP, "a positive integer of Unix seconds"),
    H_SIGNATURE: (_SIGNATURE, "0x and 130 lowercase hex digits (65 bytes)"),
}


class MalformedRequest(InputError):
    """A peer request (or evidence) is not well formed; the message names the part."""


@dataclass(frozen=True)
class PeerRequest:
    """One signed request for a cached blob."""

    chain_id: int
    contract: str
    audience: str
    requester: str
    file_id: bytes
    nonce: bytes
    timestamp: int
    signature: bytes = b""
    method: str = "GET"

    @property
    def path(self) -> str:
        return blob_path(self.file_id)

    def message(self) -> bytes:
        """The canonical text that the requester signs."""
        return (f"{VERSION_LINE}\nchain-id: {self.chain_id}\ncontract: {self.contract}\n"
                f"audience: {self.audience}\nrequester: {self.requester}\nmethod: {self.method}\n"
                f"path: {self.path}\nfile-id: 0x{self.file_id.hex()}\nnonce: {self.nonce.hex()}\n"
                f"timestamp: {self.timestamp}\n").encode("ascii")

    def headers(self) -> dict[str, str]:
        """The HTTP headers that carry this request."""
        return {H_REQUESTER: self.requester, H_AUDIENCE: self.audience,
                H_FILE: "0x" + self.file_id.hex(), H_NONCE: self.nonce.hex(),
                H_TIMESTAMP: str(self.timestamp), H_SIGNATURE: "0x" + self.signature.hex()}

    def signer(self) -> str | None:
        """The address that produced ``signature`` over ``message()``, or None."""
        return recover_signer(self.message(), self.signature)

    def evidence(self) -> bytes:
        """Self-contained proof that ``requester`` made this request (message + signature)."""
        return self.message() + f"signature: 0x{self.signature.hex()}\n".encode("ascii")


def blob_path(file_id: bytes) -> str:
    """The URL path of the blob endpoint for ``file_id``."""
    return BLOB_PREFIX + file_id.hex()


def check_contract_address(contract_address: str) -> str:
    """The checksummed form of ``contract_address``; InputError if it is not an address."""
    if not isinstance(contract_address, str) or not _ADDRESS.fullmatch(contract_address):
        raise InputError(f"contract address {contract_address!r} is not an Ethereum address")
    return to_checksum_address(contract_address)


def check_chain_id(chain_id: int) -> int:
    """``chain_id`` if it is a positive integer, else InputError."""
    if type(chain_id) is not int or chain_id <= 0:
        raise InputError(f"chain id must be a positive integer, got {chain_id!r}")
    return chain_id


def sign_request(account: LocalAccount, *, chain_id: int, contract_address: str, audience: str,
                 file_id: bytes, timestamp: int | None = None, nonce: bytes | None = None) -> PeerRequest:
    """A fresh request for ``file_id`` from peer ``audience``, signed by ``account``."""
    if not isinstance(file_id, (bytes, bytearray)) or len(file_id) != 32:
        raise InputError("file id must be 32 bytes")
    if not isinstance(audience, str) or not _ADDRESS.fullmatch(audience):
        raise InputError(f"peer address {audience!r} is not an Ethereum address")
    request = PeerRequest(
        chain_id=check_chain_id(chain_id), contract=check_contract_address(contract_address),
        audience=to_checksum_address(audience), requester=account.address, file_id=bytes(file_id),
        nonce=os.urandom(16) if nonce is None else nonce,
        timestamp=int(time.time()) if timestamp is None else timestamp)
    return replace(request, signature=sign(account, request.message()))


def parse_request(method: str, path: str, headers: Mapping[str, list[str]], *, chain_id: int,
                  contract_address: str) -> PeerRequest:
    """Validate an incoming request's method, path and headers (all untrusted).

    ``headers`` maps each header name to every value received for it, so a
    duplicated header can be refused rather than silently picking one.
    Raises MalformedRequest naming the offending part. Does not check the
    signature, audience or freshness: the server does that next.
    """
    if method != "GET":
        raise MalformedRequest(f"method {method!r} is not allowed; use GET")
    match = _PATH.fullmatch(path)
    if not match:
        raise MalformedRequest(f"path must be {BLOB_PREFIX}<64 lowercase hex digits>")
    values = {}
    for name, (pattern, what) in _HEADER_RULES.items():
        got = headers.get(name, [])
        if len(got) != 1:
            raise MalformedRequest(f"header {name} must appear exactly once (found {len(got)})")
        if not pattern.fullmatch(got[0]):
            raise MalformedRequest(f"header {name} must be {what}")
        values[name] = got[0]
    file_id = bytes.fromhex(match.group(1))
    if values[H_FILE] != "0x" + match.group(1):
        raise MalformedRequest(f"header {H_FILE} does not match the file id in the path")
    return PeerRequest(
        chain_id=check_chain_id(chain_id), contract=check_contract_address(contract_address),
        audience=to_checksum_address(values[H_AUDIENCE]),
        requester=to_checksum_address(values[H_REQUESTER]), file_id=file_id,
        nonce=bytes.fromhex(values[H_NONCE]), timestamp=int(values[H_TIMESTAMP]),
        signature=bytes.fromhex(values[H_SIGNATURE][2:]))


def parse_evidence(evidence: bytes) -> tuple[PeerRequest, str]:
    """Read back a request from its evidence bytes; returns it and the address that signed it.

    Raises MalformedRequest unless the bytes are exactly a canonical request
    with a valid signature by its own requester.
    """
    try:
        lines = evidence.decode("ascii").split("\n")
    except (UnicodeDecodeError, AttributeError):
        raise MalformedRequest("evidence is not ASCII text") from None
    keys = ["chain-id", "contract", "audience", "requester", "method", "path", "file-id", "nonce",
            "timestamp", "signature"]
    if len(lines) != len(keys) + 2 or lines[0] != VERSION_LINE or lines[-1] != "":
        raise MalformedRequest("evidence does not have the layout of a v1 peer request")
    fields = {}
    for key, line in zip(keys, lines[1:-1]):
        if not line.startswith(key + ": "):
            raise MalformedRequest(f"evidence line {line[:40]!r} should start with {key!r}")
        fields[key] = line[len(key) + 2:]
    try:
        request = parse_request(fields["method"], fields["path"], {
            H_REQUESTER: [fields["requester"]], H_AUDIENCE: [fields["audience"]],
            H_FILE: [fields["file-id"]], H_NONCE: [fields["nonce"]],
            H_TIMESTAMP: [fields["timestamp"]], H_SIGNATURE: [fields["signature"]],
        }, chain_id=int(fields["chain-id"]) if fields["chain-id"].isdigit() else -1,
            contract_address=fields["contract"])
    except InputError as exc:
        raise MalformedRequest(f"evidence: {exc.message}") from None
    signer = request.signer()
    if request.evidence() != evidence or signer != request.requester:
        raise MalformedRequest("evidence is not canonical or not signed by its requester")
    return request, signer
