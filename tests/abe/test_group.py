"""The group layer: encodings are validated (curve, subgroup, length, canonical form, identity)."""

from __future__ import annotations

import pytest

from fogfed.abe import MalformedError
from fogfed.abe.group import G1_SIZE, G2_SIZE, GT_SIZE, ORDER, group
from tests.abe import curve


def test_encoding_layout_matches_the_crafting_helper():
    # Positive controls: the helper's reading of mcl's format yields points on the curves.
    x = curve.decode_x(group.encode(group.g1))
    assert curve.is_square(curve.g1_rhs(x))
    raw = group.encode(group.g2 * group.random_scalar())
    x2 = (int.from_bytes(raw[:48], "little"), curve.decode_x(raw[48:]))
    assert curve.fp2_is_square(curve.g2_rhs(x2))


def test_g1_point_outside_subgroup_is_rejected_but_its_cofactor_multiple_is_accepted():
    point = curve.g1_point_outside_subgroup()
    for flag in (0, curve.FLAG):
        with pytest.raises(MalformedError, match="not a valid G1 element"):
            group.decode_g1(curve.encode_x(point[0], flag), "test point")
    # Positive control: the cofactor multiple is in the subgroup; with both signs of y it
    # decodes to P and -P (here x = 4 even gives the standard generator, +-g1).
    cleared = curve.mul(point, curve.G1_COFACTOR)
    both = [group.decode_g1(curve.encode_x(cleared[0], flag), "cleared point") for flag in (0, curve.FLAG)]
    assert both[0] == -both[1]
    assert group.g1 in both


def test_off_curve_points_are_rejected():
    for flag in (0, curve.FLAG):
        with pytest.raises(MalformedError):
            group.decode_g1(curve.encode_x(curve.g1_x_off_curve(), flag), "x")
        with pytest.raises(MalformedError):
            group.decode_g2(curve.encode_g2_x(curve.g2_x_off_curve(), flag), "x")


def test_g2_point_outside_subgroup_is_rejected():
    x = curve.g2_x_on_curve_outside_subgroup()
    for flag in (0, curve.FLAG):
        with pytest.raises(MalformedError, match="not a valid G2 element"):
            group.decode_g2(curve.encode_g2_x(x, flag), "test point")


def test_non_canonical_and_wrong_length_encodings_are_rejected():
    good = group.encode(group.g1)
    x = curve.decode_x(good)
    with pytest.raises(MalformedError):
        group.decode_g1(curve.encode_x(x + curve.P, good[-1] & curve.FLAG), "x + p")
    with pytest.raises(MalformedError, match="48 bytes, got 49"):
        group.decode_g1(good + b"\x00", "long")  # mcl itself would ignore the extra byte
    with pytest.raises(MalformedError, match="48 bytes, got 47"):
        group.decode_g1(good[:-1], "short")
    with pytest.raises(MalformedError):
        group.decode_g2(group.encode(group.g2)[:-1] + b"\xff", "g2")
    with pytest.raises(MalformedError):
        group.decode_scalar(ORDER.to_bytes(32, "little"), "r itself")
    with pytest.raises(MalformedError, match="zero"):
        group.decode_scalar(bytes(32), "zero")


def test_identities_are_rejected():
    with pytest.raises(MalformedError, match="identity"):
        group.decode_g1(bytes(G1_SIZE), "zero")
    with pytest.raises(MalformedError, match="identity"):
        group.decode_g2(bytes(G2_SIZE), "zero")
    with pytest.raises(MalformedError, match="identity"):
        group.decode_gt(group.encode(group.gt_one), "one")


def test_gt_elements_outside_the_order_r_subgroup_are_rejected():
    two = bytearray(GT_SIZE)
    two[0] = 2  # the constant 2 of Fp12: on no pairing's image, mcl deserialises it anyway
    with pytest.raises(MalformedError, match="subgroup of GT"):
        group.decode_gt(bytes(two), "two")
    e = group.pairing(group.g1, group.g2)
    assert group.decode_gt(group.encode(e), "e(g1, g2)") == e


def test_pairing_is_bilinear_and_non_degenerate():
    a, b = group.random_scalar(), group.random_scalar()
    e = group.pairing(group.g1, group.g2)
    assert not e.is_one()
    assert group.pairing(group.g1 * a, group.g2 * b) == e ** (a * b)


def test_random_scalars_are_distinct_and_in_range():
    values = {group.scalar_to_int(group.random_scalar()) for _ in range(200)}
    assert len(values) == 200
    assert all(0 < v < ORDER for v in values)


def test_scalar_reduces_any_integer():
    assert group.scalar_to_int(group.scalar(-1)) == ORDER - 1
    assert group.scalar_to_int(group.scalar(ORDER + 5)) == 5
