"""Which files a member may read, from the contract's events (not from local records).

The chain is the source of truth: a file is listed for a federation when a
``FileRegistered`` event names that federation, or a ``FileShared`` event
shares the file with it. Each row says whether one of this node's keys
satisfies the file's policy, as recorded on chain: the policy carries the
member-tree cover, so a member that joined after the upload (backward secrecy)
or whose leaf was revoked before it is listed but cannot read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fogfed.abe.policy import parse_policy
from fogfed.chain import FogFed
from fogfed.errors import InputError
from fogfed.protocol.attributes import tree_attribute
from fogfed.protocol.membertree import MemberTree, parse_descriptor

TreeFor = Callable[[int], MemberTree]


def files_for_federation(fed: FogFed, federation_id: int, key_attributes: Iterable[Iterable[str]],
                         tree_for: TreeFor) -> list[dict[str, Any]]:
    """Files registered in or shared with ``federation_id``, oldest first.

    ``key_held`` in each row: True when one of ``key_attributes`` (the
    attribute sets of the keys this node holds) satisfies the file's policy,
    its registered cover descriptor expanded with ``tree_for(federation id)``
    (the federation's member tree replayed from the chain).
    """
    keys = [frozenset(a) for a in key_attributes]
    check = _Readable(keys, tree_for)
    own = fed.events(names=["FileRegistered"], where={"federationId": federation_id})
    shared = fed.events(names=["FileShared"], where={"federationId": federation_id})
    rows: dict[bytes, dict[str, Any]] = {}
    for e in own:
        rows[e.args["fileId"]] = _row(e, check, shared=False)
    for s in shared:
        fid = s.args["fileId"]
        if fid in rows:
            continue
        (reg,) = fed.events(names=["FileRegistered"], where={"fileId": fid})[:1] or (None,)
        if reg is None:
            continue
        rows[fid] = _row(reg, check, shared=True, shared_block=s.block_number)
    return sorted(rows.values(), key=lambda r: (r["block"], r["file_id"]))


class _Readable:
    """Whether one of the keys satisfies a registered policy ``(P) and cover(...)``.

    The scoped policy is ``(P) and (C1 or C2 ...)`` with each Ci an OR of tree
    attributes, so a key satisfies it when it satisfies P and holds one
    attribute of the union of the covers: checked without building the
    expanded policy text (a cover may be longer than a policy may be).
    """

    def __init__(self, keys: list[frozenset[str]], tree_for: TreeFor) -> None:
        self.keys, self.tree_for = keys, tree_for
        self.trees: dict[int, MemberTree] = {}

    def __call__(self, policy: str) -> bool:
        try:
            user, parts = parse_descriptor(policy)
            allowed: set[str] = set()
            for fid, (generation, epoch, assigned, open_) in parts.items():
                tree = self.trees.get(fid) or self.trees.setdefault(fid, self.tree_for(fid))
                at = tree if generation == tree.generation else tree.past.get(generation)
                if at is not None:  # a generation the chain does not have covers nobody
                    allowed.update(tree_attribute(fid, generation, n)
                                   for n in at.cover(epoch, assigned, open_=open_))
            p = parse_policy(user)
        except InputError:  # not a policy fogfed registers: nothing here can read it
            return False
        return any(p.satisfied_by(k) and not allowed.isdisjoint(k) for k in self.keys)


def _row(e: Any, check: _Readable, *, shared: bool, shared_block: int | None = None) -> dict[str, Any]:
    return {"file_id": "0x" + e.args["fileId"].hex(), "uploader": e.args["uploader"],
            "federation_id": e.args["federationId"], "epoch": e.args["epoch"], "policy": e.args["policy"],
            "block": e.block_number, "tx": e.tx_hash, "shared": shared, "shared_block": shared_block,
            "key_held": check(e.args["policy"])}
