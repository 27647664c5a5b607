"""The node killed (SIGKILL) mid-upload and mid-fetch, then run again; damaged local files; a full disk.

Real processes on one persistent embedded chain and embedded store; kills at named steps
(``FOGFED_KILL_AT``, fogfed._faults). Checked against the chain: one registration per file,
``files()`` equal to the chain, no temp file and no partial plaintext left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fogfed.chain import connect
from fogfed.keys.keystore import KdfParams
from fogfed.node import FogNode
from fogfed.node.client import NodeError
from fogfed.node.records import RecordsError
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority

ROOT = Path(__file__).resolve().parents[2]
LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
PASS = "node passphrase"

CHILD = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    from fogfed.chain import connect
    from fogfed.errors import FogfedError
    from fogfed.node import FogNode
    from fogfed.storage import EmbeddedStore
    root, op, arg, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    chain = connect(f"embedded:{root / 'chain'}")
    with FogNode.open(root / "node", chain, EmbeddedStore(root / "store"), "node passphrase") as node:
        if op == "upload":
            r = node.upload(Path(arg))
            print(json.dumps({"file_id": r.file_id_hex, "resumed": r.resumed}))
        else:
            if len(sys.argv) > 5:  # while decrypting, files may only grow to this many bytes (a full disk)
                import fogfed.node.datapath as dp
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                real, hard = dp._decrypt_into, resource.getrlimit(resource.RLIMIT_FSIZE)[1]
                def limited(*a):
                    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[5]), hard))
                    try:
                        return real(*a)
                    finally:
                        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
                dp._decrypt_into = limited
            try:
                r = node.fetch(arg, Path(out))
            except FogfedError as exc:
                print(json.dumps({"error": exc.message, "type": type(exc).__name__}))
                sys.exit(1)
            print(json.dumps({"source": r.source}))
""")


