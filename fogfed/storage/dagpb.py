"""The two protobuf messages of a UnixFS file: dag-pb PBNode and UnixFS Data.

Hand-rolled because they are tiny and the encoding must match Kubo's byte for
byte: links before data, an empty link Name still written, blocksizes unpacked.
Decoding is strict (unknown fields, truncated or overlong values are rejected)
because blocks come from untrusted storage; callers turn ValueError into
ContentCorrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNIXFS_RAW, UNIXFS_DIRECTORY, UNIXFS_FILE = 0, 1, 2
_VARINT, _LEN = 0, 2
_MAX_VARINT_BYTES = 10


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field_no: int, wire: int) -> bytes:
    return varint(field_no << 3 | wire)


def _len_field(field_no: int, payload: bytes) -> bytes:
    return _key(field_no, _LEN) + varint(len(payload)) + payload


def _int_field(field_no: int, n: int) -> bytes:
    return _key(field_no, _VARINT) + varint(n)


@dataclass
class Link:
    cid: bytes  # binary CID
    tsize: int  # size of the linked block plus everything below it
    name: str = ""


@dataclass
class PBNode:
    links: list[Link] = field(default_factory=list)
    data: bytes | None = None


@dataclass
class UnixFSData:
    type: int
    data: bytes = b""
    filesize: int | None = None
    blocksizes: list[int] = field(default_factory=list)


def encode_unixfs(d: UnixFSData) -> bytes:
    out = [_int_field(1, d.type)]
    if d.data:
        out.append(_len_field(2, d.data))
    if d.filesize is not None:
        out.append(_int_field(3, d.filesize))
    out.extend(_int_field(4, n) for n in d.blocksizes)
    return b"".join(out)


def encode_pbnode(node: PBNode) -> bytes:
    out = []
    for link in node.links:
        body = _len_field(1, link.cid) + _len_field(2, link.name.encode()) + _int_field(3, link.tsize)
        out.append(_len_field(2, body))
    if node.data is not None:
        out.append(_len_field(1, node.data))
    return b"".join(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos + i]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos + i + 1
        shift += 7
    raise ValueError("varint too long")


def _fields(buf: bytes):
    """Yield (field number, wire type, value) with value an int or a bytes slice."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("length-delimited field runs past the end of the block")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field_no, wire, value


def _expect(wire: int, want: int, what: str) -> None:
    if wire != want:
        raise ValueError(f"{what} has the wrong protobuf wire type")


def decode_pbnode(buf: bytes) -> PBNode:
    node = PBNode()
    for field_no, wire, value in _fields(buf):
        if field_no == 2:
            _expect(wire, _LEN, "PBNode.Links")
            node.links.append(_decode_link(value))
        elif field_no == 1:
            _expect(wire, _LEN, "PBNode.Data")
            if node.data is not None:
                raise ValueError("PBNode.Data appears twice")
            node.data = bytes(value)
        else:
            raise ValueError(f"unknown PBNode field {field_no}")
    return node


def _decode_link(buf: bytes) -> Link:
    cid, name, tsize = None, "", 0
    for field_no, wire, value in _fields(buf):
        if field_no == 1:
            _expect(wire, _LEN, "PBLink.Hash")
            cid = bytes(value)
        elif field_no == 2:
            _expect(wire, _LEN, "PBLink.Name")
            name = value.decode("utf-8", errors="replace")
        elif field_no == 3:
            _expect(wire, _VARINT, "PBLink.Tsize")
            tsize = value
        else:
            raise ValueError(f"unknown PBLink field {field_no}")
    if cid is None:
        raise ValueError("PBLink without a Hash")
    return Link(cid, tsize, name)


def decode_unixfs(buf: bytes) -> UnixFSData:
    d = UnixFSData(type=-1)
    for field_no, wire, value in _fields(buf):
        if field_no == 1:
            _expect(wire, _VARINT, "UnixFS Type")
            d.type = value
        elif field_no == 2:
            _expect(wire, _LEN, "UnixFS Data")
            d.data = bytes(value)
        elif field_no == 3:
            _expect(wire, _VARINT, "UnixFS filesize")
            d.filesize = value
        elif field_no == 4:
            if wire == _VARINT:
                d.blocksizes.append(value)
            else:  # packed form, allowed by proto2 parsers
                pos = 0
                while pos < len(value):
                    n, pos = _read_varint(value, pos)
                    d.blocksizes.append(n)
        elif field_no in (5, 6, 7, 8):  # hashType, fanout, mode, mtime: no effect on file bytes
            continue
        else:
            raise ValueError(f"unknown UnixFS field {field_no}")
    if d.type < 0:
        raise ValueError("UnixFS Data without a Type")
    return d
