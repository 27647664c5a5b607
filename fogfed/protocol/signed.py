"""Signed JSON requests a node hands to the TAS (enrollment, move): one envelope for both.

A request is a frozen dataclass with ``enc_public_key`` (32 bytes), ``nonce``
(16 bytes) and ``signature`` (65 bytes) among its fields. Its JSON adds
``format`` and ``version``; the node's account signs (EIP-191) a domain string
plus the canonical JSON of every field but the signature.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fogfed.errors import InputError


def canonical(obj: dict) -> bytes:
    """Sorted, compact, ASCII JSON: the bytes a signature covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")


class SignedRequest:
    """Serialisation shared by the signed requests; subclasses set ``_format``, ``_version``, ``_domain``."""

    _format: str
    _version: int
    _domain: bytes

    def _doc(self) -> dict:
        doc = asdict(self)  # type: ignore[call-overload]
        doc.update(format=self._format, version=self._version, enc_public_key=doc["enc_public_key"].hex(),
                   nonce=doc["nonce"].hex(), signature="0x" + doc["signature"].hex())
        return doc

    def signed_bytes(self) -> bytes:
        """What the signature covers: domain | canonical JSON of every field but the signature."""
        doc = self._doc()
        del doc["signature"]
        return self._domain + canonical(doc)

    def to_json(self) -> str:
        """The request as one JSON document (what the node sends to the TAS operator)."""
        return json.dumps(self._doc(), sort_keys=True, indent=1)


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise DuplicateKey(key)
        doc[key] = value
    return doc


def loads_strict(text: str | bytes) -> Any:
    """json.loads that refuses a key given twice in any object (DuplicateKey): a reader of the file
    and the program must never see different values (json.loads keeps the last silently)."""
    return json.loads(text, object_pairs_hook=_no_duplicates)


def load_request(text: str | bytes, *, what: str, fmt: str, version: int, fields: set[str], max_bytes: int,
                 error: type[InputError], hint: str) -> dict[str, Any]:
    """The JSON object of a signed request, checked for size, format, version and exact field set
    (untrusted input; the caller converts and checks the values)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8 text") from None
    if not isinstance(text, str) or len(text) > max_bytes:
        raise error(f"{what} must be JSON text of at most {max_bytes} bytes")
    try:
        doc = loads_strict(text)
    except DuplicateKey as exc:
        raise error(f"{what} names field {exc.args[0]!r} more than once",
                    "a signed request must give each field once; ask the node for a fresh request") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"not a fogfed {what}", hint)
    if doc.get("version") != version:
        raise error(f"{what} version {doc.get('version')!r} is not supported", f"this fogfed reads version {version}")
    if set(doc) != fields:
        raise error(f"{what} fields {sorted(set(doc) ^ fields)} are missing or unknown")
    return doc


def hex_field(value: object, size: int, prefixed: bool = False) -> bytes:
    """Exactly ``size`` bytes from lower- or upper-case hex (``0x`` first when ``prefixed``);
    TypeError/ValueError otherwise."""
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
