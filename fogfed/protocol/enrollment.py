"""The enrollment request a node hands to the TAS (paper Algorithm 2, Join).

Versioned JSON; the node's Ethereum account signs (EIP-191) the canonical
bytes of every other field, so the TAS knows the request comes from the
account that will become the member, for this chain and contract, recently.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from eth_utils import is_hex_address, to_checksum_address

from fogfed.errors import InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.keys.signing import recover_signer, sign
from fogfed.protocol.attributes import normalise_location, normalise_service

FORMAT = "fogfed-enrollment"
VERSION = 1
MAX_JSON_BYTES = 4096
DEFAULT_MAX_AGE = 24 * 3600  # an operator may take a day to approve
CLOCK_SKEW = 300
_DOMAIN = b"fogfed enrollment request v1\n"
_FIELDS = {"format", "version", "address", "enc_public_key", "location", "service", "chain_id",
           "contract", "nonce", "timestamp", "signature"}


class EnrollmentRejected(InputError):
    """An enrollment request is malformed, forged, stale, for another chain, or refused."""


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True)
class EnrollmentRequest:
    """A node's signed request to join the federation matching (location, service)."""

    address: str
    enc_public_key: bytes
    location: str
    service: str
    chain_id: int
    contract: str
    nonce: bytes
    timestamp: int
    signature: bytes

    @classmethod
    def create(cls, identity: NodeIdentity, location: str, service: str, *, chain_id: int,
               contract: str, now: float | None = None) -> "EnrollmentRequest":
        """A fresh request signed by ``identity``'s account."""
        unsigned = cls(identity.address, identity.enc_public_key, normalise_location(location),
                       normalise_service(service), chain_id, to_checksum_address(contract), os.urandom(16),
                       int(time.time() if now is None else now), b"")
        unsigned._check_fields()
        return cls(**{**unsigned.__dict__, "signature": sign(identity.account, unsigned.signed_bytes())})

    def _doc(self) -> dict:
        doc = asdict(self)
        doc.update(format=FORMAT, version=VERSION, enc_public_key=self.enc_public_key.hex(),
                   nonce=self.nonce.hex(), signature="0x" + self.signature.hex())
        return doc

    def signed_bytes(self) -> bytes:
        """What the signature covers: domain | canonical JSON of every field but the signature."""
        doc = self._doc()
        del doc["signature"]
        return _DOMAIN + _canonical(doc)

    def to_json(self) -> str:
        """The request as one JSON document (what the node sends to the TAS operator)."""
        return json.dumps(self._doc(), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> "EnrollmentRequest":
        """Parse and type-check a request (untrusted input); the signature is checked by ``verify``."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise EnrollmentRejected("enrollment request is not UTF-8 text") from None
        if not isinstance(text, str) or len(text) > MAX_JSON_BYTES:
            raise EnrollmentRejected(f"enrollment request must be JSON text of at most {MAX_JSON_BYTES} bytes")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EnrollmentRejected(f"enrollment request is not valid JSON ({exc.msg} at {exc.pos})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise EnrollmentRejected("not a fogfed enrollment request", "create one with `fogfed node enroll-request`")
        if doc.get("version") != VERSION:
            raise EnrollmentRejected(f"enrollment request version {doc.get('version')!r} is not supported",
                                     f"this fogfed reads version {VERSION}")
        if set(doc) != _FIELDS:
            raise EnrollmentRejected(f"enrollment request fields {sorted(set(doc) ^ _FIELDS)} are missing or unknown")
        try:
            req = cls(doc["address"], _hex(doc["enc_public_key"], 32), doc["location"], doc["service"],
                      doc["chain_id"], doc["contract"], _hex(doc["nonce"], 16), doc["timestamp"],
                      _hex(doc["signature"], 65, prefixed=True))
        except (TypeError, ValueError):
            raise EnrollmentRejected("enrollment request has a field of the wrong type or size") from None
        req._check_fields()
        return req

    def _check_fields(self) -> None:
        if not isinstance(self.address, str) or not is_hex_address(self.address) \
                or to_checksum_address(self.address) != self.address:
            raise EnrollmentRejected(f"enrollment address {self.address!r:.60} is not a checksummed address")
        if not isinstance(self.contract, str) or not is_hex_address(self.contract):
            raise EnrollmentRejected(f"enrollment contract {self.contract!r:.60} is not an address")
        if self.enc_public_key == bytes(32):
            raise EnrollmentRejected("enrollment encryption key is zero")
        for name, v, hi in (("chain_id", self.chain_id, 2**64), ("timestamp", self.timestamp, 2**40)):
            if type(v) is not int or not 0 < v < hi:
                raise EnrollmentRejected(f"enrollment {name} {v!r:.40} is out of range")
        try:
            loc, svc = normalise_location(self.location), normalise_service(self.service)
        except InputError as exc:
            raise EnrollmentRejected(f"enrollment request: {exc.message}", exc.hint) from None
        if (loc, svc) != (self.location, self.service):
            raise EnrollmentRejected("enrollment attributes are not in normal form (lower case, trimmed)")

    def verify(self, *, chain_id: int, contract: str, now: float | None = None,
               max_age: int = DEFAULT_MAX_AGE) -> None:
        """Raise EnrollmentRejected unless signed by ``address``, for this chain/contract, and fresh."""
        self._check_fields()
        if recover_signer(self.signed_bytes(), self.signature) != self.address:
            raise EnrollmentRejected(f"enrollment request is not signed by {self.address} (forged or altered)")
        if self.chain_id != chain_id or to_checksum_address(self.contract) != to_checksum_address(contract):
            raise EnrollmentRejected(
                f"enrollment request is for chain {self.chain_id} contract {self.contract}, "
                f"not chain {chain_id} contract {to_checksum_address(contract)}",
                "create the request against this deployment")
        t = time.time() if now is None else now
        if self.timestamp > t + CLOCK_SKEW or t - self.timestamp > max_age:
            raise EnrollmentRejected(f"enrollment request timestamp {self.timestamp} is not within "
                                     f"{max_age} s of now ({int(t)})", "ask the node for a fresh request")


def _hex(value: object, size: int, prefixed: bool = False) -> bytes:
    if not isinstance(value, str):
        raise TypeError
    if prefixed:
        if not value.startswith("0x"):
            raise ValueError
        value = value[2:]
    raw = bytes.fromhex(value)
    if len(raw) != size or raw.hex() != value.lower():
        raise ValueError
    return raw
