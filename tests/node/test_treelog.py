"""The node's tree-event cache (fogfed.node.treelog): covers equal a full replay; a hostile edit never widens them."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from fogfed import abe
from fogfed.chain import connect
from fogfed.keys.keystore import KdfParams
from fogfed.node import FogNode
from fogfed.node.treelog import TREE_LOG, TreeEventCache, cache_key
from fogfed.protocol.files import cid_of_file_id, encsk_aad
from fogfed.protocol.membertree import TREE_EVENTS, MemberTree
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
PASS = "node passphrase"


@pytest.fixture
def world(tmp_path):
    chain = connect(None)
    accounts = chain.dev_accounts()
    store = EmbeddedStore(tmp_path / "store")
    tas = TrustedAuthority.init(tmp_path / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
    tas.use_store(store)  # refresh bundles
    nodes = []
    for i in range(3):
        node = FogNode.init(tmp_path / f"n{i}", chain, tas.contract_address, store, PASS, account=accounts[i + 1],
                            kdf=LIGHT)
        tas.enroll(node.enrollment_request("riyadh", "health"), approve=True)
        node.refresh_keys()
        node.close()  # a home's blob cache is one process's at a time: the tests open homes anew
        nodes.append(node)
    return chain, store, tas, nodes, tmp_path


def fresh(world, i: int = 0) -> FogNode:
    """The node's home opened anew, as by another process: nothing in memory, only the home's files."""
    chain, store, _, _, root = world
    return FogNode.open(root / f"n{i}", chain, store, PASS)


def full_replay(node: FogNode, fid: int = 1) -> MemberTree:
    """The tree from every event since the deployment, read from the chain now; compared without ``block``
    (when each state was last synced, bookkeeping that no cover depends on)."""
    return _state(MemberTree(fid).apply(node.fed.events(node.fed.deploy_block, node.fed.chain.block_number(),
                                                        TREE_EVENTS)))


def _state(tree: MemberTree) -> MemberTree:
    return replace(tree, block=0, past={g: replace(t, block=0) for g, t in tree.past.items()})


def test_covers_equal_a_full_replay_after_removals_and_a_refresh(world, tmp_path):
    chain, _, tas, nodes, root = world
    plain = tmp_path / "p.bin"
    plain.write_bytes(b"cover me" * 100)
    with fresh(world) as node:
        node.upload(plain)  # writes the cache
    for change in (lambda: tas.remove(nodes[2].address), lambda: tas.refresh(1), lambda: tas.remove(nodes[1].address)):
        head = chain.block_number()
        change()
        assert 0 <= _cached_block(root / "n0" / TREE_LOG) <= head
        node = fresh(world)
        tree = node.member_tree(1)
        assert _cached_block(root / "n0" / TREE_LOG) > head  # read, then extended with the change
        assert _state(tree) == full_replay(node)  # leaves, revocations, epochs, generations, the past ones too
        assert node._policy_for(None, 1)[:3] == (f"(ff:1) and ({tree.clause()})", *_descriptor(tree))
        result = node.upload(plain)
        assert node._covers_at(node.fed.events(names=["FileRegistered"], where={"fileId": result.file_id})[-1])[1] \
            == []
        node.close()
    with fresh(world) as node:
        assert node.member_tree(1).leaves == {nodes[0].address: 0}


def _descriptor(tree: MemberTree) -> tuple[str, int]:
    gen, epoch, assigned, _ = tree.descriptor()
    return f"(ff:1) and cover(1:{gen}:{epoch}:{assigned})", epoch


def _cached_block(path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT v FROM meta WHERE k = 'block'").fetchone()[0])


def _rows(path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r for (r,) in conn.execute("SELECT row FROM events ORDER BY seq")]


def _drop_removal(path) -> None:
    """The attacker's edit: the MemberRemoved deleted (its EpochAdvanced kept, so the epoch the contract
    checks is right and only the cover is wide), the row count fixed up."""
    with sqlite3.connect(path) as conn:
        gone = conn.execute("DELETE FROM events WHERE row LIKE '%MemberRemoved%'")
        assert gone.rowcount == 1
        conn.execute("UPDATE meta SET v = (SELECT COUNT(*) FROM events) WHERE k = 'rows'")


def _garbage(path) -> None:
    path.write_bytes(b"not a database at all" * 100)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize("attack", [_drop_removal, _garbage])
def test_hostile_edit_of_the_cache_never_lets_a_removed_member_read(world, tmp_path, attack):
    chain, store, tas, nodes, root = world
    removed = nodes[1]
    plain = tmp_path / "p.bin"
    plain.write_bytes(b"secret after the removal" * 50)
    tas.remove(removed.address)
    with fresh(world) as node:
        node.upload(plain)  # the cache now holds the removal
    path = root / "n0" / TREE_LOG
    rows = _rows(path)
    attack(path)
    if attack is _drop_removal:  # the edit would matter: the cut log gives the removed member its leaf back
        from fogfed.node.treelog import _decode
        cut = [_decode(r) for r in rows if "MemberRemoved" not in r]
        assert removed.address in MemberTree(1).apply(cut).leaves
    node = fresh(world)
    result = node.upload(plain)
    # from the attacker's side: the removed member's own key, straight at the encrypted file key
    encsk = b"".join(store.cat(cid_of_file_id(node.fed.file(result.file_id).enc_sk_ref)))
    aad = encsk_aad(chain.chain_id, node.fed.address, result.file_id)
    for sk in removed.keyring.candidates():
        with pytest.raises(abe.PolicyNotSatisfied):  # its leaf is outside the cover
            abe.decrypt(removed.public_key(1), sk, encsk, aad=aad)
    assert _state(node.member_tree(1)) == full_replay(node) and removed.address not in node.member_tree(1).leaves
    node.close()
    # and the cache is sound again: a later process reads it, authentic
    with fresh(world) as again:
        assert _state(again.member_tree(1)) == full_replay(again) and again._tree_cached_block >= 0


def test_older_authentic_copy_is_harmless(world, tmp_path):
    chain, _, tas, nodes, root = world
    plain = tmp_path / "p.bin"
    plain.write_bytes(b"x" * 100)
    with fresh(world) as node:
        node.upload(plain)
    path = root / "n0" / TREE_LOG
    old = path.read_bytes()  # (WAL checkpointed on close: the whole cache is in the main file)
    tas.remove(nodes[1].address)
    node = fresh(world)
    node.upload(plain)
    node.close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(old)  # rolled back to before the removal
    node = fresh(world)
    assert _state(node.member_tree(1)) == full_replay(node) and nodes[1].address not in node.member_tree(1).leaves
    node.close()


def test_cache_of_another_chain_or_a_reorganised_block_is_not_used(world, tmp_path):
    chain, _, _, nodes, _ = world
    fed = nodes[0].fed
    events = fed.events(fed.deploy_block, chain.block_number(), TREE_EVENTS)
    key = cache_key(nodes[0].account.key)
    path = tmp_path / "c.sqlite"
    cache = TreeEventCache(path, key, chain.chain_id, fed.address)
    head = chain.block_number()
    assert cache.load(chain.block_hash) == ([], -1)
    assert cache.extend(events, head, b"\x07" * 32)  # authentic, but its block is not this chain's
    assert TreeEventCache(path, key, chain.chain_id, fed.address).load(chain.block_hash) == ([], -1)
    cache = TreeEventCache(path, key, chain.chain_id, fed.address)
    cache.load(chain.block_hash)
    assert cache.extend(events, head, chain.block_hash(head))  # starts afresh over the unusable one
    assert TreeEventCache(path, key, chain.chain_id, fed.address).load(chain.block_hash) == (events, head)
    for other in (TreeEventCache(path, key, chain.chain_id + 1, fed.address),  # another chain id
                  TreeEventCache(path, key, chain.chain_id, "0x" + "11" * 20),  # another contract
                  TreeEventCache(path, cache_key(nodes[1].account.key), chain.chain_id, fed.address)):  # node
        assert other.load(chain.block_hash) == ([], -1)


def test_concurrent_extensions_lose_nothing(world, tmp_path):
    chain, _, tas, nodes, _ = world
    fed = nodes[0].fed
    key, path = cache_key(nodes[0].account.key), tmp_path / "c.sqlite"
    first_head = chain.block_number()
    first = fed.events(fed.deploy_block, first_head, TREE_EVENTS)
    TreeEventCache(path, key, chain.chain_id, fed.address).extend(first, first_head, chain.block_hash(first_head))
    a, b = (TreeEventCache(path, key, chain.chain_id, fed.address) for _ in range(2))
    assert a.load(chain.block_hash) == b.load(chain.block_hash) == (first, first_head)
    tas.remove(nodes[2].address)
    head = chain.block_number()
    later = fed.events(first_head + 1, head, TREE_EVENTS)
    assert later and a.extend(later, head, chain.block_hash(head))
    assert not b.extend(later[:1], head, chain.block_hash(head))  # read before a's extension: its rows stand
    assert TreeEventCache(path, key, chain.chain_id, fed.address).load(chain.block_hash) == (first + later, head)
