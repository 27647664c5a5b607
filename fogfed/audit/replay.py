"""Replay every event of a FogFed deployment (and its mobility contract) into a checkpoint and a rebuilt state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from fogfed.audit import source
from fogfed.audit.abi import Event, decode_log, event_specs
from fogfed.audit.checkpoint import Checkpoint
from fogfed.audit.errors import AuditError
from fogfed.audit.state import Rebuild, RebuildConfig
from fogfed.chain.artifacts import load_artifact
from fogfed.chain.finality import default_confirmations
from fogfed.errors import InputError
from fogfed.chain.mobility import NAME as MOBILITY, is_mobility_code

#: progress(first_block, last_block_done, head, events_so_far)
Progress = Callable[[int, int, int, int], None]


@dataclass
class ReplayResult:
    """What a replay produced: the rebuilt state at ``head`` and counts."""

    rebuild: Rebuild
    head: int
    head_time: int
    start_block: int
    new_events: int
    total_events: int
    resumed_from: int | None
    #: reorganisations seen in this run, and the common ancestor the last one rewound to
    reorgs: int = 0
    rewound_to: int | None = None

    @property
    def state(self) -> dict[str, Any]:
        return self.rebuild.data


def restore(cp: Checkpoint) -> Rebuild:
    """The state as of the checkpoint's last committed block, rebuilt locally (no network)."""
    config = RebuildConfig(int(cp.meta("near_removal_blocks") or RebuildConfig.near_removal_blocks),
                           cp.meta("mobility") or None)
    snap = cp.snapshot()
    rebuild = Rebuild(config, snap[1] if snap else None)
    after = snap[0] if snap else -1
    last = cp.last_block
    for event in cp.events(after):
        if last is not None and event.block > last:
            break
        rebuild.apply(event)
    return rebuild


def _require_fogfed(w3: Web3, address: str, block: int) -> None:
    # A contract that answers settings() the FogFed way; anything else would replay as "empty".
    contract = w3.eth.contract(address=address, abi=load_artifact()["abi"])
    try:
        contract.functions.settings().call(block_identifier=block)
    except Exception as exc:  # noqa: BLE001 - web3 raises many types for a foreign contract
        raise AuditError(f"the contract at {address} is not a FogFed contract (settings() failed: "
                         f"{type(exc).__name__})", "check the contract address") from exc


def _require_mobility(w3: Web3, mobility: str, fogfed: str, block: int) -> str:
    """``mobility`` checksummed, once its code is the FogFedMobility artifact serving ``fogfed``."""
    mobility = source.checked_address(mobility)
    contract = w3.eth.contract(address=mobility, abi=load_artifact(MOBILITY)["abi"])
    code = bytes(w3.eth.get_code(mobility, block)) if source.has_code(w3, mobility, block) else b""
    try:
        served = contract.functions.fogfed().call(block_identifier=block) if code else None
    except Exception:  # noqa: BLE001 - web3 raises many types for a foreign contract
        served = None
    if not served or not is_mobility_code(code, served):
        raise AuditError(f"the contract at {mobility} is not a FogFedMobility contract (block {block})",
                         "pass the address `fogfed tas mobility-deploy` printed, or leave out --mobility")
    if served != fogfed:
        raise AuditError(f"the mobility contract at {mobility} serves FogFed {served}, not {fogfed}",
                         "pass the mobility contract deployed for this FogFed")
    return mobility


def check_mobility(cp: Checkpoint, mobility: str | None) -> None:
    """AuditError unless ``cp`` (once it holds a replay) was made with the same mobility contract:
    mobility events from before a switch would be missing, so a checkpoint keeps its choice."""
    mobility = source.checked_address(mobility) if mobility is not None else None
    recorded = cp.meta("mobility") or None
    if cp.last_block is not None and recorded != mobility:
        have = f"with mobility contract {recorded}" if recorded else "without a mobility contract"
        raise AuditError(f"checkpoint {cp.path} was replayed {have}",
                         f"pass {'--mobility ' + recorded if recorded else 'no --mobility'} or another --db path")


MAX_REORGS = 100


class _Reorganised(Exception):
    """Blocks already fetched are no longer on the node's chain."""


def _canonical(w3: Web3, cp: Checkpoint, block: int | None) -> bool:
    """Whether the recorded hash of ``block`` is still the chain's (True when none was recorded)."""
    if block is None:
        return True
    recorded = cp.block_hash(block)
    return recorded is None or source.block_hash(w3, block) == recorded


def common_ancestor(w3: Web3, cp: Checkpoint) -> int | None:
    """The newest recorded block whose hash the chain still has (None: none of them)."""
    for number, recorded in cp.block_hashes():
        if source.block_hash(w3, number) == recorded:
            return number
    return None


def _range_hashes(w3: Web3, last: int, logs: list[dict[str, Any]]) -> dict[int, str]:
    """Hashes of the range's last block and of every block with a log; _Reorganised when the logs'
    blocks disagree with each other or with the header (the node switched forks mid-answer)."""
    header = source.block_hash(w3, last)
    if header is None:
        raise _Reorganised  # the chain got shorter than the head this replay aimed at
    hashes = {last: header}
    for log in logs:
        number, h = source.as_int(log["blockNumber"]), source.hex_hash(log["blockHash"])
        if hashes.setdefault(number, h) != h:
            raise _Reorganised
    return hashes


