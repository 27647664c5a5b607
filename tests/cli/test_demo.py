"""``fogfed demo``: the whole scenario as a real process; exit 0 and a complete JSON record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fogfed.demo import STEPS, StepFailed, expect
from tests.cli.helpers import FOGFED, env_for


def test_demo_passes_and_records_every_step(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    proc = subprocess.run([str(FOGFED), "demo", "--json-file", str(out)], capture_output=True, text=True,
                          env=env_for(tmp_path), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert len(lines) == len(STEPS) and all("[PASS]" in line for line in lines)
    assert "all steps passed" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["passed"] is True and doc["failed"] == 0 and doc["skipped"] == 0
    assert [s["title"] for s in doc["steps"]] == [title for title, _, _ in STEPS]
    by_title = {s["title"]: s for s in doc["steps"]}
    assert by_title["fetch from a peer cache"]["measurements"]["source"].startswith("peer:0x")
    assert by_title["fetch from storage"]["measurements"]["source"] == "storage"
    assert by_title["enroll 5 fog nodes into federations"]["measurements"]["federations"] == {
        "riyadh/health": 3, "riyadh/traffic": 1, "jeddah/health": 1}
    assert by_title["automatic removal after false claims"]["measurements"]["attempts"] == 3
    assert len(doc["gas"]) == 7 and all(r["gas"] < r["paper_gas"] for r in doc["gas"])
    assert not list(tmp_path.glob("node-*"))  # without --keep nothing is left in the working folder


def test_expect_fails_a_step() -> None:
    expect(True, "fine")
    with pytest.raises(StepFailed, match="it broke"):
        expect(False, "it broke")
