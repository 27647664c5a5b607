"""When a block counts as final: a per-chain confirmation setting.

A chain with immediate finality (Besu/IBFT 2.0/QBFT, the embedded chain)
needs 0 confirmations: the head is final. On a chain whose blocks can be
reorganised, an integer ``n`` means "act on a block once ``n`` blocks are on
top of it", and the tags ``safe`` / ``finalized`` defer to the node's own
view (post-merge Ethereum, OP-stack and Arbitrum rollups answer them).

Every writer (``Chain.send`` waits for its receipt to be final), every event
reader (``FogFed.events`` reads to the final block) and the auditor (it
replays to the final block) use the same setting, so a registration, a
removal or a key delivery is acted upon only once it cannot be reorganised
away. The setting comes from ``connect(..., confirmations=)`` or
``$FOGFED_CONFIRMATIONS``.
"""

from __future__ import annotations

import os
from typing import Any, Union

from fogfed.errors import InputError

ENV = "FOGFED_CONFIRMATIONS"
TAGS = ("safe", "finalized")
MAX_DEPTH = 10_000

Confirmations = Union[int, str]


def parse_confirmations(value: Any) -> Confirmations:
    """0..MAX_DEPTH, ``safe`` or ``finalized`` (a string of digits is a depth); InputError otherwise."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TAGS:
            return text
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DEPTH:
        return value
    raise InputError(f"confirmations must be a block depth 0-{MAX_DEPTH}, 'safe' or 'finalized', got {value!r}",
                     "0 on QBFT/IBFT chains (immediate finality), e.g. 12 or 'finalized' on Ethereum")


def default_confirmations() -> Confirmations:
    """``$FOGFED_CONFIRMATIONS`` or 0."""
    raw = os.environ.get(ENV)
    return parse_confirmations(raw) if raw not in (None, "") else 0


def final_block_number(head: int, tagged: int | None, confirmations: Confirmations) -> int:
    """The newest final block given the head and (for a tag) the node's answer for that tag.

    -1 when nothing is final yet (a depth larger than the chain).
    """
    if isinstance(confirmations, str):
        if tagged is None:
            raise InputError(f"the node does not answer the {confirmations!r} block tag",
                             f"use a block depth instead (e.g. {ENV}=12)")
        return min(tagged, head)
    return head - confirmations


def final_block(w3: Any, confirmations: Confirmations) -> int:
    """The newest final block on ``w3``'s chain (web3 calls; -1 if none is final yet)."""
    head = int(w3.eth.block_number)
    tagged = None
    if isinstance(confirmations, str):
        try:
            tagged = int(w3.eth.get_block(confirmations)["number"])
        except Exception:  # noqa: BLE001 - nodes without the tag answer in many ways
            tagged = None
    return final_block_number(head, tagged, confirmations)


__all__ = ["Confirmations", "parse_confirmations", "default_confirmations", "final_block", "final_block_number",
           "ENV", "TAGS"]
