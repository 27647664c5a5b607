"""Errors of the chain layer; each is a :class:`fogfed.errors.FogfedError` with a hint."""

from __future__ import annotations

from typing import Any

from fogfed.errors import FogfedError, InputError


class ChainError(FogfedError):
    """A chain operation failed."""


class ChainUnreachable(ChainError):
    """No Ethereum JSON-RPC node answers at the given URL."""


class WrongChain(ChainError):
    """The node's chain id is not the one the user stated."""


class NotFogFedContract(ChainError):
    """The address holds no code, or code that is not this fogfed's FogFed contract."""


class InsufficientFunds(ChainError):
    """The sending account cannot pay for the transaction."""


class TransactionFailed(ChainError):
    """A transaction was not accepted or not mined, for a reason other than a contract revert."""


class InvalidArgument(InputError):
    """A value passed to a contract wrapper is malformed (caught before anything is sent)."""


class ContractRevert(ChainError):
    """The contract refused: carries the custom error's name, its arguments and a sentence."""

    def __init__(self, error_name: str, error_args: dict[str, Any], sentence: str, *,
                 function: str | None = None, hint: str | None = None) -> None:
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{sentence} ({error_name})", hint)
        self.error_name = error_name
        self.error_args = error_args
        self.sentence = sentence
        self.function = function


class TransactionUnderpriced(TransactionFailed):
    """The fees a transaction needs exceed the configured cap, or the node refuses them as too low."""


class TransactionReplaced(TransactionFailed):
    """The transaction's nonce was used by another transaction (sent by another program)."""
