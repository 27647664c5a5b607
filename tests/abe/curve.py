"""Plain-Python BLS12-381 arithmetic, independent of pymcl, to craft invalid encodings.

mcl's compressed encoding (checked against the generators in test_group.py):
x little-endian (G2: x0 then x1, 48 bytes each), and the top bit of the last
byte holds a flag for y's sign.
"""

from __future__ import annotations

P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
G1_COFACTOR = 0x396C8C005555E1568C00AAAB0000AAAB
FLAG = 0x80


def is_square(a: int) -> bool:
    return a % P == 0 or pow(a, (P - 1) // 2, P) == 1


def sqrt(a: int) -> int:
    return pow(a, (P + 1) // 4, P)  # P = 3 mod 4


def g1_rhs(x: int) -> int:
    return (x * x * x + 4) % P


def add(p1, p2):
    """Affine addition on y^2 = x^3 + 4 (None is the point at infinity)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        lam = 3 * x1 * x1 * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def mul(point, n: int):
    acc = None
    for bit in bin(n)[2:]:
        acc = add(acc, acc)
        if bit == "1":
            acc = add(acc, point)
    return acc


def encode_x(x: int, flag: int) -> bytes:
    raw = bytearray(x.to_bytes(48, "little"))
    raw[-1] |= flag
    return bytes(raw)


def g1_point_outside_subgroup():
    """A point on the G1 curve whose order is not r (found by scanning x)."""
    x = 1
    while not is_square(g1_rhs(x)):
        x += 1
    return x, sqrt(g1_rhs(x))


def g1_x_off_curve() -> int:
    x = 1
    while is_square(g1_rhs(x)):
        x += 1
    return x


# G2: y^2 = x^3 + 4(1 + u) over Fp2 = Fp[u]/(u^2 + 1); elements are (c0, c1).
def fp2_mul(a, b):
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def g2_rhs(x):
    x3 = fp2_mul(fp2_mul(x, x), x)
    return ((x3[0] + 4) % P, (x3[1] + 4) % P)


def fp2_is_square(a) -> bool:
    return is_square((a[0] * a[0] + a[1] * a[1]) % P)  # a is a square iff its norm is


def g2_x_on_curve_outside_subgroup():
    x = (1, 1)
    while not fp2_is_square(g2_rhs(x)):
        x = (x[0] + 1, 1)
    return x


def g2_x_off_curve():
    x = (1, 1)
    while fp2_is_square(g2_rhs(x)):
        x = (x[0] + 1, 1)
    return x


def encode_g2_x(x, flag: int) -> bytes:
    raw = bytearray(x[0].to_bytes(48, "little") + x[1].to_bytes(48, "little"))
    raw[-1] |= flag
    return bytes(raw)


def decode_x(data: bytes) -> int:
    raw = bytearray(data)
    raw[-1] &= 0xFF ^ FLAG
    return int.from_bytes(raw, "little")
