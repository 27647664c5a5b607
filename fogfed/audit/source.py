"""Fetch a contract's raw logs with ``eth_getLogs`` in adaptive block ranges.

Nodes cap a single ``eth_getLogs`` answer (by block range or result count)
and time out on huge ones; the range shrinks on such an error and grows again
while answers stay small, so one loop suits Anvil, Ganache, public RPCs and
the embedded chain alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eth_utils import is_address, to_checksum_address
from web3 import EthereumTesterProvider, Web3

from fogfed.audit.errors import AuditError, BadAuditInput
from fogfed.chain import embedded
from fogfed.chain.connection import UNREACHABLE_ERRORS, chain_unreachable
from fogfed.chain.finality import final_block_number, parse_confirmations
from fogfed.errors import InputError

#: Error texts by which nodes say "ask for less".
_TOO_MUCH = ("too many", "limit", "exceed", "range", "timeout", "timed out", "size", "10000", "response")
MIN_SPAN, MAX_SPAN = 1, 1_000_000
#: Logs wanted per answer: few requests, yet one batch's memory stays small.
TARGET_LOGS = 2_000


def connect(rpc: str | None = None, timeout: float = 30.0) -> Web3:
    """A Web3 client for ``rpc``: an http(s) JSON-RPC URL, or ``embedded:<dir>`` (None: the
    default embedded chain directory shared by the fogfed commands). AuditError if it does not answer."""
    if rpc is None or rpc.startswith(embedded.SCHEME):
        path = embedded.parse_embedded(rpc) if rpc else embedded.default_state_dir()
        w3 = embedded.open_chain(path).web3()
    elif rpc.startswith(("http://", "https://")):
        w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": timeout}))
    else:
        raise AuditError(f"RPC URL {rpc!r} is neither an http(s) URL nor embedded:<dir>",
                         "pass e.g. --rpc http://127.0.0.1:8545")
    call(w3, "eth_chainId", [])
    return w3


# The in-process eth-tester provider takes raw requests only in its own (snake_case) format,
# so on it the few calls the auditor makes go through web3's formatting methods instead.
_TESTER_CALLS = {
    "eth_chainId": lambda w3, p: w3.eth.chain_id,
    "eth_blockNumber": lambda w3, p: w3.eth.block_number,
    "eth_getCode": lambda w3, p: w3.eth.get_code(p[0], p[1]),
    "eth_getBlockByNumber": lambda w3, p: dict(w3.eth.get_block(p[0])),
    "eth_getLogs": lambda w3, p: [dict(log) for log in w3.eth.get_logs(p[0])],
}


def call(w3: Web3, method: str, params: list[Any]) -> Any:
    """One raw JSON-RPC call; every failure becomes an AuditError naming the method."""
    try:
        if isinstance(w3.provider, EthereumTesterProvider):
            return _TESTER_CALLS[method](w3, params)
        reply = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    except UNREACHABLE_ERRORS as exc:  # the same words as every other command (fogfed.chain.connection)
        gone = chain_unreachable(getattr(w3.provider, "endpoint_uri", None) or "the --rpc URL", exc)
        raise AuditError(f"{gone.message} (calling {method})", gone.hint) from exc
    except Exception as exc:  # noqa: BLE001 - transport errors come in many types
        raise AuditError(f"the Ethereum node did not answer {method} ({type(exc).__name__}: {exc})",
                         "check the --rpc URL and that the node is running") from exc
    if not isinstance(reply, dict):
        raise AuditError(f"the Ethereum node sent a malformed answer to {method}", "check the --rpc URL")
    if reply.get("error"):
        err = reply["error"]
        message = err.get("message", err) if isinstance(err, dict) else err
        raise RpcError(method, str(message))
    if "result" not in reply:
        raise AuditError(f"the Ethereum node sent no result for {method}", "check the --rpc URL")
    return reply["result"]


class RpcError(AuditError):
    """The node answered a call with a JSON-RPC error."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"the Ethereum node refused {method}: {message}",
                         "check the node's limits and the block range")
        self.node_message = message


def block_param(w3: Web3, block: int) -> int | str:
    """A block number as the provider wants it: hex over JSON-RPC, an int for the in-process
    eth-tester provider (whose raw requests skip web3's formatters)."""
    return block if isinstance(w3.provider, EthereumTesterProvider) else hex(block)


def as_int(value: Any) -> int:
    """A JSON-RPC quantity (0x-hex string, or int from in-process providers) as an int."""
    return value if isinstance(value, int) else int(str(value), 16)


def checked_address(address: str) -> str:
    """``address`` checksummed; InputError-style AuditError when it is not an address."""
    if not isinstance(address, str) or not is_address(address):
        raise BadAuditInput(f"{address!r} is not an Ethereum address", "pass the FogFed contract's 0x address")
    return to_checksum_address(address)


def head_block(w3: Web3) -> int:
    """The node's latest block number."""
    return as_int(call(w3, "eth_blockNumber", []))


