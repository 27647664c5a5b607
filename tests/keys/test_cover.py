"""Complete-subtree cover: exactly the allowed leaves, never an excluded one, NNL's size bound."""

import math
import random

import pytest

from fogfed.errors import InputError
from fogfed.keys.cover import cover, covered, leaves_of, path


def _leaves(nodes, height):
    out = []
    for n in nodes:
        out.extend(leaves_of(n, height))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_cover_is_exactly_the_allowed_leaves(seed):
    rnd = random.Random(seed)
    height = rnd.randint(0, 7)
    size = 1 << height
    assigned = rnd.choice([None, rnd.randint(0, size)])
    end = size if assigned is None else assigned
    revoked = set(rnd.sample(range(size), rnd.randint(0, size)))
    nodes = cover(height, revoked, assigned)
    got = _leaves(nodes, height)
    assert len(got) == len(set(got))  # disjoint subtrees
    assert set(got) == {x for x in range(end) if x not in revoked}
    for x in range(size):  # an excluded leaf's path never meets the cover
        assert covered(nodes, x, height) == (x < end and x not in revoked)


def test_nnl_size_bound():
    height, size = 14, 1 << 14
    for r in (1, 2, 16, 100):
        revoked = random.Random(r).sample(range(size), r)
        assert len(cover(height, revoked)) <= r * math.log2(size / r)
    # unassigned suffix adds at most `height` nodes
    assert len(cover(height, [], 12345)) <= height
    assert cover(height, []) == [1]
    assert cover(height, [], 0) == []


def test_path_and_bad_input():
    assert path(0, 2) == [4, 2, 1]
    assert path(3, 2) == [7, 3, 1]
    with pytest.raises(InputError):
        path(4, 2)
    with pytest.raises(InputError):
        cover(3, [], 9)
    with pytest.raises(InputError):
        cover(-1, [])


@pytest.mark.parametrize("seed", range(30))
def test_cover_without_the_root_matches_keys_without_it(seed):
    """fogfed's keys leave the root out (key_path); covers with root=False never need it, and still
    reach exactly the allowed leaves: each allowed key shares a node with the cover, no excluded one does."""
    from fogfed.keys.cover import key_path

    rnd = random.Random(seed)
    height = rnd.randint(1, 7)
    size = 1 << height
    revoked = set(rnd.sample(range(size), rnd.randint(0, 2))) if seed % 3 else set()
    assigned = None if seed % 2 else rnd.randint(0, size)
    nodes = cover(height, revoked, assigned, root=False)
    assert 1 not in nodes
    end = size if assigned is None else assigned
    for leaf in range(size):
        holds = set(key_path(leaf, height))
        assert 1 not in holds and len(holds) == height
        assert bool(holds & set(nodes)) == (leaf < end and leaf not in revoked)
    assert cover(height, [], None, root=False) == [2, 3] and cover(height, [], None) == [1]
    with pytest.raises(InputError):
        key_path(0, 0)


def test_generation_height_rule():
    from fogfed.protocol.attributes import FIRST_HEIGHT, MIN_HEIGHT, generation_height

    assert FIRST_HEIGHT == MIN_HEIGHT == 4
    assert [generation_height(m) for m in (0, 1, 7, 8, 15, 16, 100, 1000, 10_000, 100_000)] == \
        [4, 4, 4, 5, 5, 6, 8, 11, 15, 18]
    for m in range(0, 5000, 7):  # room for at least twice the members (and one more)
        assert 1 << generation_height(m) >= max(2 * m, m + 1)
    assert generation_height(2**40) == 32
    with pytest.raises(InputError):
        generation_height(-1)
