"""The enrollment request a node hands to the TAS (paper Algorithm 2, Join).

Versioned JSON; the node's Ethereum account signs (EIP-191) the canonical
bytes of every other field, so the TAS knows the request comes from the
account that will become the member, for this chain and contract, recently.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from eth_utils import is_hex_address, to_checksum_address

from fogfed.errors import InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.keys.signing import recover_signer, sign
from fogfed.protocol.attributes import normalise_location, normalise_service
from fogfed.protocol.signed import SignedRequest, hex_field, load_request

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


@dataclass(frozen=True)
class EnrollmentRequest(SignedRequest):
    """A node's signed request to join the federation matching (location, service)."""

    _format, _version, _domain = FORMAT, VERSION, _DOMAIN

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

    @classmethod
    def from_json(cls, text: str | bytes) -> "EnrollmentRequest":
        """Parse and type-check a request (untrusted input); the signature is checked by ``verify``."""
        doc = load_request(text, what="enrollment request", fmt=FORMAT, version=VERSION, fields=_FIELDS,
                           max_bytes=MAX_JSON_BYTES, error=EnrollmentRejected,
                           hint="create one with `fogfed node request`")
        try:
            req = cls(doc["address"], hex_field(doc["enc_public_key"], 32), doc["location"], doc["service"],
                      doc["chain_id"], doc["contract"], hex_field(doc["nonce"], 16), doc["timestamp"],
                      hex_field(doc["signature"], 65, prefixed=True))
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

