"""Decode raw contract logs with eth_abi and a topic0 -> event map built from the ABI.

web3's per-event ``process_log`` costs far more than the decoding itself, so the
auditor decodes logs directly: one dict lookup and one ``eth_abi.decode`` per log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from fogfed.audit.errors import AuditError
from fogfed.chain.artifacts import load_artifact


@dataclass(frozen=True)
class EventSpec:
    """One event of the ABI: its name and how to decode its topics and data."""

    name: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    data: tuple[tuple[str, str], ...]  # (name, type) in data order

    @property
    def signature(self) -> str:
        types = ",".join(t for _, t in self._all())
        return f"{self.name}({types})"

    def _all(self) -> tuple[tuple[str, str], ...]:
        return self.indexed + self.data


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
        specs[topic0] = EventSpec(
            item["name"],
            topic0,
            tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
            tuple((i["name"], i["type"]) for i in inputs if not i["indexed"]),
        )
    return specs


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


def _normal(kind: str, value: Any) -> Any:
    # JSON-friendly values: addresses checksummed, bytes as 0x-hex, strings kept.
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


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
            if kind in ("string", "bytes") or kind.endswith("]"):
                args[name] = topic  # indexed dynamic values are stored hashed
            else:
                args[name] = _normal(kind, abi_decode([kind], bytes.fromhex(topic[2:]))[0])
        data = bytes.fromhex(_hex(log["data"])[2:])
        values = abi_decode([k for _, k in spec.data], data) if spec.data else ()
    except (DecodingError, ValueError, OverflowError) as exc:
        raise AuditError(f"log of {spec.name} in tx {tx} does not decode ({exc})",
                         "check the contract address: it is not FogFed") from exc
    for (name, kind), value in zip(spec.data, values):
        args[name] = _normal(kind, value)
    ts = timestamp if timestamp is not None else _int(log.get("blockTimestamp", 0) or 0)
    return Event(block, _int(log["logIndex"]), tx, ts, spec.name, args)
