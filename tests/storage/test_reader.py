"""Hostile DAGs: blocks whose hashes are right but whose structure lies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogfed.errors import InputError
from fogfed.storage import ContentCorrupted
from fogfed.storage.cids import DAG_PB, RAW, make_cid
from fogfed.storage.dagpb import (UNIXFS_DIRECTORY, UNIXFS_FILE, Link, PBNode, UnixFSData, decode_pbnode,
                                  decode_unixfs, encode_pbnode, encode_unixfs)
from fogfed.storage.reader import MAX_DEPTH, read_file


class Dag(dict):
    """Blocks by CID, built by hand."""

    def put(self, raw: bytes, codec: int = DAG_PB, version: int = 0):
        cid = make_cid(raw, codec, version)
        self[cid] = raw
        return cid

    def leaf(self, data: bytes):
        return self.put(encode_pbnode(PBNode(data=encode_unixfs(UnixFSData(UNIXFS_FILE, data, len(data))))))

    def node(self, children, blocksizes, filesize=None, kind=UNIXFS_FILE):
        links = [Link(bytes(c), len(self[c])) for c in children]
        return self.put(encode_pbnode(PBNode(links, encode_unixfs(UnixFSData(kind, b"", filesize, blocksizes)))))

    def read(self, root) -> bytes:
        return b"".join(read_file(root, self.__getitem__))


def test_honest_hand_built_dag_reads_back():
    dag = Dag()
    a, b = dag.leaf(b"abc"), dag.leaf(b"defg")
    assert dag.read(dag.node([a, b], [3, 4], 7)) == b"abcdefg"


@pytest.mark.parametrize("blocksizes, filesize", [([3, 5], 8), ([3, 4], 9), ([3], 3), ([3, 4, 1], 8)])
def test_sizes_that_disagree_with_the_data_are_corruption(blocksizes, filesize):
    dag = Dag()
    a, b = dag.leaf(b"abc"), dag.leaf(b"defg")
    with pytest.raises(ContentCorrupted):
        dag.read(dag.node([a, b], blocksizes, filesize))


def test_raw_leaf_of_the_wrong_size_is_corruption():
    dag = Dag()
    leaf = dag.put(b"12345", RAW, 1)
    with pytest.raises(ContentCorrupted, match="declares 4 bytes"):
        dag.read(dag.node([leaf], [4], 4))


def test_directory_is_not_a_file():
    dag = Dag()
    with pytest.raises(InputError, match="not a file"):
        dag.read(dag.node([], [], None, kind=UNIXFS_DIRECTORY))


def test_garbage_block_under_a_valid_hash_is_corruption():
    dag = Dag()
    with pytest.raises(ContentCorrupted, match="malformed"):
        dag.read(dag.put(b"\xff\xff\xff"))


def test_link_to_an_unsupported_cid_is_corruption():
    dag = Dag()
    raw = encode_pbnode(PBNode([Link(b"\x01\x71\x12\x20" + bytes(32), 10)],
                               encode_unixfs(UnixFSData(UNIXFS_FILE, b"", 10, [10]))))
    with pytest.raises(ContentCorrupted, match="unsupported"):
        dag.read(dag.put(raw))


def test_block_swapped_under_another_cid_is_detected():
    dag = Dag()
    a, b = dag.leaf(b"abc"), dag.leaf(b"xyz")
    root = dag.node([a], [3], 3)
    dag[a] = dag[b]  # a store that answers with the wrong block
    with pytest.raises(ContentCorrupted, match=str(a)):
        dag.read(root)


def test_overly_deep_dag_is_refused():
    dag = Dag()
    cid = dag.leaf(b"x")
    for _ in range(MAX_DEPTH + 1):
        cid = dag.node([cid], [1], 1)
    with pytest.raises(ContentCorrupted, match="deeper"):
        dag.read(cid)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_decoders_reject_garbage_with_value_error_only(raw):
    for decode in (decode_pbnode, decode_unixfs):
        try:
            decode(raw)
        except ValueError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.integers(0, 2**40)), max_size=5),
       st.binary(max_size=50))
def test_pbnode_encoding_round_trips(links, data):
    node = PBNode([Link(c, t) for c, t in links], data)
    assert decode_pbnode(encode_pbnode(node)) == node
