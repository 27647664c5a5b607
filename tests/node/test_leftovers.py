"""What an upload stored but never registered is unpinned (fogfed.node.leftovers.UploadLeftovers).

On the embedded store, as the store sees it afterwards (its pins), for each way an upload can end:
failed before sending registerFile (unpinned at once), killed (its record settled by the next upload's
reclaim), registered (only the encrypted keys of stale attempts go), sent but not on chain (kept while
the transaction may still be mined; unpinned once the chain shows it never can be), still running in
another process or thread (never touched). Real uploads on a persistent embedded chain killed with
registerFile signed but not sent, or sent (mined), and killed between the store's pin and its answer.
Against a real IPFS daemon stopped mid-upload or losing its add reply, and Anvil with a registration
left in its mempool (mined later, replaced, dropped): tests/node/test_outages.py.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fogfed.chain import connect
from fogfed.node import FogNode
from fogfed.node.datapath import store_blob
from fogfed.node.home import TMP
from fogfed.node.leftovers import LEFTOVERS_SUFFIX, UploadLeftovers, reclaim_leftovers
from fogfed.protocol.files import cid_of_file_id
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority
from tests.node.test_faults import LIGHT, PASS, ROOT


@pytest.fixture()
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


def blob(store: EmbeddedStore, leftovers: UploadLeftovers | None = None) -> str:
    return store_blob(store, os.urandom(3000), leftovers)


def records(tmp: Path) -> list[Path]:
    return sorted(tmp.glob(f"*{LEFTOVERS_SUFFIX}"))


def never(file_id: str) -> str | None:
    raise AssertionError(f"asked the chain about {file_id}, but no registration was sent")


def test_a_failure_before_registering_unpins_at_once(store: EmbeddedStore, tmp_path: Path) -> None:
    kept = blob(store)
    with pytest.raises(RuntimeError, match="chain down"):
        with UploadLeftovers(tmp_path / "tmp", store) as left:
            ct = store_blob(store, os.urandom(600_000))
            left.stored(ct, "0x" + "11" * 32)
            key = blob(store, left)
            assert store.has(ct) and store.has(key)
            raise RuntimeError("chain down")
    assert not store.has(ct) and not store.has(key) and store.has(kept)
    assert records(tmp_path / "tmp") == []


def test_a_killed_upload_is_settled_by_the_next(store: EmbeddedStore, tmp_path: Path) -> None:
    """The uploading process dies (SIGKILL) holding its record: the next reclaim unpins what it stored."""
    tmp = tmp_path / "tmp"
    code = textwrap.dedent(f"""
        import os, sys
        from fogfed.node.datapath import store_blob
        from fogfed.node.leftovers import UploadLeftovers
        from fogfed.storage import EmbeddedStore
        store = EmbeddedStore({str(store.root)!r})
        left = UploadLeftovers(__import__("pathlib").Path({str(tmp)!r}), store)
        ct = store_blob(store, os.urandom(300_000))
        left.stored(ct, "0x" + "22" * 32)
        print(ct, store_blob(store, b"k" * 2000, left), flush=True)
        os.kill(os.getpid(), 9)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ | {
        "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == -9, out.stderr
    ct, key = out.stdout.split()
    assert store.has(ct) and store.has(key) and len(records(tmp)) == 1
    assert reclaim_leftovers(tmp, store, never) == 1
    assert not store.has(ct) and not store.has(key) and records(tmp) == []


def test_a_live_upload_is_never_touched(store: EmbeddedStore, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    with UploadLeftovers(tmp, store) as left:
        key = blob(store, left)
        assert reclaim_leftovers(tmp, store, never) == 0
        assert store.has(key) and len(records(tmp)) == 1
        left.finish({key})
    assert store.has(key) and records(tmp) == []


def test_registered_keeps_what_the_chain_names(store: EmbeddedStore, tmp_path: Path) -> None:
    """Registered, the answer lost: the ciphertext and the registered key stay, a stale attempt's key goes."""
    tmp, fid = tmp_path / "tmp", "0x" + "33" * 32
    left = UploadLeftovers(tmp, store)
    ct = store_blob(store, os.urandom(300_000))
    left.stored(ct, fid)
    stale, key = blob(store, left), blob(store, left)
    left.sending(fid)
    left.close()  # killed after registerFile was sent
    asked: list[str] = []
    assert reclaim_leftovers(tmp, store, lambda f: asked.append(f) or None) == 0  # not on chain (yet): kept
    assert asked == [fid] and store.has(stale) and len(records(tmp)) == 1
    assert reclaim_leftovers(tmp, store, {fid: key}.get) == 1
    assert store.has(ct) and store.has(key) and not store.has(stale) and records(tmp) == []


def test_sent_and_given_up_is_unpinned(store: EmbeddedStore, tmp_path: Path) -> None:
    """Sent, not on chain, and the same source is being uploaded again: the old attempt goes, unasked."""
    tmp, fid = tmp_path / "tmp", "0x" + "55" * 32
    left = UploadLeftovers(tmp, store)
    ct = store_blob(store, os.urandom(300_000))
    left.stored(ct, fid)
    key = blob(store, left)
    left.sending(fid)
    left.close()
    assert reclaim_leftovers(tmp, store, never, given_up={fid}) == 1
    assert not store.has(ct) and not store.has(key) and records(tmp) == []


def test_finish_unpins_stale_keys(store: EmbeddedStore, tmp_path: Path) -> None:
    fid = "0x" + "44" * 32
    with UploadLeftovers(tmp_path / "tmp", store) as left:
        ct = store_blob(store, os.urandom(300_000))
        left.stored(ct, fid)
        stale, key = blob(store, left), blob(store, left)
        left.sending(fid)
        left.finish({ct, key})
    assert store.has(ct) and store.has(key) and not store.has(stale)
    assert records(tmp_path / "tmp") == []


def test_a_torn_or_damaged_record_is_read_as_far_as_it_goes(store: EmbeddedStore, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    key = blob(store)
    (tmp / f"1-aa{LEFTOVERS_SUFFIX}").write_bytes(b'{"cid": "%s"}\n{"cid": "not a cid"}\n{"se' % key.encode())
    (tmp / f"2-bb{LEFTOVERS_SUFFIX}").write_bytes(b"\x00\xff garbage")
    assert reclaim_leftovers(tmp, store, never) == 2
    assert not store.has(key) and records(tmp) == []


def test_the_store_down_keeps_the_record(store: EmbeddedStore, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    key = blob(store)
    with UploadLeftovers(tmp, store) as left:
        left.stored(key)
    index = store.root / "index.sqlite3"
    store.close()
    saved = index.read_bytes()
    for name in ("index.sqlite3-wal", "index.sqlite3-shm"):
        (store.root / name).unlink(missing_ok=True)
    index.unlink()
    index.mkdir()  # the index cannot be opened: StorageUnavailable
    assert reclaim_leftovers(tmp, store, never) == 0
    assert len(records(tmp)) == 1
    index.rmdir()
    index.write_bytes(saved)
    assert reclaim_leftovers(tmp, EmbeddedStore(store.root), never) == 1
    assert not EmbeddedStore(store.root).has(key)


def test_the_record_is_locked_while_the_upload_runs(store: EmbeddedStore, tmp_path: Path) -> None:
    with UploadLeftovers(tmp_path / "tmp", store) as left:
        with open(left.path, "rb") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not list((tmp_path / "tmp").glob(".*.new"))
    with open(left.path, "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_blob_cid_is_noted_before_the_store_sees_it(store: EmbeddedStore, tmp_path: Path) -> None:
    data = os.urandom(2000)
    with UploadLeftovers(tmp_path / "tmp", store) as left:
        from fogfed.storage import compute_cid

        cid = compute_cid(io.BytesIO(data))
        assert store_blob(store, data, left) == cid and left.cids == [cid]
        assert cid in left.path.read_text()
        left.finish({cid})


def test_an_upload_killed_inside_the_add_leaves_no_pack(store: EmbeddedStore, tmp_path: Path) -> None:
    """SIGKILL while the ciphertext streams into the embedded store: a partial pack, no pin, no CID noted.
    The next reclaim sees the dead record and the store deletes the pack no index row names."""
    tmp, src = tmp_path / "tmp", tmp_path / "plain"
    src.write_bytes(os.urandom(3 << 20))
    code = textwrap.dedent(f"""
        import os, pathlib
        from fogfed.node.datapath import encrypt_and_store
        from fogfed.node.leftovers import UploadLeftovers
        from fogfed.storage import EmbeddedStore
        store = EmbeddedStore({str(store.root)!r})
        left = UploadLeftovers(pathlib.Path({str(tmp)!r}), store)
        def die(done):
            if done >= 2 << 20:
                os.kill(os.getpid(), 9)
        encrypt_and_store(store, pathlib.Path({str(src)!r}), os.urandom(32), None, die)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ | {
        "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == -9, out.stderr
    packs = list((store.root / "packs").iterdir())
    assert len(packs) == 1 and packs[0].stat().st_size > 1 << 20 and len(records(tmp)) == 1
    kept = blob(store)  # another file, stored meanwhile, stays
    assert reclaim_leftovers(tmp, store, never) == 1
    assert records(tmp) == [] and not packs[0].exists() and store.has(kept)


def test_garbage_collection_never_waits_for_a_running_add(store: EmbeddedStore) -> None:
    orphan = store.root / "packs" / "0123456789abcdef.pack"
    orphan.write_bytes(b"x" * 100)
    with open(store.root / "lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # as an add in progress holds it
        assert store.collect_garbage() == 0 and orphan.exists()
    assert store.collect_garbage() == 1 and not orphan.exists()


# -- a registration that can no longer be mined ------------------------------------------------------


def sent_record(store: EmbeddedStore, tmp: Path, fid: str, *nonces: int | None) -> tuple[str, str]:
    """A dead upload's record: a ciphertext and a key stored, registerFile signed with each of ``nonces``."""
    left = UploadLeftovers(tmp, store)
    ct = store_blob(store, os.urandom(300_000))
    left.stored(ct, fid)
    key = blob(store, left)
    for nonce in nonces:
        left.sending(fid, nonce, "0x" + "ab" * 20)
    left.close()
    return ct, key


def test_a_registration_that_can_no_longer_be_mined_is_unpinned(store: EmbeddedStore, tmp_path: Path) -> None:
    """Kept while the chain says the nonce may still carry it, unpinned once it cannot, for the highest
    nonce the upload signed (a retry after a reverted attempt signs the next one)."""
    tmp, fid = tmp_path / "tmp", "0x" + "66" * 32
    ct, key = sent_record(store, tmp, fid, 7, 8)
    asked: list[tuple] = []
    open_nonce = lambda f, sender, n: asked.append((f, sender, n)) or False  # noqa: E731
    assert reclaim_leftovers(tmp, store, lambda f: None, dropped=open_nonce) == 0
    assert asked == [(fid, "0x" + "ab" * 20, 8)] and store.has(ct) and store.has(key)
    assert reclaim_leftovers(tmp, store, lambda f: None, dropped=lambda f, s, n: n == 8) == 1
    assert not store.has(ct) and not store.has(key) and records(tmp) == []


def test_a_registered_file_is_kept_whatever_its_nonce(store: EmbeddedStore, tmp_path: Path) -> None:
    tmp, fid = tmp_path / "tmp", "0x" + "77" * 32
    ct, key = sent_record(store, tmp, fid, 3)
    assert reclaim_leftovers(tmp, store, {fid: key}.get, dropped=lambda *a: pytest.fail("asked")) == 1
    assert store.has(ct) and store.has(key) and records(tmp) == []


@pytest.mark.parametrize("sent", [[None], [4, None], ["x"]], ids=["first-design", "mixed", "damaged-nonce"])
def test_a_record_without_a_usable_nonce_is_kept_as_before(store: EmbeddedStore, tmp_path: Path, sent) -> None:
    """A record of the first design (``{"sent": id}`` alone): the nonce is unknown, so it stays until the
    chain shows the file or the same source is uploaded again."""
    tmp, fid = tmp_path / "tmp", "0x" + "88" * 32
    left = UploadLeftovers(tmp, store)
    ct = store_blob(store, os.urandom(300_000))
    left.stored(ct, fid)
    for nonce in sent:
        left._note({"sent": fid} if nonce is None else {"sent": fid, "nonce": nonce})
    left.close()
    assert reclaim_leftovers(tmp, store, lambda f: None, dropped=lambda *a: pytest.fail("asked")) == 0
    assert store.has(ct) and len(records(tmp)) == 1


def test_the_ciphertext_noted_twice_is_still_kept_when_registered(store: EmbeddedStore, tmp_path: Path) -> None:
    """The store told the CID (with its file id) before the pin, the upload notes it again after: one
    line, and a registered record keeps it."""
    tmp, fid = tmp_path / "tmp", "0x" + "99" * 32
    left = UploadLeftovers(tmp, store)
    ct = left.noting(store, lambda cid: fid).add(io.BytesIO(os.urandom(300_000)))
    left.stored(ct, fid)
    key = blob(store, left)
    left.sending(fid, 0)
    left.close()
    assert left.path.read_text().count(ct) == 1
    assert reclaim_leftovers(tmp, store, {fid: key}.get) == 1 and store.has(ct) and store.has(key)


# -- real uploads on a persistent embedded chain, killed ---------------------------------------------

UPLOAD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from fogfed.chain import connect
    from fogfed.node import FogNode
    from fogfed.storage import EmbeddedStore
    root, src, die_after_pin = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
    store = EmbeddedStore(root / "store")
    if die_after_pin:  # the store pinned the ciphertext; the process dies before the add returns
        real = EmbeddedStore.add
        def add(self, src, **kw):
            cid = real(self, src, **kw)
            os.kill(os.getpid(), 9)
        EmbeddedStore.add = add
    with FogNode.open(root / "node", connect(f"embedded:{root / 'chain'}"), store, "node passphrase") as node:
        node.upload(src)
""")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("leftoverchain")
    chain = connect(f"embedded:{root / 'chain'}")
    accounts = chain.dev_accounts()
    tas = TrustedAuthority.init(root / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
    node = FogNode.init(root / "node", chain, tas.contract_address, EmbeddedStore(root / "store"), PASS,
                        account=accounts[1], kdf=LIGHT)
    tas.enroll(node.enrollment_request("riyadh", "health"), approve=True)
    node.refresh_keys()
    node.close()
    return root, chain, tas


def pins(root: Path) -> set[str]:
    """The embedded store's pins, read from its index."""
    with sqlite3.connect(root / "store" / "index.sqlite3") as db:
        return {r for (r,) in db.execute("SELECT root FROM pins")}


def killed_upload(root: Path, name: str, *, kill_at: str | None = None, after_pin: bool = False) -> dict:
    src = root / name
    src.write_bytes(os.urandom(300_000))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FOGFED_KILL_AT", None)
    if kill_at:
        env["FOGFED_KILL_AT"] = kill_at
    out = subprocess.run([sys.executable, "-c", UPLOAD, str(root), str(src), "1" if after_pin else "0"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stderr
    [path] = [p for p in records(root / "node" / TMP) if p.stat().st_size]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {"cids": [e["cid"] for e in lines if "cid" in e], "sent": [e for e in lines if "sent" in e]}


def upload_another(root: Path, chain, name: str):
    src = root / name
    src.write_bytes(os.urandom(100_000))
    with FogNode.open(root / "node", chain, EmbeddedStore(root / "store"), PASS) as node:
        result = node.upload(src)
        key = cid_of_file_id(node.fed.file(result.file_id).enc_sk_ref)
    return result, key


def test_a_registration_signed_but_never_sent_is_reclaimed_by_the_next_upload(world) -> None:
    """Killed with registerFile signed (its nonce noted) but not sent: the embedded chain mines what it is
    sent at once and keeps no mempool, so a nonce it has not used means the transaction is gone. The next
    upload, of another file, unpins the first one's ciphertext and key (they stayed pinned before)."""
    root, chain, tas = world
    before = pins(root)
    record = killed_upload(root, "signed.bin", kill_at="upload:signed")
    [sent] = record["sent"]
    assert not chain.nonce_used(sent["from"], sent["nonce"])  # never sent
    ct, key = record["cids"]
    assert pins(root) == before | {ct, key}
    result, new_key = upload_another(root, chain, "after-signed.bin")
    assert pins(root) == before | {result.cid, new_key}
    assert records(root / "node" / TMP) == []


def test_a_registration_sent_and_mined_keeps_its_file(world) -> None:
    """Killed right after registerFile was sent (mined: the embedded chain mines on send): the next
    upload, of another file, leaves both files pinned and settles the record."""
    root, chain, tas = world
    before = pins(root)
    record = killed_upload(root, "mined.bin", kill_at="sent:registerFile")
    [sent] = record["sent"]
    assert chain.nonce_used(sent["from"], sent["nonce"])
    ct, key = record["cids"]
    result, new_key = upload_another(root, chain, "after-mined.bin")
    assert pins(root) == before | {ct, key, result.cid, new_key}
    assert records(root / "node" / TMP) == []


def test_killed_between_the_stores_pin_and_its_answer(world) -> None:
    """The embedded store committed the ciphertext's pin, the process died before the add returned: the
    CID was noted before the pin (ContentStore.add's on_cid), so the next upload unpins it."""
    root, chain, tas = world
    before = pins(root)
    record = killed_upload(root, "pinned.bin", after_pin=True)
    assert record["sent"] == [] and len(record["cids"]) == 1
    assert pins(root) == before | set(record["cids"])  # pinned, and known
    result, new_key = upload_another(root, chain, "after-pinned.bin")
    assert pins(root) == before | {result.cid, new_key}
    assert records(root / "node" / TMP) == []
