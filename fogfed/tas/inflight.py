"""The journal's unfinished operations described for ``tas status``: what, where, how far, how to finish.

Each journal entry (fogfed.tas.journal) is turned into one plain dict with
the fields below (documented in docs/cli.md, "tas status --json"); they are a
stable interface, so a script can watch for operations left in flight:

* ``kind``: ``enroll``, ``enroll-batch``, ``remove``, ``move`` or ``refresh``
* ``request``: the journal key (a request's nonce in hex for ``enroll`` and
  ``move``; ``batch:...``, ``remove:NODE:GEN``, ``refresh:FID:GEN:EPOCH`` otherwise)
* ``federation_ids``: the federations it concerns that exist (a move: the
  destination; a batch: one per location and service)
* ``new_federations``: ``"location/service"`` of federations it will create
* ``nodes``, ``node_count``: the nodes concerned (a refresh: none)
* ``step``: how far it got (:data:`STEPS`; ``unknown`` for a kind this
  version does not know), ``progress``: ``{"done", "total"}``
  for a batch's registering and funding, else None
* ``started``, ``updated``: Unix seconds (``started`` None for an entry
  written before fogfed recorded it, unless its key is a request nonce)
* ``finish``: commands that finish it: ``fogfed tas sync`` first, then the
  operation's own command run again (an argument in capitals, e.g.
  ``REQUEST.json``, stands for the one given the first time; for a batch,
  the same request files or the same ``--batch DIR``)

``step`` reads the journal, the federations' active members and their tree
generations the caller already holds (no extra chain reads); finishing
re-checks every step on chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fogfed.tas.journal import Entry
from fogfed.tas.results import FederationInfo

SYNC = "fogfed tas sync"

#: kind -> the steps ``step`` may name, in the order they are reached, with what each means
STEPS: dict[str, dict[str, str]] = {
    "enroll": {
        "accepted": "request checked and journaled; nothing seen on chain yet",
        "federation-created": "its federation was created",
        "member-added": "the node is a member on chain",
        "funding": "the transfer for its gas may have been sent",
        "funded": "funded; its key is still to be delivered",
    },
    "enroll-batch": {
        "accepted": "requests checked and journaled; nothing seen on chain yet",
        "federations-created": "the federations it needed exist",
        "registering": "some nodes are members on chain",
        "registered": "every node is a member on chain",
        "funding": "some transfers for gas were sent",
        "funded": "every node was funded; the keys' refresh is still to come",
    },
    "remove": {
        "accepted": "journaled; the removal may be in the mempool",
        "removed": "the chain shows the node removed; only the journal is left to close",
    },
    "move": {
        "accepted": "request checked and journaled; the handover may be in the mempool",
        "moved": "the node is a member of the destination; its key is still to be delivered",
    },
    "refresh": {
        "accepted": "journaled; the bundle of keys is still to be built",
        "bundle-stored": "the bundle is in the content store; its commitment may be in the mempool",
        "committed": "the chain shows a new tree generation; keys of late joiners are still to be delivered",
    },
}


def describe(entries: Iterable[Entry], federations: Sequence[FederationInfo],
             generations: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """One dict per unfinished entry (fields in the module docstring), in the journal's order.

    ``federations``: this TAS's, with their active members; ``generations``: each one's member-tree
    generation on chain (tells a refresh whose commitment was mined before its journal said so).
    """
    members = {f.federation_id: set(f.members) for f in federations}
    by_place = {(f.location, f.service): f.federation_id for f in federations}
    return [_describe(e, members, by_place, generations or {}) for e in entries]


def _describe(e: Entry, members: dict[int, set[str]], by_place: dict[tuple[str, str], int],
              generations: dict[int, int]) -> dict[str, Any]:
    d = e.data
    fids: list[int] = []
    new: list[str] = []
    nodes: list[str] = []
    progress = None
    if e.kind == "enroll":
        fid = d.get("federation_id") or by_place.get((d["location"], d["service"]))
        fids, new = ([fid], []) if fid else ([], [f"{d['location']}/{d['service']}"])
        nodes = [d["address"]]
        step = ("funded" if d.get("funded") else "funding" if "balance_before" in d
                else "member-added" if fid and d["address"] in members.get(fid, ())
                else "federation-created" if d.get("created") else "accepted")
        finish = [SYNC, "fogfed tas enroll REQUEST.json"]
    elif e.kind == "enroll-batch":
        places = sorted({(m["location"], m["service"]) for m in d["members"]})
        fids = sorted({by_place[p] for p in places if p in by_place})
        new = [f"{loc}/{svc}" for loc, svc in places if (loc, svc) not in by_place]
        nodes = [m["address"] for m in d["members"]]
        added = sum(m["address"] in members.get(by_place.get((m["location"], m["service"]), 0), ())
                    for m in d["members"])
        funded = len(d.get("funded", []))
        if d["fund_wei"] and funded == len(nodes):
            step = "funded"
        elif funded or "balance_before" in d:
            step, progress = "funding", {"done": funded, "total": len(nodes)}
        elif added == len(nodes):
            step = "registered"
        elif added:
            step, progress = "registering", {"done": added, "total": len(nodes)}
        else:
            step = "federations-created" if d.get("created") and not new else "accepted"
        finish = [SYNC, "fogfed tas enroll REQUEST.json..."]
    elif e.kind == "remove":
        fids, nodes = [d["federation_id"]], [d["address"]]
        step = "accepted" if d["address"] in members.get(d["federation_id"], ()) else "removed"
        finish = [SYNC, f"fogfed tas remove {d['address']}"]
    elif e.kind == "move":
        fids, nodes = [d["to_federation"]], [d["address"]]
        step = "moved" if d["address"] in members.get(d["to_federation"], ()) else "accepted"
        finish = [SYNC, "fogfed tas move REQUEST"]
    elif e.kind == "refresh":
        fids = [d["federation_id"]]
        moved_on = generations.get(d["federation_id"], -1) > d["generation"]
        step = "committed" if "gas" in d or moved_on else "bundle-stored" if d.get("digest") else "accepted"
        finish = [SYNC, f"fogfed tas refresh {d['federation_id']}"]
    else:  # written by a newer fogfed: shown, not interpreted
        step, finish = "unknown", [SYNC]
    return {"kind": e.kind, "request": e.key, "federation_ids": fids, "new_federations": new,
            "nodes": nodes, "node_count": len(nodes), "step": step, "progress": progress,
            "started": e.started, "updated": e.updated, "finish": finish}


__all__ = ["STEPS", "SYNC", "describe"]
