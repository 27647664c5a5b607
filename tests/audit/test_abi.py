"""The auditor's own log decoder agrees with eth_abi and eth_utils on every event of the ABI."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from fogfed.audit.abi import checksum, decode_log, event_specs

SPECS = event_specs()


def _value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
    if kind == "bool":
        return st.booleans()
    if kind.startswith("uint"):
        return st.integers(0, 2 ** int(kind[4:] or 256) - 1)
    if kind == "string":
        return st.text(max_size=80)
    if kind == "bytes":
        return st.binary(max_size=80)
    n = int(kind[5:])
    return st.binary(min_size=n, max_size=n)


def _json(kind: str, value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value


@st.composite
def logs(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    spec = SPECS[draw(st.sampled_from(sorted(SPECS)))]
    topics_in = {name: draw(_value(kind)) for name, kind in spec.indexed}
    data_in = {name: draw(_value(kind)) for name, kind in spec.data}
    topics = [spec.topic0] + ["0x" + encode([kind], [topics_in[name]]).hex() for name, kind in spec.indexed]
    data = encode([k for _, k in spec.data], [data_in[n] for n, _ in spec.data])
    log = {"topics": topics, "data": "0x" + data.hex(), "blockNumber": "0x5", "logIndex": "0x2",
           "transactionHash": "0x" + "cd" * 32, "blockTimestamp": "0x10"}
    expected = {n: _json(k, v) for (n, k), v in zip(spec.indexed + spec.data, [*topics_in.values(), *data_in.values()])}
    return spec.name, log, expected


@settings(max_examples=400, deadline=None)
@given(logs())
def test_decoded_arguments_equal_what_was_encoded(case: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    name, log, expected = case
    event = decode_log(log, SPECS)
    assert event is not None and event.name == name
    assert (event.block, event.log_index, event.timestamp) == (5, 2, 16)
    assert event.args == expected


@given(st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(raw: bytes) -> None:
    assert checksum("0x" + raw.hex()) == to_checksum_address(raw)
    assert checksum("0x" + raw.hex().upper()) == to_checksum_address(raw)
