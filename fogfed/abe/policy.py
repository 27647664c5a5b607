"""The access-policy language: parsing, canonical text, satisfaction.

Grammar (keywords case-insensitive, whitespace free between tokens)::

    policy    := expr
    expr      := atom ( ("and" | "or") atom )*
    atom      := "(" expr ")"
               | INT "of" "(" expr ( "," expr )* ")"      threshold: at least INT of the list
               | ATTRIBUTE

As in Charm's policy parser, ``and`` and ``or`` have the same precedence and
group to the right: ``a and b or c`` means ``a and (b or c)``. Use
parentheses; ``str(policy)`` always prints them, so the canonical text shows
how a policy was read.

Attributes: ASCII letters, digits and ``: _ - . /``, starting with a letter,
at most 128 characters, case-insensitive (normalised to lower case; a text
with any non-ASCII or control character is refused before that, so no
look-alike can normalise into an attribute); the
words ``and``, ``or`` and ``of`` are not attributes. Examples: ``loc:riyadh``,
``svc:health``, ``ff:3``, ``epoch:3:7``.

Limits: 256 leaves, nesting depth 32, 16 KiB of text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from fogfed.abe.errors import PolicySyntaxError
from fogfed.errors import InputError

__all__ = [
    "MAX_ATTRIBUTE_LENGTH",
    "MAX_DEPTH",
    "MAX_LEAVES",
    "MAX_TEXT",
    "Attr",
    "Gate",
    "Policy",
    "normalise_attribute",
    "normalise_attributes",
    "parse_policy",
    "reject_unsafe_characters",
]

MAX_LEAVES = 256
MAX_DEPTH = 32
MAX_TEXT = 16 * 1024
MAX_ATTRIBUTE_LENGTH = 128
MAX_KEY_ATTRIBUTES = 256
KEYWORDS = frozenset({"and", "or", "of"})

_ATTRIBUTE = re.compile(r"[a-z][a-z0-9:_\-./]*\Z")
_TOKEN = re.compile(r"[ \t\r\n]*(?:([(),])|([A-Za-z0-9:_\-./]+)|([^ \t\r\n]))")
_UNSAFE = re.compile(r"[^\x20-\x7e]")  # anything but printable ASCII: non-ASCII and control characters
_UNSAFE_IN_POLICY = re.compile(r"[^\x20-\x7e\t\r\n]")  # policies may also break lines between tokens


@dataclass(frozen=True)
class Attr:
    """A leaf: one (normalised) attribute."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Gate:
    """A threshold gate: at least ``k`` of ``children``. AND is k = n, OR is k = 1."""

    k: int
    children: tuple[Node, ...]

    @property
    def is_and(self) -> bool:
        return self.k == len(self.children)

    @property
    def is_or(self) -> bool:
        return self.k == 1

    def __str__(self) -> str:
        if self.is_and or self.is_or:
            parts = [f"({c})" if isinstance(c, Gate) else str(c) for c in self.children]
            return (" and " if self.is_and else " or ").join(parts)
        return f"{self.k} of ({', '.join(str(c) for c in self.children)})"


Node = Attr | Gate


def _gate(k: int, children: list[Node]) -> Node:
    """Build a gate in canonical form: one child collapses, same-kind AND/OR children merge."""
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    is_and, is_or = k == len(children), k == 1
    for child in children:
        if isinstance(child, Gate) and ((is_and and child.is_and) or (is_or and child.is_or)):
            flat.extend(child.children)
        else:
            flat.append(child)
    return Gate(len(flat) if is_and else k, tuple(flat))


def _merge_into(op: str, part: Node, depth: int, reversed_children: list[Node]) -> int:
    """Add ``part`` to an ``op`` gate's children (right to left), its children if it is an ``op`` gate itself.

    Returns the depth ``part`` contributes below the gate: one less if its children were merged.
    """
    if isinstance(part, Gate) and (part.is_and if op == "and" else part.is_or):
        reversed_children.extend(reversed(part.children))
        return depth - 1
    reversed_children.append(part)
    return depth