def child(root: Path, op: str, arg: str, out: str = "-", *extra: str, kill_at: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FOGFED_KILL_AT", None)
    if kill_at:
        env["FOGFED_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-c", CHILD, str(root), op, arg, out, *extra], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("nodefaults")
    chain = connect(f"embedded:{root / 'chain'}")
    accounts = chain.dev_accounts()
    store = EmbeddedStore(root / "store")
    tas = TrustedAuthority.init(root / "tas", chain, PASS, account=accounts[0], kdf=LIGHT)
    node = FogNode.init(root / "node", chain, tas.contract_address, store, PASS, account=accounts[1], kdf=LIGHT)
    tas.enroll(node.enrollment_request("riyadh", "health"), approve=True)
    node.refresh_keys()
    node.close()
    return root, chain, tas


def registrations(tas: TrustedAuthority, uploader: str) -> list:
    return tas.fed.events(names=["FileRegistered"], where={"uploader": uploader})


def open_node(root: Path, chain) -> FogNode:
    return FogNode.open(root / "node", chain, EmbeddedStore(root / "store"), PASS)


@pytest.mark.parametrize("kill_at", ["upload:stored", "upload:key-stored", "upload:registered"])
def test_upload_killed_then_retried_registers_once_and_is_listed(world, kill_at: str) -> None:
    root, chain, tas = world
    src = root / f"{kill_at.replace(':', '-')}.bin"
    src.write_bytes(os.urandom(300_000))
    with open_node(root, chain) as node:
        address = node.address
    before = len(registrations(tas, address))
    killed = child(root, "upload", str(src), kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list((root / "node" / "tmp").glob("*.part")), "the killed upload left its ciphertext copy"
    again = child(root, "upload", str(src))
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["resumed"] is (kill_at == "upload:registered")
    regs = registrations(tas, address)
    assert len(regs) == before + 1 and "0x" + bytes(regs[-1].args["fileId"]).hex() == result["file_id"]
    assert not list((root / "node" / "tmp").glob("*.part"))  # cleaned by the next run
    with open_node(root, chain) as node:
        listed = node.files()
    assert [r["file_id"] for r in listed] == ["0x" + bytes(e.args["fileId"]).hex() for e in regs]
    assert listed[-1]["name"] == src.name
    # the local list lost? it is rebuilt from the chain
    (root / "node" / "files.json").unlink()
    with open_node(root, chain) as node:
        assert [r["file_id"] for r in node.files()] == [r["file_id"] for r in listed]


def test_killed_fetch_leaves_no_partial_plaintext(world) -> None:
    root, chain, tas = world
    src = root / "secret.bin"
    src.write_bytes(os.urandom(2_000_000))
    up = child(root, "upload", str(src))
    assert up.returncode == 0, up.stderr
    file_id = json.loads(up.stdout)["file_id"]
    dest_dir = root / "out"
    dest_dir.mkdir()
    killed = child(root, "fetch", file_id, str(dest_dir / "copy.bin"), kill_at="fetch:decrypted")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list(dest_dir.iterdir()) == []  # the plaintext never had a name
    done = child(root, "fetch", file_id, str(dest_dir / "copy.bin"))
    assert done.returncode == 0, done.stderr
    assert (dest_dir / "copy.bin").read_bytes() == src.read_bytes()
    assert list(dest_dir.iterdir()) == [dest_dir / "copy.bin"]
    assert not list((root / "node" / "tmp").glob("*.part"))


def test_full_destination_is_a_clear_error_and_nothing_is_written(world) -> None:
    root, chain, tas = world
    src = root / "big.bin"
    src.write_bytes(os.urandom(1_500_000))
    up = child(root, "upload", str(src))
    assert up.returncode == 0, up.stderr
    dest_dir = root / "full"
    dest_dir.mkdir()
    proc = child(root, "fetch", json.loads(up.stdout)["file_id"], str(dest_dir / "big.bin"), "500000")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["type"] == "DestinationError" and str(dest_dir / "big.bin") in out["error"]
    assert list(dest_dir.iterdir()) == []


@pytest.mark.parametrize("name,content,error", [
    ("files.json", '{"not": "a list"}', RecordsError),
    ("files.json", '[{"file_id": 5}]', RecordsError),
    ("files.json", "not json", RecordsError),
    ("config.json", None, NodeError),
])
def test_damaged_local_files_name_the_file(world, name: str, content: str | None, error: type) -> None:
    root, chain, _ = world
    path = root / "node" / name
    saved = path.read_text() if path.exists() else None
    try:
        if content is None:  # config.json with a field missing, then one of the wrong type
            for bad in ({k: v for k, v in json.loads(saved).items() if k != "chain_id"},
                        {**json.loads(saved), "cache_bytes": "lots"}, {**json.loads(saved), "contract": "0xbad"}):
                path.write_text(json.dumps(bad))
                with pytest.raises(error) as info:
                    open_node(root, chain)
                assert str(path) in info.value.message and info.value.hint
            return
        path.write_text(content)
        with open_node(root, chain) as node, pytest.raises(error) as info:
            node.files()
        assert str(path) in info.value.message and info.value.hint
    finally:
        if saved is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(saved)


def test_fetch_with_storage_down_keeps_the_reason(world) -> None:
    from fogfed.node.client import FetchFailed
    from fogfed.storage import open_store
    from fogfed.storage.errors import StorageUnavailable

    root, chain, tas = world
    src = root / "for-reader.bin"
    src.write_bytes(os.urandom(50_000))
    up = child(root, "upload", str(src))
    assert up.returncode == 0, up.stderr
    dead = open_store(_ipfs_that_goes_away())
    reader = FogNode.init(root / "reader", chain, tas.contract_address, dead, PASS,
                          account=chain.dev_accounts()[3], kdf=LIGHT)
    tas.enroll(reader.enrollment_request("riyadh", "health"), approve=True)
    with reader, pytest.raises((FetchFailed, StorageUnavailable)) as info:
        reader.fetch(json.loads(up.stdout)["file_id"], root / "reader.bin")
    # the reason survives (not just "no intact copy"): which node, and that it is unreachable
    assert "unreachable" in info.value.message and dead.url in info.value.message, info.value.message
    assert not (root / "reader.bin").exists()


def _ipfs_that_goes_away() -> str:
    """An HTTP server that answers the IPFS API's version call once and then stops listening:
    the store opens, and every later call finds the port closed (an IPFS node that went down)."""
    import http.server
    import threading

    class Once(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.dumps({"Version": "0.0.0-down", "Commit": "", "Repo": "0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            threading.Thread(target=server.shutdown, daemon=True).start()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Once)
    thread = threading.Thread(target=lambda: (server.serve_forever(), server.server_close()), daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_damaged_cache_index_names_the_file(tmp_path: Path) -> None:
    import sqlite3

    from fogfed.node.cache import BlobCache, CacheError

    cache = BlobCache(tmp_path / "cache", 1 << 20)
    cache.put(b"\x01" * 32, __import__("io").BytesIO(b"blob"), __import__("hashlib").sha256(b"blob").digest())
    cache.close()
    db = sqlite3.connect(tmp_path / "cache" / "index.sqlite3")
    db.execute("UPDATE blobs SET expires_at = 'soon'")  # a non-numeric expiry
    db.commit()
    db.close()
    cache = BlobCache(tmp_path / "cache", 1 << 20)
    try:
        for call in (cache.entries, lambda: cache.get(b"\x01" * 32)):
            with pytest.raises(CacheError) as info:
                call()
            assert "index.sqlite3" in info.value.message and "damaged" in info.value.message and info.value.hint
    finally:
        cache.close()


def test_concurrent_uploads_from_one_node_lose_no_record(world) -> None:
    """Several processes on one node home: each either uploads or is refused with a clear message
    (the cache admits one process); a refused one retried uploads; every upload is listed once."""
    root, chain, tas = world
    srcs = []
    for i in range(3):
        srcs.append(root / f"together-{i}.bin")
        srcs[-1].write_bytes(os.urandom(100_000))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FOGFED_KILL_AT", None)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(root), "upload", str(s), "-"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in srcs]
    ids = {}
    for src, p in zip(srcs, procs):
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            assert "in use by another fogfed process" in err, err
            again = child(root, "upload", str(src))
            assert again.returncode == 0, again.stderr
            out = again.stdout
        ids[json.loads(out)["file_id"]] = src.name
    with open_node(root, chain) as node:
        listed = [(r["file_id"], r["name"]) for r in node.files()]
    assert [x for x in listed if x[0] in ids] == [(i, ids[i]) for i, _ in listed if i in ids]
    assert {i for i, _ in listed} >= set(ids) and len(listed) == len({i for i, _ in listed})
    assert len(registrations(tas, node.address)) == len(listed)
