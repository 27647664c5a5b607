"""The fast path for canonical AND/OR texts (policy._parse_canonical) against the full parser.

Every ciphertext carries its policy's canonical text, and a node decrypting a
file under a cover it has not seen parses that text first; the fast path must
build exactly what the full parser builds (tree, leaves, text, hence LSSS
rows and reconstruction) or decline, and a declined or malformed text must
fail exactly as before.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogfed.abe import PolicySyntaxError, parse_policy
from fogfed.abe.lsss import LEWKO_WATERS, THRESHOLD, lsss_matrix, reconstruction
from fogfed.abe.policy import MAX_DEPTH, Policy, _parse_canonical, _Parser, _parse_text
from fogfed.keys.cover import cover, key_path
from fogfed.protocol.attributes import (
    cover_clause,
    federations_policy,
    generation_height,
    node_attributes,
    scoped_policy,
)


def full(text: str) -> Policy:
    """The full parser's Policy, bypassing the fast path and the cache."""
    return Policy(_Parser(text).parse())


def assert_same(fast: Policy, text: str) -> None:
    ref = full(text)
    assert fast.root == ref.root
    assert fast.leaves() == ref.leaves()
    assert str(fast) == str(ref) == text
    assert fast == ref and hash(fast) == hash(ref)
    assert fast.occurrences() == ref.occurrences()
    for mode in (LEWKO_WATERS, THRESHOLD):
        assert lsss_matrix(fast, mode).rows == lsss_matrix(ref, mode).rows


# AND/OR trees over a universe with look-alikes of the keywords, printed by the library (canonical).
NAMES = ["a", "b", "an", "andy", "ord", "o", "of1", "x.y/z-w_v", "loc:riyadh", "ct:1:0:17", "a" * 128]
_trees = st.recursive(
    st.sampled_from(NAMES),
    lambda kids: st.tuples(st.sampled_from([" and ", " or "]), st.lists(kids, min_size=2, max_size=5)).map(
        lambda t: t[0].join(f"({c})" for c in t[1])),
    max_leaves=40,
)


@given(_trees)
@settings(max_examples=250, deadline=None)
def test_random_and_or_policies_take_the_fast_path_and_match_the_full_parser(text):
    canonical = str(full(text))
    fast = _parse_canonical(canonical)
    assert fast is not None, canonical
    assert_same(fast, canonical)


def _cover_policies() -> dict[str, str]:
    """Upload policies as fogfed writes them, by a short id: one federation, two, a scoped user policy."""
    rng = random.Random(2026)
    out = {}
    for n in (1, 2, 5, 100, 1000, 16_384, 100_000):
        for revoked in (0, 1, 16, 64):
            height = generation_height(n)
            gone = rng.sample(range(n), min(revoked, n - 1))
            nodes = cover(height, gone, n, root=False)
            if len(nodes) > 220:  # past the 256-leaf limit with the second federation's cover
                continue
            clauses = {1: cover_clause(1, 1, nodes), 7: cover_clause(7, 2, cover(height, gone[:3], n, root=False))}
            out[f"N{n}-r{revoked}-one"] = federations_policy("riyadh", "health", {1: clauses[1]})
            out[f"N{n}-r{revoked}-two"] = federations_policy("jeddah", "health", clauses)
            out[f"N{n}-r{revoked}-scoped"] = scoped_policy("loc:riyadh and (svc:health or svc:lab)", clauses)
    return out


COVER_POLICIES = _cover_policies()


@pytest.mark.parametrize("written", COVER_POLICIES.values(), ids=COVER_POLICIES.keys())
def test_real_cover_policies_read_from_ciphertexts_take_the_fast_path(written):
    canonical = str(full(written))  # what a ciphertext carries
    fast = _parse_canonical(canonical)
    assert fast is not None
    assert_same(fast, canonical)


def test_reconstruction_on_a_fast_parse_picks_the_covered_members_row():
    n = 16_384
    height = generation_height(n)
    gone = random.Random(5).sample(range(n), 16)
    nodes = cover(height, gone, n, root=False)
    text = str(full(federations_policy("riyadh", "health", {1: cover_clause(1, 1, nodes)})))
    fast, ref = _parse_canonical(text), full(text)
    for leaf in [0, 1, 8191, n - 1, *gone]:
        key = node_attributes("riyadh", "health", 1, leaf, 1, height)
        got = reconstruction(fast, key)
        assert got == reconstruction(ref, key)
        assert (got is None) == (leaf in gone)
        if got is not None:  # loc, svc, ff and exactly one cover node on the member's path
            used = [fast.leaves()[i] for i, _ in got]
            assert len(used) == 4 and sum(a.startswith("ct:") for a in used) == 1
            assert {a for a in used if a.startswith("ct:")} <= {f"ct:1:1:{v}" for v in key_path(leaf, height)}


@pytest.mark.parametrize("text", [
    "a and b or c",            # mixed run: the full parser groups it to the right
    "(a or b) or c",           # a gate in parentheses of its parent's kind: merged
    "a and (b and c)",
    "(a)", "((a and b))", "(a and b)", "a and ((b or c))",
    "A and b", "a  and b", " a and b", "a and b ", "a\tand b", "a and\nb",
    "2 of (a, b, c)", "a and (2 of (a, b, c))",
    "a or", "or a", "a or or b", "and", "a and ()", "()", "", "a)(b", "(a or b)(c or d)", "a (b or c)",
    "(a or b) c", "a and (b or c", "a and b)", "1a or b", "a or " + "b" * 129, "a,b",
])
def test_anything_else_is_left_to_the_full_parser(text):
    assert _parse_canonical(text) is None
    try:
        ref = full(text)
    except PolicySyntaxError as e:
        _parse_text.cache_clear()
        with pytest.raises(PolicySyntaxError) as info:
            parse_policy(text)
        assert (info.value.position, info.value.token, info.value.reason) == (e.position, e.token, e.reason)
    else:
        assert parse_policy(text) == ref and parse_policy(text).root == ref.root