def _chain(op: str, reversed_children: list[Node]) -> Gate:
    children = tuple(reversed(reversed_children))
    return Gate(len(children) if op == "and" else 1, children)


def _depth(node: Node) -> int:
    if isinstance(node, Attr):
        return 0
    return 1 + max((_depth(c) for c in node.children if isinstance(c, Gate)), default=0)  # leaves add nothing


class Policy:
    """A parsed, canonical access policy. Build with ``parse_policy``."""

    __slots__ = ("root", "_leaves", "_text", "_hash", "_occurrences")

    def __init__(self, root: Node) -> None:
        self._set(root, tuple(_leaves(root)), str(root))

    @classmethod
    def _of_canonical(cls, root: Node, leaves: tuple[str, ...], text: str) -> Policy:
        """A Policy whose leaves and canonical text the caller already has (``_parse_canonical``)."""
        policy = cls.__new__(cls)
        policy._set(root, leaves, text)
        return policy

    def _set(self, root: Node, leaves: tuple[str, ...], text: str) -> None:
        self.root = root
        self._leaves = leaves
        self._text = text
        # Hash of the canonical text: equal trees print equal texts, and hashing a string is
        # C work, where hashing the tree costs a Python call per node.
        self._hash = hash(text)
        self._occurrences: tuple[int, ...] | None = None

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Policy({self._text!r})"

    def __eq__(self, other: object) -> bool:
        # Texts first: unequal texts mean unequal trees, decided in C.
        return self is other or (isinstance(other, Policy) and other._text == self._text and other.root == self.root)

    def __hash__(self) -> int:
        return self._hash

    def leaves(self) -> tuple[str, ...]:
        """The attribute of every leaf, left to right (repeats kept): the LSSS row labels."""
        return self._leaves

    def occurrences(self) -> tuple[int, ...]:
        """For every leaf, its attribute's occurrence number so far (1 for an attribute's first leaf, 2 for its second, ...)."""
        if self._occurrences is None:
            leaves = self._leaves
            if len(set(leaves)) == len(leaves):  # no repeats, the usual case: C work only
                self._occurrences = (1,) * len(leaves)
            else:
                seen: dict[str, int] = {}
                out = []
                for y in leaves:
                    seen[y] = seen.get(y, 0) + 1
                    out.append(seen[y])
                self._occurrences = tuple(out)
        return self._occurrences

    def attributes(self) -> frozenset[str]:
        """The distinct attributes the policy mentions."""
        return frozenset(self._leaves)

    def depth(self) -> int:
        return _depth(self.root)

    def satisfied_by(self, attributes: Iterable[str]) -> bool:
        """True if the attribute set satisfies the policy (attributes are normalised first)."""
        have = frozenset(normalise_attributes(attributes, limit=None))
        return _satisfied(self.root, have)


def _leaves(node: Node) -> list[str]:
    if isinstance(node, Attr):
        return [node.name]
    out: list[str] = []
    for c in node.children:
        out.extend(_leaves(c))
    return out


def _satisfied(node: Node, have: frozenset[str]) -> bool:
    if isinstance(node, Attr):
        return node.name in have
    return sum(1 for c in node.children if _satisfied(c, have)) >= node.k


def reject_unsafe_characters(text: str, what: str, pattern: re.Pattern = _UNSAFE) -> None:
    """InputError if ``text`` has a non-ASCII or control character, checked BEFORE any normalisation.

    Otherwise lower-casing and stripping could turn look-alikes into a real
    attribute: "role:\u212aing" (KELVIN SIGN) lower-cases to "role:king",
    and "loc:riyadh\u00a0" or "loc:riyadh\x1c" strip to "loc:riyadh".
    """
    bad = pattern.search(text)
    if bad:
        raise InputError(
            f"{what} {text!r:.120} has a non-ASCII or control character {bad.group()!r} (U+{ord(bad.group()):04X}) "
            f"at position {bad.start()}",
            "use ASCII letters, digits and ': _ - . /' only",
        )


