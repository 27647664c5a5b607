"""fogfed's binding over mcl's C API against pymcl's own operations, on random inputs."""

from __future__ import annotations

import os

import pymcl
import pytest

from fogfed.abe import mcl
from tests.abe import curve


def _pymcl(value):
    kind = {mcl.G1: pymcl.G1, mcl.G2: pymcl.G2, mcl.GT: pymcl.GT, mcl.Fr: pymcl.Fr}[type(value)]
    return kind.deserialize(value.serialize())


@pytest.fixture(scope="module")
def gens():
    return mcl.from_pymcl(pymcl.g1), mcl.from_pymcl(pymcl.g2)


def test_pairing_and_multi_pairing_equal_pymcls_pairings(gens):
    g1, g2 = gens
    for n in (1, 2, 3, 6, 11):
        pairs = [(g1 * mcl.random_fr(), g2 * mcl.random_fr()) for _ in range(n)]
        expected = pymcl.GT()
        for a, b in pairs:
            expected = expected * pymcl.pairing(_pymcl(a), _pymcl(b))
        assert mcl.pairing_product(pairs).serialize() == expected.serialize()
        a, b = pairs[0]
        assert mcl.pairing(a, b).serialize() == pymcl.pairing(_pymcl(a), _pymcl(b)).serialize()
    assert mcl.pairing_product([]).is_one()


def test_group_operations_equal_pymcls(gens):
    g1, g2 = gens
    for _ in range(5):
        x, y = mcl.random_fr(), mcl.random_fr()
        px, py = _pymcl(x), _pymcl(y)
        assert (x * y).serialize() == (px * py).serialize() and (x + y).serialize() == (px + py).serialize()
        assert (x - y).serialize() == (px - py).serialize() and (~x).serialize() == (~px).serialize()
        assert (-x).serialize() == (-px).serialize()
        for g, pg in ((g1, pymcl.g1), (g2, pymcl.g2)):
            assert (g * x).serialize() == (pg * px).serialize()
            assert (g * x + g * y).serialize() == (pg * px + pg * py).serialize()
            assert (g * x - g * y).serialize() == (pg * px - pg * py).serialize()
            assert (-(g * x)).serialize() == (-(pg * px)).serialize()
        e = mcl.pairing(g1, g2)
        pe = pymcl.pairing(pymcl.g1, pymcl.g2)
        assert (e**x).serialize() == (pe**px).serialize()
        assert ((e**x) * (e**y)).serialize() == ((pe**px) * (pe**py)).serialize()
        assert ((e**x) / (e**y)).serialize() == ((pe**px) / (pe**py)).serialize()
        label = os.urandom(20)
        assert mcl.G1.hash(label).serialize() == pymcl.G1.hash(label).serialize()
        assert mcl.G2.hash(label).serialize() == pymcl.G2.hash(label).serialize()
        value = int.from_bytes(os.urandom(40), "little")
        assert int(mcl.Fr.from_int(value)) == value % pymcl.r


def test_decoding_without_the_implicit_subgroup_test(gens):
    g1, g2 = gens
    for point, cls in ((g1 * mcl.random_fr(), mcl.G1), (g2 * mcl.random_fr(), mcl.G2)):
        for p in (point, -point):
            assert mcl.decode_on_curve(cls, p.serialize()) == p
    x, y = curve.g1_point_outside_subgroup()
    outside = mcl.decode_on_curve(mcl.G1, curve.encode_x(x, 0)) or mcl.decode_on_curve(mcl.G1, curve.encode_x(x, 0x80))
    assert outside is not None and not outside.is_valid_order() and mcl.is_on_curve(outside)
    assert not mcl.is_in_group(outside) and mcl.is_in_group(g1)
    assert mcl.decode_on_curve(mcl.G1, curve.encode_x(curve.g1_x_off_curve(), 0)) is None
    assert mcl.decode_on_curve(mcl.G2, curve.encode_g2_x(curve.g2_x_off_curve(), 0)) is None
    # uncompressed rows: round trip, sums, and a point off the curve
    pts = [g1 * mcl.random_fr() for _ in range(4)]
    enc = mcl.encode_affine_g1(pts)
    assert [mcl.decode_affine_g1(e) for e in enc] == pts
    two = mcl.Fr.from_int(2)
    assert mcl.combine_affine_g1(enc, [None, two, None, None]) == pts[0] + pts[1] * two + pts[2] + pts[3]
    off = enc[0][:48] + (int.from_bytes(enc[0][48:], "little") ^ 1).to_bytes(48, "little")
    assert mcl.decode_affine_g1(off) is None
    assert not mcl.is_in_group(mcl.combine_affine_g1([off], [None]))
    assert mcl.combine_affine_g1([b"\xff" * 96], [None]) is None  # not canonical (>= p)


def test_pinned_library_and_threads(gens):
    """The binding is tied to pymcl 1.0.2's mcl (bn.h layouts checked at import); it holds no global state."""
    from concurrent.futures import ThreadPoolExecutor
    from importlib.metadata import version

    assert version("pymcl") == "1.0.2" and mcl.lib.mclBn_getVersion() == 0x304  # upgrade: re-run these tests
    g1, g2 = gens
    pairs = [(g1 * mcl.random_fr(), g2 * mcl.random_fr()) for _ in range(4)]
    expected = mcl.pairing_product(pairs).serialize()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: mcl.pairing_product(pairs).serialize(), range(16)))
    assert results == [expected] * 16
