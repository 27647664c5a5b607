"""Attribute names in node keys and the policies files are encrypted under.

A node key (paper Algorithm 3, FNSK) holds ``loc:<location>``, ``svc:<service>``,
``ff:<federationId>`` and one tree attribute ``ct:<federationId>:<generation>:<node>``
per node on the path from its leaf of the federation's member tree up to (not
including) the root (fogfed.keys.cover.key_path). Each tree generation has its
own height, sized to the federation (:func:`generation_height`), so a key holds
about log2(members) + 2 tree attributes. Every upload policy requires the OR of the current cover
nodes, which is what makes a removal revoke: the removed node's leaf is outside
every later cover, and no key is delivered to anyone (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from fogfed.abe.policy import Policy, normalise_attribute, parse_policy, reject_unsafe_characters
from fogfed.chain.args import attributes_hash  # noqa: F401 - the contract's federation key, one definition
from fogfed.errors import InputError
from fogfed.keys import cover

MAX_VALUE_BYTES = 64  # the contract's bound on a federation attribute
# Attributes a custom policy may name; ct: is reserved for the cover clause fogfed adds.
USER_PREFIXES = ("loc:", "svc:", "ff:")
#: Height of a federation's first tree generation (16 leaves; a key holds 4 tree attributes).
FIRST_HEIGHT = 4
#: Smallest height a refresh gives a generation.
MIN_HEIGHT = 4
MAX_TREE_HEIGHT = cover.MAX_HEIGHT


def generation_height(members: int) -> int:
    """The height of a tree generation a refresh starts with ``members`` active members.

    ``max(MIN_HEIGHT, bit_length(members) + 1)``, at most MAX_TREE_HEIGHT: room
    for at least twice as many members (2 to 4 times), so joins refresh again
    only after the federation doubled. Every role derives it from the chain's
    events (fogfed.protocol.membertree), nothing records it.
    """
    if type(members) is not int or members < 0:
        raise InputError(f"member count must be an integer >= 0, got {members!r:.40}")
    return min(MAX_TREE_HEIGHT, max(MIN_HEIGHT, members.bit_length() + 1))


def _value(kind: str, prefix: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{kind} must be a non-empty string, got {value!r:.80}")
    reject_unsafe_characters(value, kind)  # before strip/lower: no look-alike becomes a real value
    norm = value.strip(" ").lower()
    if len(norm.encode()) > MAX_VALUE_BYTES:
        raise InputError(f"{kind} {value!r:.80} is longer than {MAX_VALUE_BYTES} bytes")
    try:
        if ":" in norm:  # the prefix is the only colon, so a value can never pose as another kind
            raise InputError(norm)
        normalise_attribute(prefix + norm)
    except InputError:
        raise InputError(f"{kind} {value!r:.80} is not usable in an attribute",
                         "use letters, digits and '_ - . /' only, e.g. 'riyadh' or 'health'") from None
    return norm


def normalise_location(location: object) -> str:
    """The location as it appears on chain and in keys (lower case, checked)."""
    return _value("location", "loc:", location)


def normalise_service(service: object) -> str:
    """The service as it appears on chain and in keys (lower case, checked)."""
    return _value("service", "svc:", service)


def _check_id(federation_id: object, epoch: object = 0) -> None:
    for name, v in (("federation id", federation_id), ("epoch", epoch)):
        if type(v) is not int or not 0 <= v < 2**32:
            raise InputError(f"{name} must be an integer in 0..2^32-1, got {v!r:.40}")
    if federation_id == 0:
        raise InputError("federation id 0 does not exist (ids start at 1)")


def federation_attribute(federation_id: int) -> str:
    """``ff:<federationId>``."""
    _check_id(federation_id)
    return f"ff:{federation_id}"


def tree_attribute(federation_id: int, generation: int, node: int) -> str:
    """``ct:<federationId>:<generation>:<heap node>``: held by the keys of the leaves below ``node``."""
    _check_id(federation_id, generation)
    if type(node) is not int or not 1 <= node < 2 << MAX_TREE_HEIGHT:
        raise InputError(f"tree node must be in 1..{(2 << MAX_TREE_HEIGHT) - 1}, got {node!r:.40}")
    return f"ct:{federation_id}:{generation}:{node}"


def node_attributes(location: str, service: str, federation_id: int, leaf: int, generation: int = 0,
                    height: int | None = None) -> list[str]:
    """The attribute set of a node key (paper Algorithm 3, FNSK): base attributes and its leaf's path.

    ``height``: the generation's tree height (MemberTree.height); only
    generation 0 may leave it out (it is FIRST_HEIGHT).
    """
    if height is None:
        if generation != 0:
            raise InputError(f"tree generation {generation!r:.20} needs its height (MemberTree.height)")
        height = FIRST_HEIGHT
    return sorted([f"loc:{normalise_location(location)}", f"svc:{normalise_service(service)}",
                   federation_attribute(federation_id)]
                  + [tree_attribute(federation_id, generation, n) for n in cover.key_path(leaf, height)])


def cover_clause(federation_id: int, generation: int, nodes: list[int]) -> str:
    """The OR of a federation's cover nodes (InputError when the cover is empty: nobody may read)."""
    if not nodes:
        raise InputError(f"no member of federation {federation_id} may read this file (empty cover)")
    return " or ".join(tree_attribute(federation_id, generation, n) for n in nodes)


