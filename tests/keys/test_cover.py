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
