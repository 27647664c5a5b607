"""Decode contract logs (receipts and ``eth_getLogs`` ranges) into :class:`DecodedEvent`.

Every function takes the artifact name of the contract (``FogFed`` by default,
``FogFedMobility`` for the handover contract); the ABI tables come from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils import event_abi_to_log_topic, to_checksum_address

from fogfed.chain.artifacts import load_artifact
from fogfed.chain.errors import ChainError, InvalidArgument
from fogfed.chain.types import DecodedEvent


FOGFED = "FogFed"


@lru_cache(maxsize=None)
def _event_table(contract: str = FOGFED) -> dict[bytes, dict[str, Any]]:
    abi = load_artifact(contract)["abi"]
    return {event_abi_to_log_topic(item): item for item in abi if item["type"] == "event"}


def event_names(contract: str = FOGFED) -> list[str]:
    """Names of all events of ``contract``."""
    return sorted(item["name"] for item in _event_table(contract).values())


def topics_for(names: Iterable[str] | None, contract: str = FOGFED) -> list[str]:
    """topic0 values (0x-hex) of the named events (None: all of them); unknown names raise ChainError."""
    by_name = {item["name"]: topic for topic, item in _event_table(contract).items()}
    if names is None:
        return ["0x" + topic.hex() for topic in by_name.values()]
    out = []
    for name in names:
        if name not in by_name:
            raise ChainError(f"{contract} has no event {name!r}", f"known events: {', '.join(sorted(by_name))}")
        out.append("0x" + by_name[name].hex())
    return out


def topics_where(name: str, where: dict[str, Any]) -> list[Any]:
    """``eth_getLogs`` topics for event ``name`` with some indexed arguments fixed (None: any value).

    Only static indexed types (address, uintN, bytesN) are filtered on, which
    covers every indexed argument of FogFed's events.
    """
    [topic0] = topics_for([name])
    abi = next(item for item in _event_table().values() if item["name"] == name)
    indexed = [i for i in abi["inputs"] if i["indexed"]]
    unknown = set(where) - {i["name"] for i in indexed}
    if unknown:
        raise InvalidArgument(f"{name} has no indexed argument {', '.join(sorted(unknown))}",
                              f"indexed: {', '.join(i['name'] for i in indexed) or 'none'}")
    topics: list[Any] = [topic0]
    for item in indexed:
        value = where.get(item["name"])
        if value is None:
            topics.append(None)
            continue
        try:
            topics.append("0x" + abi_encode([item["type"]], [value]).hex())
        except (EncodingError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"{name}.{item['name']} filter {value!r:.80} does not encode as "
                                  f"{item['type']}") from exc
    while topics[-1] is None:
        topics.pop()
    return topics


def _hexbytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _plain(value: Any, typ: str) -> Any:
    if typ == "string":  # decoded as bytes: a raw transaction may log invalid UTF-8, shown replaced
        return bytes(value).decode("utf-8", "replace")
    return to_checksum_address(value) if typ == "address" else value


def _wire(typ: str) -> str:
    return "bytes" if typ == "string" else typ


def decode_log(log: Any, contract: str = FOGFED) -> DecodedEvent | None:
    """Decode one raw log of ``contract``; None when its topic0 is not one of that contract's events."""
    table = _event_table(contract)
    topics = [_hexbytes(t) for t in log["topics"]]
    if not topics or topics[0] not in table:
        return None
    abi = table[topics[0]]
    indexed = [i for i in abi["inputs"] if i["indexed"]]
    plain = [i for i in abi["inputs"] if not i["indexed"]]
    if len(topics) != len(indexed) + 1:
        raise ChainError(f"log of {abi['name']} has {len(topics) - 1} indexed topics, expected {len(indexed)}")
    try:
        values = {i["name"]: _plain(abi_decode([i["type"]], t)[0], i["type"]) for i, t in zip(indexed, topics[1:])}
        data = abi_decode([_wire(i["type"]) for i in plain], _hexbytes(log["data"]))
    except DecodingError as exc:
        raise ChainError(f"cannot decode a {abi['name']} log: {exc}", f"is this a {contract} contract?") from exc
    values.update({i["name"]: _plain(v, i["type"]) for i, v in zip(plain, data)})
    args = {i["name"]: values[i["name"]] for i in abi["inputs"]}  # declaration order
    tx_hash = log["transactionHash"]
    tx_hash = tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()
    return DecodedEvent(abi["name"], args, int(log["blockNumber"]), tx_hash, int(log["logIndex"]))


def decode_receipt(receipt: Any, address: str, contract: str = FOGFED) -> list[DecodedEvent]:
    """The events of one receipt emitted by the ``contract`` deployed at ``address``."""
    out = []
    for log in receipt["logs"]:
        if to_checksum_address(log["address"]) == address:
            event = decode_log(log, contract)
            if event is not None:
                out.append(event)
    return out