def check_user_policy(policy: str | Policy) -> Policy:
    """Parse a user's policy; only loc:/svc:/ff: attributes are allowed (ct: is fogfed's)."""
    parsed = parse_policy(policy)
    bad = sorted(a for a in parsed.attributes() if not a.startswith(USER_PREFIXES))
    if bad:
        raise InputError(f"policy names attributes fogfed does not issue: {', '.join(bad)}",
                         "use loc:<location>, svc:<service> or ff:<federation id>")
    return parsed


def scoped_policy(policy: str | Policy, clauses: Mapping[int, str]) -> str:
    """``(P) and (cover of f1 or cover of f2 ...)``: P restricted to the allowed leaves of each federation.

    ``clauses`` maps federation id to its cover clause (:func:`cover_clause`);
    a key matches only through its own federation's tree, so a node removed
    from one of them never can.
    """
    parsed = check_user_policy(policy)
    if not clauses:
        raise InputError("no federation can satisfy this policy",
                         "name attributes of a federation that has members")
    return f"({parsed}) and ({' or '.join(c for _, c in sorted(clauses.items()))})"


def policy_descriptor(policy: str | Policy, federations: Mapping[int, tuple[int, int, int, bool]]) -> str:
    """The compact text registered on chain instead of the expanded cover (at most 1024 bytes).

    ``(P) and cover(f:generation:epoch:assigned[:open] ...)``: anyone recomputes
    each federation's cover from the chain's events at that epoch
    (fogfed.protocol.membertree.expand_descriptor); ``open`` marks backward
    secrecy off (unassigned leaves covered).
    """
    parsed = check_user_policy(policy)
    parts = " ".join(f"{f}:{g}:{e}:{n}" + (":open" if o else "") for f, (g, e, n, o) in sorted(federations.items()))
    return f"({parsed}) and cover({parts})"


def federations_policy(location: str, service: str, covers: Mapping[int, str | Policy]) -> str:
    """``loc:x and svc:y and ((ff:1 and (C1)) or (ff:2 and (C2)) ...)``, with no attribute repeated.

    The same as ``(loc:x and svc:y and ff:1 and (C1)) or (loc:x and svc:y and ff:2 and (C2)) ...``
    (one branch per federation id in ``covers``, C its cover policy) but with
    the shared ``loc:``/``svc:`` attributes written once, so every scheme can
    encrypt it (FAME refuses repeated attributes; FABEO allows them at one
    G2 element per extra occurrence) and decryption uses the fewest rows.
    Raises InputError if a cover itself makes an attribute repeat.
    """
    if not covers:
        raise InputError("no federation given", "pass {federation id: cover policy} for at least one federation")
    branches = []
    for federation_id, cover in sorted(covers.items()):
        branches.append(f"({federation_attribute(federation_id)} and ({parse_policy(cover)}))")
    text = (f"loc:{normalise_location(location)} and svc:{normalise_service(service)} and "
            f"({' or '.join(branches)})")
    leaves = parse_policy(text).leaves()
    repeated = sorted({a for a in leaves if leaves.count(a) > 1})
    if repeated:
        raise InputError(f"the covers repeat attributes: {', '.join(repeated)}",
                         "each attribute may occur once; give every federation's cover its own attributes")
    return text
