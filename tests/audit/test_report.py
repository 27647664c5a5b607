"""Reports: JSON views per federation, CSV without formula injection, HTML self-contained and escaped."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fogfed import audit
from fogfed.audit.report import safe_cell
from tests.audit.conftest import Replayed
from tests.audit.history import FORMULA_POLICY, XSS

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def report(clean: Replayed) -> dict:
    with audit.Checkpoint.open(clean.db) as cp:
        return audit.build_report(cp)


def test_federation_views_show_members_joins_leaves_and_moves(clean: Replayed, report: dict) -> None:
    a = clean.script.accounts
    views = {v["id"]: v for v in report["federations"]}
    f1, f2, f3 = clean.ids["f1"], clean.ids["f2"], clean.ids["f3"]
    assert views[f1]["members"] == sorted([a[1], a[2], a[5]])
    assert views[f2]["members"] == sorted([a[3], a[6]])
    assert {r["node"] for r in views[f1]["left"]} == {a[3]}
    assert {(m["node"], m["to"]) for m in views[f1]["moved_out"]} == {(a[3], f2)}
    assert {(m["node"], m["to"]) for m in views[f3]["moved_out"]} == {(a[6], f2)}
    assert {(m["node"], m["from"]) for m in views[f2]["moved_in"]} == {(a[3], f1), (a[6], f3)}
    assert {f["file_id"] for f in views[f1]["files"]} == {"0x" + clean.ids[k].hex() for k in ("file_a", "file_b")}
    assert report["summary"]["automatic_removals"] == 1 and report["summary"]["removals"] == 3
    assert report["findings"] == []


def test_json_export_round_trips(report: dict, tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    audit.write_json(report, path)
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))


def test_csv_export_defuses_formulas(clean: Replayed, report: dict, tmp_path: Path) -> None:
    with audit.Checkpoint.open(clean.db) as cp:
        paths = audit.write_csv(report, cp, tmp_path / "csv")
        events = cp.event_count()
    by_name = {p.stem: list(csv.DictReader(p.open())) for p in paths}
    policies = {row["policy"] for row in by_name["files"]}
    assert any(p.startswith("'" + FORMULA_POLICY) for p in policies)
    assert not any(p.startswith(FORMULA_POLICY) for p in policies)
    assert len(by_name["events"]) == events
    assert {row["kind"] for row in by_name["membership"]} >= {"joined", "removed", "key_delivered"}


@given(st.sampled_from("=+-@\t\r"), st.text(max_size=20))
def test_every_dangerous_leading_character_is_quoted(first: str, rest: str) -> None:
    assert safe_cell(first + rest) == "'" + first + rest


@given(st.text(max_size=20).filter(lambda s: s[:1] not in "=+-@\t\r"))
def test_other_cells_are_unchanged(text: str) -> None:
    assert safe_cell(text) == text and safe_cell(-5) == -5


def test_html_is_self_contained_and_escapes_chain_strings(clean: Replayed, report: dict, tmp_path: Path) -> None:
    path = tmp_path / "audit.html"
    with audit.Checkpoint.open(clean.db) as cp:
        audit.write_html(report, cp, path)
    page = path.read_text()
    assert XSS not in page and page.lower().count("<script") == 1  # only the sorting/filtering script
    from fogfed.audit.report import _SCRIPT, _script_hash

    assert f"<script>{_SCRIPT}</script>" in page and f"script-src '{_script_hash()}'" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    for external in ("src=", "href=", "<link", "@import", "url("):
        assert external not in page.lower()
    assert "Left and joined another federation" in page and "Timeline" in page
    for tx in (r["tx"] for r in report["state"]["removals"]):
        assert tx in page


def test_html_shows_labels_escaped_next_to_addresses(clean: Replayed, tmp_path: Path) -> None:
    node = clean.script.accounts[1]
    path = tmp_path / "labelled.html"
    with audit.Checkpoint.open(clean.db) as cp:
        report = audit.build_report(cp, labels={node: "gw <b>one</b>"})
        audit.write_html(report, cp, path)
    page = path.read_text()
    assert f'{node[:6]}\u2026{node[-4:]}</span> <span class="label">gw &lt;b&gt;one&lt;/b&gt;</span>' in page
    assert report["labels"] == {node.lower(): "gw <b>one</b>"}


def test_the_zero_holder_is_shown_as_storage() -> None:
    from fogfed.audit.report import _cell

    assert ">storage<" in _cell("0x" + "0" * 40)
    assert _cell("0x" + "ab" * 32).count("\u2026") == 1 and _cell("plain") == "plain"


def test_membership_series_ends_at_the_current_members(report: dict) -> None:
    """The chart's data: every join, removal and move, ending where each federation is now."""
    for view in report["federations"]:
        points = report["membership_series"].get(str(view["id"]), [])
        assert (points[-1][1] if points else 0) == len(view["members"]), view["id"]
        assert all(count >= 0 for _, count in points)


def test_html_has_the_charts(clean: Replayed, report: dict, tmp_path: Path) -> None:
    path = tmp_path / "charts.html"
    with audit.Checkpoint.open(clean.db) as cp:
        audit.write_html(report, cp, path)
    page = path.read_text()
    assert page.count("<polyline") == len(report["federations"]) and "Members per federation over time" in page
    assert page.count('stroke-dasharray="3 3"') == report["summary"]["removals"]  # one marker per removal
    assert f"Accesses: {report['summary']['accesses']['granted']} granted" in page
