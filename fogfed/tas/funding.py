"""Gas for the nodes: the TAS tops members up, by hand or automatically within a budget.

A node pays for its own transactions (registerFile, announceCache,
recordAccess, ...); fogfed.chain.funds says how many its balance still
covers, and the CLI warns when few are left. :func:`top_up` sends members below a floor back up to a target,
never more than ``limit`` wei in one call (``fogfed tas watch --top-up-below``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fogfed.chain.funds import LOW_OPERATIONS, OPERATION_GAS, low_balance_warning, operations_left  # noqa: F401
from fogfed.errors import InputError
from fogfed.protocol.keydelivery import check_address

if TYPE_CHECKING:
    from fogfed.tas.authority import TrustedAuthority

@dataclass(frozen=True)
class TopUp:
    """One transfer to a node."""

    node: str
    wei: int
    balance_before: int
    gas_used: int


def fund(tas: "TrustedAuthority", node: str, wei: int) -> TopUp:
    """Send ``wei`` to an active member of one of this TAS's federations."""
    node = check_address(node, "node address")
    if type(wei) is not int or wei <= 0:
        raise InputError(f"amount must be a positive number of wei, got {wei!r}")
    rec = tas.enrolled_member(node)
    if rec is None or not rec["active"]:
        raise InputError(f"{node} is not an active member of a federation of this TAS",
                         "only members are funded; check the address with `fogfed tas status`")
    before = tas.fed.chain.balance(node)
    receipt = tas.fed.chain.fund(node, wei, tas.account)
    return TopUp(node, wei, before, int(receipt["gasUsed"]))


def check_top_up(below_wei: int, to_wei: int, limit_wei: int) -> None:
    """InputError unless 0 < below <= to and the limit is positive (checked before any work)."""
    if not 0 < below_wei <= to_wei or limit_wei <= 0:
        raise InputError(f"a top-up needs 0 < below ({below_wei / 1e18:g} ETH) <= to ({to_wei / 1e18:g} ETH) "
                         f"and a positive limit ({limit_wei / 1e18:g} ETH)",
                         "e.g. --top-up-below 0.01 --top-up-to 0.05 --top-up-limit 1")


def top_up(tas: "TrustedAuthority", below_wei: int, to_wei: int, limit_wei: int) -> list[TopUp]:
    """Bring every active member whose balance is under ``below_wei`` up to ``to_wei``, spending at
    most ``limit_wei`` in this call (members beyond the budget wait for the next call)."""
    check_top_up(below_wei, to_wei, limit_wei)
    out, spent = [], 0
    for f in tas.federations():
        for node in f.members:
            balance = tas.fed.chain.balance(node)
            if balance >= below_wei:
                continue
            wei = to_wei - balance
            if spent + wei > limit_wei:
                return out
            receipt = tas.fed.chain.fund(node, wei, tas.account)
            spent += wei
            out.append(TopUp(node, wei, balance, int(receipt["gasUsed"])))
    return out
