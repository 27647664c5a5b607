"""benchmarks/noting.py runs end to end with a tiny size (embedded store) and writes its JSON, with the
note timed once per noting round (the second importer's CID is checked against the store's inside)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.noting import main


def test_noting_quick_json_shape(tmp_path: Path, capsys) -> None:
    out = tmp_path / "noting.json"
    assert main(["--mib", "1", "--rounds", "3", "--json", str(out)]) == 0
    [embedded] = json.loads(out.read_text())["results"]
    assert embedded["store"] == "embedded" and embedded["rounds"] == 3
    for key in ("median_s", "ratio", "median_cpu_s", "cpu_ratio"):
        assert set(embedded[key]) == {"plain", "noting", "extra pass"}
    assert embedded["ratio"]["plain"] == 1.0 and all(len(v) == 3 for v in embedded["all_s"].values())
    assert len(embedded["note_us"]) == 3  # the note ran once per noting round
    assert "embedded: wall plain" in capsys.readouterr().out
