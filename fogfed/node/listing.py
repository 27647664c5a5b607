"""Which files a member may read, from the contract's events (not from local records).

The chain is the source of truth: a file is listed for a federation when a
``FileRegistered`` event names that federation, or a ``FileShared`` event
shares the file with it. Each row says whether this node holds the key for
the file's epoch (a member that joined later cannot read older files while
backward secrecy is on).
"""

from __future__ import annotations

from typing import Any

from fogfed.chain import FogFed


def files_for_federation(fed: FogFed, federation_id: int, keys_held: set[tuple[int, int]]) -> list[dict[str, Any]]:
    """Files registered in or shared with ``federation_id``, oldest first, with ``key_held``."""
    own = fed.events(names=["FileRegistered"], where={"federationId": federation_id})
    shared = fed.events(names=["FileShared"], where={"federationId": federation_id})
    rows: dict[bytes, dict[str, Any]] = {}
    for e in own:
        rows[e.args["fileId"]] = _row(e, shared=False, key_held=(federation_id, e.args["epoch"]) in keys_held)
    for s in shared:
        fid = s.args["fileId"]
        if fid in rows:
            continue
        (reg,) = fed.events(names=["FileRegistered"], where={"fileId": fid})[:1] or (None,)
        if reg is None:
            continue
        # the share scoped the policy to this federation's epoch at that time; which one is in the policy
        rows[fid] = _row(reg, shared=True, key_held=None, shared_block=s.block_number)
    return sorted(rows.values(), key=lambda r: (r["block"], r["file_id"]))


def _row(e: Any, *, shared: bool, key_held: bool | None, shared_block: int | None = None) -> dict[str, Any]:
    return {"file_id": "0x" + e.args["fileId"].hex(), "uploader": e.args["uploader"],
            "federation_id": e.args["federationId"], "epoch": e.args["epoch"], "policy": e.args["policy"],
            "block": e.block_number, "tx": e.tx_hash, "shared": shared, "shared_block": shared_block,
            "key_held": key_held}