def normalise_attribute(name: object) -> str:
    """Check, strip spaces and lower-case one attribute; raises InputError naming it.

    Non-ASCII and control characters are refused before anything else.
    """
    if not isinstance(name, str):
        raise InputError(f"attribute must be a string, got {type(name).__name__}")
    reject_unsafe_characters(name, "attribute")
    norm = name.strip(" ").lower()
    if not norm or len(norm) > MAX_ATTRIBUTE_LENGTH or not _ATTRIBUTE.match(norm) or norm in KEYWORDS:
        raise InputError(
            f"invalid attribute {name!r}",
            f"attributes start with a letter, use only letters, digits and ': _ - . /', "
            f"are at most {MAX_ATTRIBUTE_LENGTH} characters and are not 'and', 'or' or 'of'",
        )
    return norm


def normalise_attributes(names: Iterable[str], limit: int | None = MAX_KEY_ATTRIBUTES) -> list[str]:
    """Normalise, de-duplicate and sort an attribute set."""
    if isinstance(names, (str, bytes)):
        raise InputError("attributes must be a list of strings, not one string", 'pass e.g. ["loc:riyadh", "svc:health"]')
    out = sorted({normalise_attribute(n) for n in names})
    if limit is not None and len(out) > limit:
        raise InputError(f"too many attributes: {len(out)}, at most {limit}")
    return out


