"""benchmarks/datapath.py runs end to end with a tiny size and writes the documented JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.datapath import raw_sha256_aes_gcm, write_random_file

ROOT = Path(__file__).resolve().parent.parent


def test_datapath_quick_json_shape(tmp_path: Path) -> None:
    out, plot = tmp_path / "dp.json", tmp_path / "dp.png"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.datapath", "--quick", "--json", str(out),
                           "--plot", str(plot)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "datapath" and doc["store"] == "embedded store"
    assert set(doc["tables"]) == {"throughput", "latency", "memory"}
    (size,) = doc["sizes"]
    assert size["size_bytes"] == 1 << 20
    for key in ("raw_mb_s", "upload_mb_s", "upload_ratio_to_raw", "fetch_peer_s", "fetch_storage_s",
                "fetch_peer_mb_s", "fetch_storage_mb_s"):
        assert size[key] > 0, key
    assert set(size["peak_mib"]) == {"raw", "upload", "fetch_peer", "fetch_storage"}
    assert {t["name"].split(":")[0] for t in doc["targets"]} >= {"1 MiB"}
    assert all(isinstance(t["passed"], bool) for t in doc["targets"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_sizes_are_refused() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.datapath", "--sizes", "2048"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "1024" in proc.stderr and "Traceback" not in proc.stderr


def test_raw_baseline_hashes_the_file(tmp_path: Path) -> None:
    import hashlib
    import os

    path = write_random_file(tmp_path / "f", 3 * (1 << 20) + 5)
    assert path.stat().st_size == 3 * (1 << 20) + 5
    assert raw_sha256_aes_gcm(path, os.urandom(32)) == hashlib.sha256(path.read_bytes()).digest()
