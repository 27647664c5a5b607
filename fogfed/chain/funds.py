"""How many operations an account's balance still pays for, and the warning when few are left."""

from __future__ import annotations

from typing import Any

#: Gas of one typical node operation (registerFile with a policy of a few clauses ~ 250k;
#: announceCache / recordAccess much less): a conservative unit for "operations left".
OPERATION_GAS = 300_000
#: Fewer operations left than this: warn.
LOW_OPERATIONS = 36


def fee_per_gas(chain: Any) -> int:
    """What one unit of gas costs now (the latest base fee doubled plus tip, or the gas price)."""
    block = chain.w3.eth.get_block("latest")
    base = block.get("baseFeePerGas")
    return 2 * int(base) + 1 if base is not None else int(chain.w3.eth.gas_price)


def operations_left(chain: Any, address: str) -> int:
    """How many typical operations (:data:`OPERATION_GAS` each) ``address``'s balance pays for."""
    return chain.balance(address) // max(1, OPERATION_GAS * fee_per_gas(chain))


def low_balance_warning(chain: Any, address: str) -> str | None:
    """A warning when ``address`` can pay for fewer than :data:`LOW_OPERATIONS` operations, else None."""
    left = operations_left(chain, address)
    if left >= LOW_OPERATIONS:
        return None
    return (f"{address} can pay for about {left} more operation(s); ask the TAS operator to top it up "
            f"(fogfed tas fund {address} --amount 0.05)")