def parse_policy(text: str | Policy) -> Policy:
    """Parse a policy text; raises PolicySyntaxError with position and token."""
    if isinstance(text, Policy):
        return text
    if not isinstance(text, str):
        raise InputError(f"policy must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise PolicySyntaxError(f"policy text is longer than {MAX_TEXT} characters", text, MAX_TEXT, text[MAX_TEXT])
    bad = _UNSAFE_IN_POLICY.search(text)
    if bad:  # before any normalisation (lower-casing could turn a look-alike into an attribute)
        raise PolicySyntaxError(
            f"non-ASCII or control character U+{ord(bad.group()):04X} in the policy",
            text, bad.start(), bad.group(),
            "policies use ASCII only: attributes of letters, digits and ': _ - . /', and spaces, tabs or line breaks",
        )
    return _parse_text(text)


@lru_cache(maxsize=256)
def _parse_text(text: str) -> Policy:
    """The parse of a checked text, cached by the text: a Policy is immutable, and every ciphertext
    under one cover repeats the same text. A canonical AND/OR text (what every ciphertext carries)
    takes the fast path; anything else, and anything at a limit, the full parser.
    Errors are not cached (lru_cache stores only returned values)."""
    return _parse_canonical(text) or Policy(_Parser(text).parse())


# The canonical text of an AND/OR policy (what str(Policy) prints) has only these tokens: parentheses,
# " and ", " or " (one space each side) and lower-case attributes that end at a non-attribute
# character, so each run between separators is exactly one attribute (at most 128 characters, not a keyword).
_NAME_CHAR = r"[a-z0-9:_\-./]"
_CANONICAL_NAME = rf"(?!(?:and|or|of)(?!{_NAME_CHAR}))[a-z]{_NAME_CHAR}{{0,{MAX_ATTRIBUTE_LENGTH - 1}}}(?!{_NAME_CHAR})"
_CANONICAL_TOKENS = re.compile(rf"(?:[()]| and | or |{_CANONICAL_NAME})*")
_PARENTHESES = re.compile(r"([()])")
_AND, _OR = " and ", " or "


def _parse_canonical(text: str) -> Policy | None:
    """The Policy of a canonical AND/OR text, or None to leave the text to the full parser.

    The same tree as ``_Parser`` (tests/abe/test_canonical_parse.py compares them on random trees,
    real cover policies and edited texts), built from C-level scans: one regex match over the
    text, a split at the parentheses, and ``str.split`` of each run between them on its one
    operator (a cover's 200-leaf OR is one run). Returns None for anything the canonical printer
    would not have written: upper case, other spacing, thresholds, a run mixing ``and`` and ``or``
    (the full parser would group it), redundant parentheses, a parenthesised gate of its parent's
    kind (the full parser would merge it), and texts past the leaf limit or at the depth limit,
    so the full parser's checks and positioned errors stay the only ones.
    """
    if not _CANONICAL_TOKENS.fullmatch(text):
        return None
    parts = _PARENTHESES.split(text)  # run, "(" or ")", run, ..., run
    stack: list[tuple[str | None, list[Node], list[str]]] = []
    op: str | None = None  # the operator of the gate being read, once seen
    children: list[Node] = []
    kinds: list[str] = []  # the operators of its parenthesised children
    leaves: list[str] = []
    after_close = False  # the run follows a ")", i.e. a parenthesised child
    last = len(parts) - 1
    for i in range(0, last + 1, 2):
        run = parts[i]
        opens = i < last and parts[i + 1] == "("
        if _AND in run:
            if op is _OR or _OR in run:
                return None
            op, pieces = _AND, run.split(_AND)
        elif _OR in run:
            if op is _AND:
                return None
            op, pieces = _OR, run.split(_OR)
        elif run:  # one attribute, alone between parentheses or the ends
            if after_close or opens:
                return None
            pieces = [run]
        elif after_close == opens:  # "()", ")(", or an empty text
            return None
        else:
            pieces = []
        if pieces:
            # An operator stands between every two children, so a run starts with an empty piece
            # exactly after a parenthesised child and ends with one exactly before the next.
            if (pieces[0] == "") != after_close or (pieces[-1] == "") != opens:
                return None
            names = pieces[1 if after_close else 0 : len(pieces) - 1 if opens else len(pieces)]
            if "" in names:
                return None
            leaves += names
            children += map(Attr, names)
        if opens:
            if len(stack) >= MAX_DEPTH - 2:  # the tree would reach MAX_DEPTH gates: the full parser checks
                return None
            stack.append((op, children, kinds))
            op, children, kinds = None, [], []
            after_close = False
        elif i < last:  # ")"
            if op is None or not stack or op in kinds:
                return None
            gate = Gate(len(children) if op is _AND else 1, tuple(children))
            inner, (op, children, kinds) = op, stack.pop()
            children.append(gate)
            kinds.append(inner)
            after_close = True
    if stack or len(leaves) > MAX_LEAVES or op in kinds:
        return None
    if op is None:
        if kinds:  # the whole text in parentheses
            return None
        root = children[0]
    else:
        root = Gate(len(children) if op is _AND else 1, tuple(children))
    return Policy._of_canonical(root, tuple(leaves), text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []  # (kind, value, position)
        for m in _TOKEN.finditer(text):
            if m.group(1):
                self.tokens.append((m.group(1), m.group(1), m.start(1)))
            elif m.group(2):
                self.tokens.append(("word", m.group(2), m.start(2)))
            elif m.group(3):
                self.fail(m.start(3), m.group(3), "character not allowed in a policy",
                          "attributes use letters, digits and ': _ - . /'; operators are and, or, k of (...)")
        self.tokens.append(("end", "", len(text)))
        self.i = 0
        self.leaf_count = 0

    def fail(self, position: int, token: str, why: str, hint: str | None = None) -> None:
        raise PolicySyntaxError(why, self.text, position, token, hint)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, why: str) -> tuple[str, str, int]:
        tok = self.take()
        if tok[0] != kind:
            self.unexpected(tok, why)
        return tok

    def unexpected(self, tok: tuple[str, str, int], why: str) -> None:
        if tok[0] == "end":
            self.fail(tok[2], "", f"unexpected end of policy: {why}")
        self.fail(tok[2], tok[1], f"unexpected {tok[1]!r}: {why}")

    def parse(self) -> Node:
        if self.peek()[0] == "end":
            self.fail(0, "", "the policy is empty", 'write e.g. "loc:riyadh and svc:health"')
        node = self.expr(0)
        tok = self.peek()
        if tok[0] != "end":
            why = "unbalanced ')'" if tok[0] == ")" else "expected 'and', 'or' or the end of the policy"
            self.fail(tok[2], tok[1], why)
        if _depth(node) > MAX_DEPTH:
            self.fail(0, self.tokens[0][1], f"policy nests deeper than {MAX_DEPTH} levels")
        return node

    def expr(self, depth: int) -> Node:
        items = [self.atom(depth)]
        ops: list[tuple[str, int]] = []
        while (tok := self.peek())[0] == "word" and tok[1].lower() in ("and", "or"):
            self.take()
            ops.append((tok[1].lower(), tok[2]))
            items.append(self.atom(depth))
        # Right-grouping, as in Charm: a run of one operator is one n-ary gate (what _gate's merging
        # of binary gates gives), built once, so a long AND/OR chain costs O(n), not O(n^2).
        node = items[-1]
        depth_of_node = _depth(node)
        kind, reversed_children, inner = "", [], 0
        for (op, pos), left in zip(reversed(ops), reversed(items[:-1])):
            if op != kind:
                if kind:
                    node = _chain(kind, reversed_children)
                kind, reversed_children = op, []
                inner = _merge_into(op, node, depth_of_node, reversed_children)
            inner = max(inner, _merge_into(op, left, _depth(left), reversed_children))
            depth_of_node = 1 + inner
            if depth_of_node > MAX_DEPTH:
                self.fail(pos, op, f"policy nests deeper than {MAX_DEPTH} levels", "flatten it or add parentheses")
        return _chain(kind, reversed_children) if kind else node

    def atom(self, depth: int) -> Node:
        kind, value, pos = tok = self.take()
        if kind == "(":
            if depth + 1 > MAX_DEPTH:
                self.fail(pos, value, f"policy nests deeper than {MAX_DEPTH} levels")
            node = self.expr(depth + 1)
            self.expect(")", f"expected ')' to close the '(' at position {pos}")
            return node
        if kind == "word" and value.isdigit():
            return self.threshold(tok, depth)
        if kind == "word":
            lower = value.lower()
            if lower in KEYWORDS:
                self.fail(pos, value, f"expected an attribute or '(' but found the keyword {lower!r}")
            if not _ATTRIBUTE.match(lower):
                self.fail(pos, value, "an attribute must start with a letter",
                          "write attributes like loc:riyadh; a number starts a threshold 'k of (...)'")
            if len(lower) > MAX_ATTRIBUTE_LENGTH:
                self.fail(pos, value, f"attribute longer than {MAX_ATTRIBUTE_LENGTH} characters")
            self.leaf_count += 1
            if self.leaf_count > MAX_LEAVES:
                self.fail(pos, value, f"policy has more than {MAX_LEAVES} attributes (leaves)")
            return Attr(lower)
        self.unexpected(tok, "expected an attribute, '(' or a threshold 'k of (...)'")
        raise AssertionError("unreachable")

    def threshold(self, tok: tuple[str, str, int], depth: int) -> Node:
        _, value, pos = tok
        of = self.take()
        if of[0] != "word" or of[1].lower() != "of":
            self.fail(pos, value, "a number must start a threshold 'k of (a, b, ...)'",
                      "attributes start with a letter")
        self.expect("(", "expected '(' after 'of'")
        if depth + 1 > MAX_DEPTH:
            self.fail(pos, value, f"policy nests deeper than {MAX_DEPTH} levels")
        children = [self.expr(depth + 1)]
        while self.peek()[0] == ",":
            self.take()
            children.append(self.expr(depth + 1))
        self.expect(")", "expected ',' or ')' in the threshold's list")
        k = int(value) if len(value) <= 4 else MAX_LEAVES + 1
        if not 1 <= k <= len(children):
            self.fail(pos, value, f"threshold {value} of a list of {len(children)}: it must be between 1 and {len(children)}")
        return _gate(k, children)
