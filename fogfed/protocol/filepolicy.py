"""What a registered file's encrypted key must be encrypted under, checked from the chain alone.

A file's registration names its policy compactly, ``(P) and cover(f:generation:epoch:assigned ...)``
(fogfed.protocol.attributes.policy_descriptor). Two things make that text
trustworthy, and the contract checks neither for every federation it names:

* every cover must be the one its federation had when the file was registered
  (``registerFile`` checks the epoch of the uploader's own federation only; a
  cover of a federation the file is shared with may predate a removal there,
  and then the removed node's leaf is inside it): :func:`cover_problems`;
* the CP-ABE ciphertext of the file key must be encrypted under exactly the
  policy the text stands for (the contract never sees it; a hostile uploader
  may register the right text and encrypt under a wider policy):
  :func:`registered_policy`, compared with ``abe.Ciphertext.policy``.

Both are computed from the member trees replayed up to the registration
(:func:`trees_at`), so every honest fetcher and auditor reaches the same verdict.
"""

from __future__ import annotations

from collections.abc import Iterable

from fogfed.abe.policy import Policy, parse_policy
from fogfed.errors import InputError
from fogfed.protocol.membertree import MemberTree, expand_descriptor, parse_descriptor


def trees_at(events: Iterable, federations: Iterable[int], position: tuple[int, int]) -> dict[int, MemberTree]:
    """Each federation's member tree as the chain had it just before ``position`` (block, log index).

    ``events`` are FogFed's tree events (membertree.TREE_EVENTS) in chain order, from the deployment on.
    """
    before = [e for e in events if (e.block_number, e.log_index) < position]
    return {f: MemberTree(f).apply(before) for f in sorted(set(federations))}


def cover_problems(text: str, trees: dict[int, MemberTree]) -> list[str]:
    """Why the covers a registered text names are not those its federations had at registration (empty: they are).

    ``trees`` are the federations' trees just before the registration
    (:func:`trees_at`). A cover is sound when it is of the generation then
    current, no later than the epoch then current, with no leaf revoked after
    its epoch and up to the registration (an epoch advanced for another reason
    changes no cover), no more leaves than were assigned, and not open to
    unassigned leaves (backward secrecy).
    """
    try:
        _, parts = parse_descriptor(text)
    except InputError:
        return ["it was registered without a member-tree cover (removed members may read it)"]
    problems = []
    for fid, (gen, epoch, assigned, open_) in sorted(parts.items()):
        tree = trees.get(fid) or MemberTree(fid)
        name = f"its cover of federation {fid} ({fid}:{gen}:{epoch}:{assigned}{':open' if open_ else ''})"
        if gen != tree.generation:
            problems.append(f"{name} is for tree generation {gen}; the federation was at {tree.generation}")
        elif epoch > tree.epoch or assigned > tree.assigned:
            problems.append(f"{name} names an epoch or leaves the federation did not have yet "
                            f"(epoch {tree.epoch}, {tree.assigned} leaves assigned)")
        elif open_:
            problems.append(f"{name} covers leaves not yet assigned, so later newcomers may read it")
        else:
            late = sorted(leaf for leaf, since in tree.revoked.items() if epoch < since <= tree.epoch)
            if late:
                problems.append(f"{name} predates the removal of leaves {', '.join(map(str, late))} "
                                f"(federation {fid} was at epoch {tree.epoch}): those removed nodes may read it")
    return problems


def registered_policy(text: str, trees: dict[int, MemberTree]) -> Policy:
    """The CP-ABE policy a registered text stands for (InputError if it names no cover the trees have)."""
    try:
        return parse_policy(expand_descriptor(text, trees))
    except KeyError as exc:
        raise InputError(f"the registered policy names federation {exc.args[0]}, which has no member tree") from None


__all__ = ["cover_problems", "registered_policy", "trees_at"]