def replay(
    w3: Web3,
    address: str,
    db_path: Path | str,
    *,
    from_block: int | None = None,
    to_block: int | None = None,
    config: RebuildConfig | None = None,
    span: int = 16,
    progress: Progress | None = None,
    mobility: str | None = None,
    confirmations: int | str | None = None,
) -> ReplayResult:
    """Replay the events of the FogFed contract at ``address`` up to ``to_block`` (default: head).

    Resumes from the checkpoint at ``db_path`` when it has one for this chain and
    address; otherwise starts at ``from_block`` or the contract's deployment block.
    ``mobility``: also replay that FogFedMobility contract's events (moves); a checkpoint is bound to this choice.
    ``confirmations``: replay only blocks at that depth (or the node's ``safe``/``finalized`` block);
    default ``$FOGFED_CONFIRMATIONS`` or 0, the setting the writers use.
    A reorganisation of blocks already replayed (seen on resume or between ranges) rewinds the
    checkpoint to the common ancestor and replays from there.
    """
    address = source.checked_address(address)
    chain_id = source.as_int(source.call(w3, "eth_chainId", []))
    if confirmations is None:
        try:
            confirmations = default_confirmations()
        except InputError as exc:
            raise AuditError(exc.message, exc.hint) from None
    final = source.final_head(w3, confirmations)
    if to_block is not None and to_block > final:
        raise AuditError(f"block {to_block} is beyond the chain's final block {final}"
                         f"{f' ({confirmations} confirmations)' if confirmations else ''}",
                         "pass a --to-block at or below the final block")
    head = final if to_block is None else to_block
    if head < 0:
        raise AuditError(f"no block has {confirmations} confirmations yet", "wait for more blocks")
    if not source.has_code(w3, address, head):
        raise AuditError(f"no contract at {address} on chain {chain_id} (block {head})",
                         "check the contract address and the --rpc URL")
    _require_fogfed(w3, address, head)
    if mobility is not None:
        mobility = _require_mobility(w3, mobility, address, head)
    with Checkpoint.open(db_path, chain_id, address) as cp:
        check_mobility(cp, mobility)
        if cp.last_block is None:
            cp.set_meta({"mobility": mobility or ""})
        if cp.meta("near_removal_blocks") is None:
            cp.set_meta({"near_removal_blocks": (config or RebuildConfig()).near_removal_blocks})
        resumed_from = cp.last_block
        specs = {address.lower(): event_specs()}
        if mobility:
            specs[mobility.lower()] = event_specs(load_artifact(MOBILITY)["abi"])
        addresses = [address, mobility] if mobility else address
        if cp.last_block is None:
            cp.set_meta({"start_block": from_block if from_block is not None
                         else source.deployment_block(w3, address, head)})
        before, reorgs, rewound_to = cp.event_count(), 0, None
        while True:
            if not _canonical(w3, cp, cp.last_block):
                rewound_to = common_ancestor(w3, cp)
                cp.rewind(rewound_to)
                reorgs += 1
                head = min(head, source.final_head(w3, confirmations))  # the new chain may be shorter
            rebuild = restore(cp)
            start = cp.last_block + 1 if cp.last_block is not None else int(cp.meta("start_block") or 0)
            try:
                _fetch(w3, cp, rebuild, specs, addresses, span, start, head, progress)
            except _Reorganised:
                reorgs += 1
                if reorgs > MAX_REORGS:
                    raise AuditError(f"the chain reorganised {reorgs} times during one replay",
                                     "the node is switching forks; wait or replay with more --confirmations")
                head = min(head, source.final_head(w3, confirmations))
                continue
            if _canonical(w3, cp, cp.last_block):
                break
        new = cp.event_count() - before  # negative when a reorganisation took back more than came
        done = cp.last_block if cp.last_block is not None else head
        head_time = source.block_timestamp(w3, done)
        cp.save_snapshot(done, rebuild.data)
        cp.set_meta({"head_time": head_time})
        return ReplayResult(rebuild, done, head_time, int(cp.meta("start_block") or start),
                            new, cp.event_count(), resumed_from, reorgs, rewound_to)


def _fetch(w3: Web3, cp: Checkpoint, rebuild: Rebuild, specs: dict[str, Any], addresses: str | list[str],
           span: int, start: int, head: int, progress: Progress | None) -> int:
    """Fetch, apply and commit ranges from ``start`` to ``head``.
    _Reorganised when the previous range's last block is no longer the chain's."""
    for last, logs in source.LogSource(w3, addresses, span).batches(start, head):
        if not _canonical(w3, cp, cp.last_block):
            raise _Reorganised
        hashes = _range_hashes(w3, last, [log for log in logs if not log.get("removed")])
        stamps = source.fill_timestamps(w3, logs)
        events: list[Event] = []
        for log in logs:
            if log.get("removed"):
                continue  # reorged away
            event = decode_log(log, specs.get(str(log["address"]).lower(), {}),
                               stamps.get(source.as_int(log["blockNumber"])))
            if event is not None:
                rebuild.apply(event)
                events.append(event)
        cp.commit_range(events, last, hashes)
        del logs, events  # not held while the next range is fetched
        if progress:
            progress(start, last, head, cp.event_count())
