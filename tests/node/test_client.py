"""FogNode on the in-process chain: home directory, keys, bad input, announcements."""

from __future__ import annotations

import pytest

from fogfed.abe import PolicySyntaxError
from fogfed.chain import connect
from fogfed.errors import InputError
from fogfed.keys import WrongPassphrase
from fogfed.keys.keystore import KdfParams
from fogfed.node import FogNode
from fogfed.node.client import NodeError, parse_file_id
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
PASS = "node passphrase"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("client")
    chain = connect(None)
    accounts = chain.dev_accounts()
    store = EmbeddedStore(root / "store")
    tas = TrustedAuthority.init(root / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
    node = FogNode.init(root / "node", chain, tas.contract_address, store, PASS, account=accounts[1], kdf=LIGHT)
    tas.enroll(node.enrollment_request("riyadh", "health"), approve=True)
    node.refresh_keys()
    yield chain, store, tas, node, root
    node.close()


def test_keys_survive_reopening_and_wrong_passphrase_is_clear(world):
    chain, store, tas, _, root = world
    node = FogNode.init(root / "other", chain, tas.contract_address, store, PASS,
                        account=chain.dev_accounts()[2], kdf=LIGHT)
    assert node.refresh_keys() == 0  # not enrolled yet
    tas.enroll(node.enrollment_request("riyadh", "health"), approve=True)
    assert node.refresh_keys() == 1 and node.refresh_keys() == 0
    node.close()
    with pytest.raises(WrongPassphrase):
        FogNode.open(root / "other", chain, store, "wrong passphrase")
    with FogNode.open(root / "other", chain, store, PASS) as reopened:
        assert reopened.address == node.address and reopened.keyring.get(1, 0) is not None


def test_init_refuses_an_existing_home(world):
    chain, store, tas, _, root = world
    with pytest.raises(NodeError, match="already exists"):
        FogNode.init(root / "node", chain, tas.contract_address, store, PASS, kdf=LIGHT)


@pytest.mark.parametrize("bad", ["", "0x12", "0x" + "zz" * 32, "Qmnotacid", 42, b"short"])
def test_malformed_file_ids(bad):
    with pytest.raises(InputError):
        parse_file_id(bad)


def test_file_id_forms_agree():
    raw = bytes(range(32))
    from fogfed.protocol.files import cid_of_file_id
    assert parse_file_id(raw) == parse_file_id("0x" + raw.hex()) == raw
    with pytest.raises(InputError, match="is a CID, not a file id"):  # an id names the uploader too
        parse_file_id(cid_of_file_id(raw))


def test_bad_upload_input(world, tmp_path):
    node = world[3]
    with pytest.raises(InputError, match="not a readable file"):
        node.upload(tmp_path / "missing.bin")
    f = tmp_path / "f.bin"
    f.write_bytes(b"x")
    with pytest.raises(PolicySyntaxError):
        node.upload(f, policy="loc:riyadh and (")
    with pytest.raises(InputError, match="does not issue"):
        node.upload(f, policy="ep:1:0")  # the epoch clause is fogfed's own
    with pytest.raises(InputError, match="no federation"):
        node.upload(f, policy="loc:nowhere")
    assert tas_files(world) == 0


def tas_files(world) -> int:
    return len(world[2].fed.events(names=["FileRegistered"]))


def test_bad_fetch_destination(world, tmp_path):
    node = world[3]
    with pytest.raises(InputError, match="is a directory"):
        node.fetch(b"\x01" * 32, tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        node.fetch(b"\x01" * 32, tmp_path / "no" / "dir" / "f")


def test_unknown_file_is_denied(world, tmp_path):
    from fogfed.node import AccessDenied
    node = world[3]
    sent = node.fed.chain.w3.eth.get_transaction_count(node.address)
    with pytest.raises(AccessDenied, match="no file 0x0707.* no transaction was sent"):
        node.fetch(b"\x07" * 32, tmp_path / "f")
    assert node.fed.chain.w3.eth.get_transaction_count(node.address) == sent


def test_refresh_announcements_renews_expiring_copies(world, tmp_path):
    _, _, tas, node, _ = world
    f = tmp_path / "r.bin"
    f.write_bytes(b"renew me" * 100)
    up = node.upload(f)
    first = tas.fed.cache_expiry(up.file_id, node.address)
    assert node.refresh_announcements(margin=0) == 0  # nothing close to expiry
    lifetime = node.max_cache_lifetime()
    assert node.refresh_announcements(margin=lifetime) == len(node.cache_entries())
    assert tas.fed.cache_expiry(up.file_id, node.address) >= first


class _Recorder:
    """A progress callback with phases, as the CLI's bar is."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []
        self.done: dict[str, int] = {}

    def phase(self, name: str, total: int | None) -> None:
        self.phases.append((name, total))

    def __call__(self, done: int) -> None:
        self.done[self.phases[-1][0]] = done


def test_fetch_progress_knows_the_total_and_names_its_phases(world, tmp_path):
    _, store, _, node, _ = world
    f = tmp_path / "p.bin"
    f.write_bytes(b"progress" * 100_000)
    up = node.upload(f)
    ct_size = sum(len(p) for p in store.cat(up.cid))
    for evict, source in ((False, "cache"), (True, "storage")):
        if evict:
            assert node.evict(up.file_id)
        rec = _Recorder()
        got = node.fetch(up.file_id, tmp_path / f"out-{source}", progress=rec)
        assert got.source == source and (tmp_path / f"out-{source}").read_bytes() == f.read_bytes()
        assert rec.phases == [(f"fetching from {source}", ct_size), ("decrypting", ct_size)]
        assert rec.done == {f"fetching from {source}": ct_size, "decrypting": ct_size}
    assert node.cache.get(up.file_id).sha256 is None  # the storage fetch cached the store's copy, not a second