def _alternating(depth: int) -> str:
    """A canonical text whose tree is ``depth`` gates deep (and, or, and, ... each holding a leaf)."""
    def op(d: int) -> str:
        return " and " if d % 2 else " or "

    text = f"x{depth}{op(depth)}y{depth}"
    for d in range(depth - 1, 0, -1):
        text = f"x{d}{op(d)}({text})"
    return text


def test_limits_stay_the_full_parsers():
    for depth in (1, 2, 3, 10, MAX_DEPTH):
        assert str(full(_alternating(depth))) == _alternating(depth) and full(_alternating(depth)).depth() == depth
    for depth in (MAX_DEPTH - 2, MAX_DEPTH - 1):
        fast = _parse_canonical(_alternating(depth))
        assert fast is not None and fast.depth() == depth
        assert_same(fast, _alternating(depth))
    for depth in (MAX_DEPTH, MAX_DEPTH + 1, 40):  # at or past the limit: the full parser decides
        assert _parse_canonical(_alternating(depth)) is None
    with pytest.raises(PolicySyntaxError, match="deeper than 32"):
        parse_policy(_alternating(MAX_DEPTH + 1))
    parse_policy(_alternating(MAX_DEPTH))
    many = " or ".join(f"x{i}" for i in range(257))
    assert _parse_canonical(many) is None
    with pytest.raises(PolicySyntaxError, match="more than 256") as info:
        parse_policy(many)
    assert info.value.token == "x256"
    assert _parse_canonical(" or ".join(f"x{i}" for i in range(256))) is not None


_ALPHABET = "ab() andor,2ofA\t"


@given(st.text(alphabet=_ALPHABET, max_size=30))
@settings(max_examples=600, deadline=None)
def test_the_fast_path_accepts_only_what_the_full_parser_prints(text):
    fast = _parse_canonical(text)
    if fast is not None:
        assert_same(fast, text)


@given(_trees, st.data())
@settings(max_examples=250, deadline=None)
def test_one_edit_of_a_canonical_text_is_either_canonical_or_declined(text, data):
    canonical = str(full(text))
    i = data.draw(st.integers(0, len(canonical)))
    edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    char = data.draw(st.sampled_from(list("() aorndb,:X\t")))
    if edit == "insert":
        mutated = canonical[:i] + char + canonical[i:]
    elif edit == "delete":
        mutated = canonical[:i] + canonical[i + 1:]
    else:
        mutated = canonical[:i] + char + canonical[i + 1:]
    fast = _parse_canonical(mutated)
    if fast is not None:
        assert_same(fast, mutated)


def test_a_revoked_member_rewriting_the_policy_text_of_a_ciphertext_gains_nothing():
    """The attacker's side: the policy field of a real cover ciphertext, edited to name the attacker's own tree node."""
    from fogfed import abe

    pk, msk = abe.setup()
    n, gone = 1024, [5, 700]
    height = generation_height(n)
    attacker = abe.keygen(pk, msk, node_attributes("riyadh", "health", 1, 5, 1, height))
    member = abe.keygen(pk, msk, node_attributes("riyadh", "health", 1, 6, 1, height))
    policy = federations_policy("riyadh", "health", {1: cover_clause(1, 1, cover(height, gone, n, root=False))})
    ct = abe.encrypt(pk, policy, b"file key", aad=b"file")
    assert abe.decrypt(pk, member, ct, aad=b"file") == b"file key"
    at = 7 + 16  # header, system fingerprint, then the policy text (2-byte length)
    size = int.from_bytes(ct[at : at + 2], "big")
    text = ct[at + 2 : at + 2 + size].decode()

    def with_policy(new: str) -> bytes:
        data = new.encode()
        return ct[:at] + len(data).to_bytes(2, "big") + data + ct[at + 2 + size :]

    covering = [a for a in parse_policy(text).leaves() if a.startswith("ct:")]
    mine = next(f"ct:1:1:{v}" for v in key_path(5, height) if f"ct:1:1:{v}" not in covering)
    forged = text.replace(covering[0], mine, 1)  # canonical, same leaf count: the fast path parses it
    assert _parse_canonical(forged) is not None
    with pytest.raises(abe.DecryptionError):  # the rows were made for the real policy; the header is bound
        abe.decrypt(pk, attacker, with_policy(forged), aad=b"file")
    with pytest.raises(abe.PolicyNotSatisfied):
        abe.decrypt(pk, attacker, ct, aad=b"file")
    # Non-canonical spellings of the same policy (what the fast path declines) are refused when read.
    for edited in (text.upper(), text.replace(" or ", "  or ", 1), text.replace(" or ", " OR ", 1),
                   f"({text})", text.replace(covering[0], f"({covering[0]})", 1),
                   text.replace(f"{covering[0]} or ", f"({covering[0]} or {covering[1]}) or ", 1).replace(
                       f" or {covering[1]} or", " or", 1)):
        assert _parse_canonical(edited) is None
        with pytest.raises(abe.MalformedError, match="canonical|not a valid policy"):
            abe.Ciphertext.from_bytes(with_policy(edited))
