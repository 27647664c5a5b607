"""What a moving node and the TAS agree on: the signed move request.

A ``MoveRequest`` (versioned JSON, EIP-191 signed by the node's account like
the enrollment request) names the destination federation and repeats the
node's X25519 key: the TAS passes that key to the contract, which accepts the
handover only if it equals the key on chain.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from eth_utils import is_hex_address, to_checksum_address

from fogfed.errors import InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.keys.signing import recover_signer, sign
from fogfed.protocol.enrollment import CLOCK_SKEW
from fogfed.protocol.signed import SignedRequest, hex_field, load_request

FORMAT = "fogfed-move"
VERSION = 1
MAX_JSON_BYTES = 4096
MAX_AGE = 3600  # a move is done at once, not approved later
_DOMAIN = b"fogfed move request v1\n"
_FIELDS = {"format", "version", "address", "enc_public_key", "to_federation", "chain_id", "contract",
           "mobility", "nonce", "timestamp", "signature"}


class MoveRejected(InputError):
    """A move request is malformed, forged, stale, replayed or for another deployment."""


@dataclass(frozen=True)
class MoveRequest(SignedRequest):
    """A node's signed request to be handed over to federation ``to_federation``."""

    _format, _version, _domain = FORMAT, VERSION, _DOMAIN

    address: str
    enc_public_key: bytes
    to_federation: int
    chain_id: int
    contract: str
    mobility: str
    nonce: bytes
    timestamp: int
    signature: bytes

    @classmethod
    def create(cls, identity: NodeIdentity, to_federation: int, *, chain_id: int, contract: str,
               mobility: str, now: float | None = None) -> "MoveRequest":
        """A fresh request signed by ``identity``'s account."""
        unsigned = cls(identity.address, identity.enc_public_key, to_federation, chain_id,
                       _address(contract, "contract"), _address(mobility, "mobility contract"), os.urandom(16),
                       int(time.time() if now is None else now), b"")
        unsigned._check_fields()
        return cls(**{**unsigned.__dict__, "signature": sign(identity.account, unsigned.signed_bytes())})

    @classmethod
    def from_json(cls, text: str | bytes) -> "MoveRequest":
        """Parse and type-check a request (untrusted input); ``verify`` checks the signature."""
        doc = load_request(text, what="move request", fmt=FORMAT, version=VERSION, fields=_FIELDS,
                           max_bytes=MAX_JSON_BYTES, error=MoveRejected, hint="create one with `fogfed node move`")
        try:
            req = cls(doc["address"], hex_field(doc["enc_public_key"], 32), doc["to_federation"], doc["chain_id"],
                      doc["contract"], doc["mobility"], hex_field(doc["nonce"], 16), doc["timestamp"],
                      hex_field(doc["signature"], 65, prefixed=True))
        except (TypeError, ValueError):
            raise MoveRejected("move request has a field of the wrong type or size") from None
        req._check_fields()
        return req

    def _check_fields(self) -> None:
        for what, value in (("address", self.address), ("contract", self.contract), ("mobility", self.mobility)):
            if not isinstance(value, str) or not is_hex_address(value) or to_checksum_address(value) != value:
                raise MoveRejected(f"move request {what} {value!r:.60} is not a checksummed address")
        if not isinstance(self.enc_public_key, bytes) or len(self.enc_public_key) != 32 \
                or self.enc_public_key == bytes(32):
            raise MoveRejected("move request encryption key must be 32 nonzero bytes")
        for name, v, hi in (("to_federation", self.to_federation, 2**32), ("chain_id", self.chain_id, 2**64),
                            ("timestamp", self.timestamp, 2**40)):
            if type(v) is not int or not 0 < v < hi:
                raise MoveRejected(f"move request {name} {v!r:.40} is out of range")

    def verify(self, *, chain_id: int, contract: str, mobility: str, now: float | None = None,
               max_age: int = MAX_AGE) -> None:
        """Raise MoveRejected unless signed by ``address``, for this deployment, and fresh."""
        self._check_fields()
        if recover_signer(self.signed_bytes(), self.signature) != self.address:
            raise MoveRejected(f"move request is not signed by {self.address} (forged or altered)")
        if (self.chain_id, self.contract, self.mobility) != (chain_id, _address(contract, "contract"),
                                                              _address(mobility, "mobility contract")):
            raise MoveRejected(f"move request is for chain {self.chain_id} contracts {self.contract}/{self.mobility}, "
                               f"not this deployment", "create the request against this deployment")
        t = time.time() if now is None else now
        if self.timestamp > t + CLOCK_SKEW or t - self.timestamp > max_age:
            raise MoveRejected(f"move request timestamp {self.timestamp} is not within {max_age} s of now ({int(t)})",
                               "create a fresh request")


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise MoveRejected(f"{what} {value!r:.60} is not an address")
    return to_checksum_address(value)


