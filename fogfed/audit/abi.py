"""Decode raw contract logs with eth_abi and a topic0 -> event map built from the ABI.

web3's per-event ``process_log`` costs far more than the decoding itself, so the
auditor decodes logs directly: one dict lookup and one ``eth_abi.decode`` per log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from fogfed.audit.errors import AuditError
from fogfed.chain.artifacts import load_artifact


@dataclass(frozen=True)
class EventSpec:
    """One event of the ABI: its name and how to decode its topics and data."""

    name: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    data: tuple[tuple[str, str], ...]  # (name, type) in data order
    static_data: bool = False  # every data field is one 32-byte word: decoded without eth_abi


@dataclass(frozen=True)
class Event:
    """A decoded log: where it is on chain, its event name and its arguments."""

    block: int
    log_index: int
    tx: str
    timestamp: int
    name: str
    args: dict[str, Any]


def _type_of(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        raise AuditError(f"event input {entry['name']!r} is a tuple", "the auditor decodes flat events only")
    return entry["type"]


def event_specs(abi: list[dict[str, Any]] | None = None) -> dict[str, EventSpec]:
    """Every event of ``abi`` (default: the shipped FogFed ABI), keyed by 0x-hex topic0."""
    abi = load_artifact()["abi"] if abi is None else abi
    specs: dict[str, EventSpec] = {}
    for item in abi:
        if item.get("type") != "event" or item.get("anonymous"):
            continue
        inputs = item["inputs"]
        types = ",".join(_type_of(i) for i in inputs)
        topic0 = "0x" + keccak(text=f"{item['name']}({types})").hex()
        data = tuple((i["name"], i["type"]) for i in inputs if not i["indexed"])
        specs[topic0] = EventSpec(
            item["name"],
            topic0,
            tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
            data,
            all(_static(kind) for _, kind in data),
        )
    return specs


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


@lru_cache(maxsize=1 << 16)
def checksum(address: str) -> str:
    """EIP-55 form of a 0x-hex address (cached: the same few addresses recur in a history)."""
    lower = address[2:].lower()
    digest = keccak(text=lower).hex()
    return "0x" + "".join(c.upper() if d in "89abcdef" else c for c, d in zip(lower, digest))


def _normal(kind: str, value: Any) -> Any:
    # JSON-friendly values: addresses checksummed, bytes as 0x-hex, strings kept.
    if kind == "address":
        return checksum(value)
    if kind == "string":
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


def _word(kind: str, word: bytes) -> Any:
    """One static ABI value from its 32-byte word, as strictly as eth_abi (padding must be zero)."""
    if kind == "address":
        if any(word[:12]):
            raise ValueError("address with non-zero padding")
        return checksum("0x" + word[12:].hex())
    if kind == "bool":
        if word[:31] != bytes(31) or word[31] > 1:
            raise ValueError("bool not 0 or 1")
        return bool(word[31])
    if kind.startswith("uint"):
        value = int.from_bytes(word, "big")
        if value >> int(kind[4:] or 256):
            raise ValueError(f"{kind} out of range")
        return value
    if kind.startswith("bytes"):
        n = int(kind[5:])
        if any(word[n:]):
            raise ValueError(f"{kind} with non-zero padding")
        return "0x" + word[:n].hex()
    raise ValueError(f"no fast path for {kind}")


_STATIC = re.compile(r"^(address|bool|uint(8|16|24|32|40|48|56|64|72|80|88|96|104|112|120|128|136|144|152|160|168|176"
                     r"|184|192|200|208|216|224|232|240|248|256)?|bytes([1-9]|[12][0-9]|3[0-2]))$")


def _static(kind: str) -> bool:
    return bool(_STATIC.match(kind))


def decode_log(log: dict[str, Any], specs: dict[str, EventSpec], timestamp: int | None = None) -> Event | None:
    """Decode one raw ``eth_getLogs`` entry; None for a topic0 the ABI does not know.

    Raises AuditError when a known event's topics or data do not decode: the
    log does not come from this contract's code.
    """
    topics = [_hex(t) for t in log["topics"]]
    if not topics:
        return None
    spec = specs.get(topics[0].lower())
    if spec is None:
        return None
    block, tx = _int(log["blockNumber"]), _hex(log["transactionHash"])
    if len(topics) != 1 + len(spec.indexed):
        raise AuditError(f"log of {spec.name} in tx {tx} has {len(topics) - 1} indexed topics, "
                         f"expected {len(spec.indexed)}", "check the contract address: it is not FogFed")
    args: dict[str, Any] = {}
    try:
        for (name, kind), topic in zip(spec.indexed, topics[1:]):
            word = bytes.fromhex(topic[2:])
            if len(word) != 32:
                raise ValueError("topic is not 32 bytes")
            # indexed dynamic values are stored hashed: keep the hash
            args[name] = _word(kind, word) if _static(kind) else topic
        data = bytes.fromhex(_hex(log["data"])[2:])
        if spec.static_data:
            if len(data) < 32 * len(spec.data):
                raise ValueError("data too short")
            for i, (name, kind) in enumerate(spec.data):
                args[name] = _word(kind, data[32 * i: 32 * i + 32])
        elif spec.data:
            # Strings as bytes: a contract takes any bytes as a string, and one invalid UTF-8
            # policy must not stop the audit (surrogateescape keeps the exact bytes).
            values = abi_decode(["bytes" if k == "string" else k for _, k in spec.data], data)
            for (name, kind), value in zip(spec.data, values):
                args[name] = _normal(kind, value)
    except (DecodingError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise AuditError(f"log of {spec.name} in tx {tx} does not decode ({exc})",
                         "check the contract address: it is not FogFed") from exc
    ts = timestamp if timestamp is not None else _int(log.get("blockTimestamp", 0) or 0)
    return Event(block, _int(log["logIndex"]), tx, ts, spec.name, args)