def block_timestamp(w3: Web3, block: int) -> int:
    """Timestamp of ``block`` (unix seconds)."""
    header = call(w3, "eth_getBlockByNumber", [block_param(w3, block), False])
    if not header:
        raise AuditError(f"the node has no block {block}", "pass a block at or below the chain head")
    return as_int(header["timestamp"])


def block_hash(w3: Web3, block: int) -> str | None:
    """0x-hex hash of block ``block`` on the node's current chain, or None when it has no such block."""
    header = call(w3, "eth_getBlockByNumber", [block_param(w3, block), False])
    return hex_hash(header["hash"]) if header else None


def hex_hash(value: Any) -> str:
    """A block hash (0x-hex string from JSON-RPC, bytes from in-process providers) as lower-case 0x-hex."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def final_head(w3: Web3, confirmations: int | str) -> int:
    """The newest block at ``confirmations`` (a depth, 'safe' or 'finalized'); -1 if none yet."""
    try:
        confirmations = parse_confirmations(confirmations)
    except InputError as exc:
        raise AuditError(exc.message, exc.hint) from None
    head = head_block(w3)
    tagged = None
    if isinstance(confirmations, str):
        try:
            header = call(w3, "eth_getBlockByNumber", [confirmations, False])
        except RpcError:
            header = None
        tagged = as_int(header["number"]) if header else None
    try:
        return final_block_number(head, tagged, confirmations)
    except InputError as exc:  # the node has no such tag
        raise AuditError(exc.message, "pass a block depth as --confirmations") from None


def has_code(w3: Web3, address: str, block: int | str = "latest") -> bool:
    """Whether ``address`` holds contract code at ``block``."""
    tag = block_param(w3, block) if isinstance(block, int) else block
    code = call(w3, "eth_getCode", [address, tag])
    code = code.hex() if isinstance(code, (bytes, bytearray)) else str(code)
    return code not in ("", "0x", "0x0")


def deployment_block(w3: Web3, address: str, head: int) -> int:
    """The block that deployed ``address`` (binary search on its code); 0 if history is pruned."""
    if not has_code(w3, address, head):
        raise AuditError(f"no contract at {address} on this chain (block {head})",
                         "check the contract address and the --rpc URL")
    lo, hi = 0, head
    try:
        while lo < hi:
            mid = (lo + hi) // 2
            if has_code(w3, address, mid):
                hi = mid
            else:
                lo = mid + 1
    except RpcError:
        return 0  # the node keeps no old state: scan from genesis instead
    return lo


class LogSource:
    """Raw logs of one contract (or a few) between two blocks, fetched in adaptive ranges."""

    def __init__(self, w3: Web3, address: str | list[str], span: int = 16) -> None:
        # Several addresses (FogFed and its mobility contract) come back merged in chain order.
        self.w3 = w3
        self.address = checked_address(address) if isinstance(address, str) else [checked_address(a) for a in address]
        self.span = max(MIN_SPAN, min(span, MAX_SPAN))
        self.ceiling = MAX_SPAN  # below the smallest range the node refused

    def batches(self, start: int, end: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Yield (last block covered, its logs in chain order) until ``end`` is covered."""
        block = start
        while block <= end:
            last = min(end, block + self.span - 1)
            try:
                logs = call(self.w3, "eth_getLogs",
                            [{"address": self.address, "fromBlock": block_param(self.w3, block),
                              "toBlock": block_param(self.w3, last)}])
            except AuditError as exc:
                if self.span > MIN_SPAN and _asks_for_less(exc):
                    self.ceiling = min(self.ceiling, self.span - 1)
                    self.span = max(MIN_SPAN, self.span // 4)
                    continue
                raise
            if not isinstance(logs, list):
                raise AuditError("the node's eth_getLogs answer is not a list", "check the --rpc URL")
            self._adapt(len(logs))
            yield last, logs
            del logs  # not held while the next range is fetched
            block = last + 1

    def _adapt(self, count: int) -> None:
        # Aim the next range at TARGET_LOGS, changing by at most x8 / x0.25 per step.
        factor = min(8.0, max(0.25, TARGET_LOGS / max(count, 1)))
        self.span = int(min(self.ceiling, max(MIN_SPAN, self.span * factor)))


def _asks_for_less(exc: AuditError) -> bool:
    if not isinstance(exc, RpcError):
        text = exc.message.lower()
        return "timeout" in text or "timed out" in text
    return any(word in exc.node_message.lower() for word in _TOO_MUCH)


def fill_timestamps(w3: Web3, logs: list[dict[str, Any]]) -> dict[int, int]:
    """Block timestamps for logs whose node omits ``blockTimestamp`` (one call per block)."""
    stamps: dict[int, int] = {}
    for log in logs:
        if log.get("blockTimestamp") is None:
            block = as_int(log["blockNumber"])
            if block not in stamps:
                stamps[block] = block_timestamp(w3, block)
    return stamps
