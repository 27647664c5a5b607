"""Complete-subtree subset cover (Naor, Naor and Lotspiech, CRYPTO 2001, section 3.1).

A federation's members sit at the leaves of a complete binary tree of height
``height`` (2**height leaves). A member's key holds one attribute per tree node
on its leaf-to-root path (:func:`path`). To address exactly the leaves that may
read a file, the uploader takes the *cover* (:func:`cover`): the fewest
subtrees whose leaves are all allowed and that together hold every allowed
leaf. No cover node is an ancestor of an excluded leaf, so an excluded
member's key shares no attribute with the OR of the cover nodes: CP-ABE's
collusion resistance then keeps it out whatever keys it pools with other
excluded members. With r excluded leaves out of N the cover has at most
r * log2(N / r) nodes (NNL Lemma 1); excluding a suffix of leaves (the
unassigned ones) adds at most ``height`` more.

fogfed drops the root (``root=False``, :func:`key_path`): the root stands for
"every leaf", which a cover needs only when the whole tree may read; its two
children then do the same job (one more ciphertext row in that rare case),
and every key is one attribute (about 60 bytes) smaller.

Nodes are numbered as in a binary heap: the root is 1, the children of k are
2k and 2k + 1, and leaf x is 2**height + x. Pure math: no chain, no keys.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from fogfed.errors import InputError

MAX_HEIGHT = 32


def _check_height(height: object) -> int:
    if type(height) is not int or not 0 <= height <= MAX_HEIGHT:
        raise InputError(f"tree height must be an integer in 0..{MAX_HEIGHT}, got {height!r:.40}")
    return height


def _check_leaf(leaf: object, height: int) -> int:
    if type(leaf) is not int or not 0 <= leaf < 1 << height:
        raise InputError(f"leaf must be an integer in 0..{(1 << height) - 1}, got {leaf!r:.40}")
    return leaf


def path(leaf: int, height: int) -> list[int]:
    """The heap numbers of the nodes from ``leaf`` up to the root (height + 1 of them)."""
    _check_height(height)
    node = (1 << height) + _check_leaf(leaf, height)
    out = []
    while node:
        out.append(node)
        node >>= 1
    return out


def key_path(leaf: int, height: int) -> list[int]:
    """The nodes a member key holds: :func:`path` without the root (``height`` >= 1)."""
    if _check_height(height) < 1:
        raise InputError("a tree whose keys leave out the root needs height >= 1")
    return path(leaf, height)[:-1]


def leaves_of(node: int, height: int) -> range:
    """The leaves below heap node ``node``."""
    _check_height(height)
    if type(node) is not int or not 1 <= node < 2 << height:
        raise InputError(f"node must be a heap number in 1..{(2 << height) - 1}, got {node!r:.40}")
    level = height - (node.bit_length() - 1)  # 0 for a leaf
    first = (node - (1 << (node.bit_length() - 1))) << level
    return range(first, first + (1 << level))


def cover(height: int, revoked: Iterable[int], assigned: int | None = None, *, root: bool = True) -> list[int]:
    """Complete-subtree cover of the allowed leaves, as sorted heap numbers.

    Allowed: leaves below ``assigned`` (all 2**height leaves when None) that
    are not in ``revoked``. Empty when nothing is allowed. ``root=False``: for
    keys of :func:`key_path`, the root is replaced by its two children.
    """
    _check_height(height)
    size = 1 << height
    end = size if assigned is None else assigned
    if type(end) is not int or not 0 <= end <= size:
        raise InputError(f"assigned leaf count must be in 0..{size}, got {assigned!r:.40}")
    gone = sorted({_check_leaf(x, height) for x in revoked if x < end} if revoked else set())
    out: list[int] = []
    # Depth-first over the nodes whose subtree is partly allowed; at most |cover| * height visits.
    stack = [(1, 0, size)]
    while stack:
        node, first, width = stack.pop()
        stop = min(first + width, end)
        if stop <= first:
            continue  # wholly unassigned
        excluded = bisect.bisect_left(gone, stop) - bisect.bisect_left(gone, first) + (first + width - stop)
        if excluded == 0:
            out.append(node)
        elif excluded < width:
            half = width >> 1
            stack.append((2 * node + 1, first + half, half))
            stack.append((2 * node, first, half))
    if out == [1] and not root and height >= 1:
        return [2, 3]
    return sorted(out)


def covered(nodes: Iterable[int], leaf: int, height: int) -> bool:
    """Whether ``leaf`` lies below one of ``nodes`` (its key then matches the cover)."""
    return not set(path(leaf, height)).isdisjoint(nodes)


__all__ = ["MAX_HEIGHT", "cover", "covered", "key_path", "leaves_of", "path"]
