"""Audit reports from a checkpoint: JSON, CSV files and one self-contained HTML page.

Everything shown comes from the chain and is attacker-controlled (attribute
names, policies): HTML output escapes every value, CSV output defuses cells a
spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fogfed.audit.checkpoint import Checkpoint
from fogfed.audit.findings import KINDS, Thresholds, anomalies
from fogfed.audit.replay import restore
from fogfed.protocol.attributes import FIRST_HEIGHT

TIMELINE_LIMIT = 2_000


def removal_reason(r: dict[str, Any]) -> str:
    """A removal's decoded reason; an automatic one says which false claim tipped it."""
    trigger = r.get("trigger")
    if r.get("automatic") and trigger:
        return f"{r['reason_text']} (false claim {trigger['count']}, by the member's own access)"
    return r["reason_text"]


def moves(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Nodes that left one federation (removed) and later joined another, in history order.

    Handovers through the mobility contract are not in this list: they are ``state["moves"]``.
    """
    out = []
    for m in state["members"].values():
        left = None
        for h in m["history"]:
            if h["kind"] == "removed":
                left = None if h["reason"] == "moved" else h
            elif h["kind"] == "joined" and left is not None:
                if h["federation_id"] != left["federation_id"]:
                    out.append({"node": m["address"], "from": left["federation_id"], "to": h["federation_id"],
                                "left_block": left["block"], "reason": left["reason_text"],
                                "block": h["block"], "tx": h["tx"]})
                left = None
    return out


def federation_views(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Per federation: current members, who joined, who left (and why), who moved where, its files.

    These are the views "users in each group" and "users who left the group and
    joined another" of the mobility source.
    """
    members_by_fed: dict[int, list[str]] = {}
    for m in state["members"].values():
        if m["active"]:
            members_by_fed.setdefault(m["federation_id"], []).append(m["address"])
    files_by_fed: dict[int, list[dict[str, Any]]] = {}
    for f in state["files"].values():
        files_by_fed.setdefault(f["federation_id"], []).append(f)
    all_moves = moves(state)
    handovers = state.get("moves", [])  # absent from checkpoints made before mobility support
    return [{
        "id": f["id"], "location": f["location"], "service": f["service"], "parent": f["parent"],
        "epoch": f["epoch"], "tree": f.get("tree"),
        "refreshes": f.get("refreshes", []),
        "members": sorted(members_by_fed.get(f["id"], [])),
        "joined": f["joined"], "left": [r for r in f["left"] if r["reason"] != "moved"],
        "moved_out": [x for x in all_moves if x["from"] == f["id"]],
        "moved_in": [x for x in all_moves if x["to"] == f["id"]],
        "moves_out": [x for x in handovers if x["from"] == f["id"]],
        "moves_in": [x for x in handovers if x["to"] == f["id"]],
        "files": files_by_fed.get(f["id"], []),
    } for f in state["federations"].values()]


def membership_series(state: dict[str, Any]) -> dict[int, list[tuple[int, int]]]:
    """Per federation, (block, active members after that block) at every change: joins, removals and
    handovers in and out. The last value equals the federation's active members now."""
    deltas: dict[int, list[tuple[int, int]]] = {}
    for f in state["federations"].values():
        changes = deltas.setdefault(f["id"], [])
        changes += [(j["block"], +1) for j in f["joined"]] + [(r["block"], -1) for r in f["left"]]
    for m in state.get("moves", []):
        deltas.setdefault(m["from"], []).append((m["block"], -1))
        deltas.setdefault(m["to"], []).append((m["block"], +1))
    series = {}
    for fid, changes in deltas.items():
        count, points = 0, []
        for block, delta in sorted(changes):
            count += delta
            if points and points[-1][0] == block:
                points[-1] = (block, count)
            else:
                points.append((block, count))
        series[fid] = points
    return series


def build_report(cp: Checkpoint, limits: Thresholds | None = None,
                 labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything a report shows, from the checkpoint alone (no network).

    ``labels`` (address -> a name people know, e.g. the TAS's labels.json) are shown next to
    addresses; they are the operator's notes, not chain data.
    """
    rebuild = restore(cp)
    state = rebuild.data
    head_time = int(cp.meta("head_time") or 0)
    findings = anomalies(state, head_time, limits)
    return {
        "contract": cp.address, "chain_id": cp.chain_id, "start_block": int(cp.meta("start_block") or 0),
        "head_block": cp.last_block, "head_time": head_time, "events": state["events"],
        "summary": {
            "federations": len(state["federations"]), "members": len(state["members"]),
            "active_members": sum(1 for m in state["members"].values() if m["active"]),
            "files": len(state["files"]), "accesses": state["accesses"], "damage_reports": len(state["damage"]),
            "removals": sum(1 for r in state["removals"] if r["reason"] != "moved"),
            "moves": len(state.get("moves", [])), "mobility_contract": state.get("mobility") or "not replayed",
            "automatic_removals": sum(1 for r in state["removals"] if r["automatic"]),
            "findings": len(findings),
        },
        "findings": [f.to_json() for f in findings],
        "federations": federation_views(state),
        "membership_series": {str(k): v for k, v in membership_series(state).items()},
        "labels": {k.lower(): v for k, v in (labels or {}).items()},
        "state": state,
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    """The whole report as one JSON document."""
    path.write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")  # ASCII: escapes all


def printable(text: str) -> str:
    """Chain text for display: bytes that were not valid UTF-8 become \\xNN escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not evaluate: text starting with = + - @ (or tab/CR) gets a quote."""
    if not isinstance(value, str):
        return value
    value = printable(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for row in rows:
            out.writerow([safe_cell(v) for v in row])


def write_csv(report: dict[str, Any], cp: Checkpoint, folder: Path) -> list[Path]:
    """members, federations, files, membership history, findings and every event, one CSV each."""
    folder.mkdir(parents=True, exist_ok=True)
    state = report["state"]
    paths = {name: folder / f"{name}.csv" for name in
             ("federations", "members", "membership", "files", "findings", "events")}
    _csv(paths["federations"], ["id", "location", "service", "parent", "epoch", "members",
                                "files", "created_tx"],
         [(f["id"], f["location"], f["service"], f["parent"], f["epoch"],
           len(v["members"]), len(v["files"]), f["created"]["tx"])
          for f, v in zip(state["federations"].values(), report["federations"])])
    _csv(paths["members"], ["address", "federation_id", "active", "generation", "false_claims", "joined_at"],
         [(m["address"], m["federation_id"], m["active"], m["generation"], m["false_claims"], m["joined_at"])
          for m in state["members"].values()])
    _csv(paths["membership"], ["node", "kind", "federation", "to", "reason", "note", "by", "trigger_file",
                               "block", "time", "tx"],
         [(m["address"], h["kind"], h.get("federation_id", h.get("from", "")), h.get("to", ""),
           removal_reason(h) if h["kind"] == "removed" else h.get("reason_text", ""), h.get("note", ""),
           h.get("by", ""), h.get("trigger", {}).get("file_id", ""), h["block"], h["time"], h["tx"])
          for m in state["members"].values() for h in m["history"]])
    _csv(paths["files"], ["file_id", "federation_id", "uploader", "epoch", "policy", "registered_block",
                          "damaged_at", "granted", "denied", "tx"],
         [(f["file_id"], f["federation_id"], f["uploader"], f["epoch"], f["policy"], f["registered"]["block"],
           f["damaged_at"], f["granted"], f["denied"], f["registered"]["tx"]) for f in state["files"].values()])
    _csv(paths["findings"], ["kind", "subject", "message", "block", "txs"],
         [(f["kind"], f["subject"], f["message"], f["block"], " ".join(f["txs"])) for f in report["findings"]])
    _csv(paths["events"], ["block", "log_index", "time", "tx", "event", "args"],
         ((e.block, e.log_index, e.timestamp, e.tx, e.name, json.dumps(e.args, sort_keys=True))
          for e in cp.events()))
    return list(paths.values())


# -- HTML ---------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em;overflow-wrap:anywhere}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-bottom:.3em}
p{overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5em 0 1em;width:100%;table-layout:fixed}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;font-size:13px;
overflow-wrap:anywhere}
input.filter{display:block;margin:.3em 0;padding:2px 6px;font-size:12px;width:16em}th{cursor:pointer}
.bar{display:flex;align-items:center;margin:2px 0;font-size:12px}.barname{width:18em;overflow-wrap:anywhere}
.bar .g,.bar .d{display:inline-block;min-width:1.5em;color:#fff;padding:0 3px;box-sizing:border-box}
.g{background:#2e8b57;color:#fff;padding:0 3px}.d{background:#c0392b;color:#fff;padding:0 3px}
.label{background:#eef4fb;border-radius:3px;padding:0 3px;font-size:12px}
.h{font-family:ui-monospace,monospace;font-size:12px;cursor:help;border-bottom:1px dotted #999}
th{background:#f3f3f3}code{font-size:12px;word-break:break-all}
.finding{background:#fff3f0}.ok{color:#17702a}.bad{color:#b00020}.muted{color:#777}
section.fed{border:1px solid #ddd;padding:0 1em;margin:1em 0;border-radius:6px}
"""


#: The page's only script (sorting and filtering, offline); the CSP allows exactly this text by its hash.
_SCRIPT = """
document.querySelectorAll('table').forEach(t=>{
 const rows=()=>Array.from(t.querySelectorAll('tr')).slice(1);
 const f=document.createElement('input');f.type='search';f.placeholder='filter rows';f.className='filter';
 f.addEventListener('input',()=>{const q=f.value.toLowerCase();rows().forEach(r=>{
  const all=(r.textContent+' '+Array.from(r.querySelectorAll('[title]')).map(e=>e.title).join(' ')).toLowerCase();
  r.style.display=all.includes(q)?'':'none';});});
 t.parentNode.insertBefore(f,t);
 t.querySelectorAll('th').forEach((th,i)=>{th.title='click to sort';th.addEventListener('click',()=>{
  const key=r=>{const c=r.children[i];const v=c?(c.querySelector('[title]')||c).title||c.textContent:'';
   return isNaN(+v)||v===''?v:+v;};
  const up=th.dataset.dir!=='asc';th.dataset.dir=up?'asc':'desc';
  rows().sort((a,b)=>{const x=key(a),y=key(b);return (x>y?1:x<y?-1:0)*(up?1:-1);})
   .forEach(r=>t.appendChild(r));});});
});
"""


def _script_hash() -> str:
    import base64
    import hashlib

    return "sha256-" + base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()


def _e(value: Any) -> str:
    return html.escape(printable(str(value)), quote=True)


_LABELS: ContextVar[dict[str, str]] = ContextVar("labels", default={})
_HEX = re.compile(r"0x[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")
ZERO_ADDRESS = "0x" + "0" * 40


def _cell(value: Any) -> str:
    """A table cell: addresses and 32-byte ids shortened to 0x1234...abcd, the full value on hover
    (title) and in the page for search and copy; the zero holder is the stored copy, shown as "storage"."""
    text = printable(str(value))
    if text == ZERO_ADDRESS:
        return '<span title="the stored copy (holder 0x0)">storage</span>'
    if _HEX.fullmatch(text):
        short = f'<span class="h" title="{html.escape(text, quote=True)}">{text[:6]}\u2026{text[-4:]}</span>'
        label = _LABELS.get().get(text.lower())
        return short + (f' <span class="label">{_e(label)}</span>' if label else "")
    return html.escape(text, quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none") -> str:
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table><tr>{head}</tr>{body}</table>"


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _tree_html(tree: dict[str, Any] | None) -> str:
    if not tree:
        return ""
    height = tree.get("height", FIRST_HEIGHT)
    waiting = len(tree.get("waiting", []))
    return (f"<p>member tree generation {_e(tree['generation'])} (height {_e(height)}, {_e(1 << height)} leaves): "
            f"{_e(tree['assigned'])} leaves assigned, {_e(len(tree['revoked']))} revoked"
            + (f", {_e(waiting)} member(s) waiting for a leaf" if waiting else "")
            + " (removals are one transaction each; nobody is re-keyed)</p>")


_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _charts_html(report: dict[str, Any]) -> str:
    """Inline SVG (no script, no external asset): members per federation over blocks, with removals
    marked (red: automatic, orange: by the TAS); accesses granted and denied per federation."""
    series = {int(k): v for k, v in report.get("membership_series", {}).items()}
    names = {v["id"]: f"{v['id']}: {v['location']}/{v['service']}" for v in report["federations"]}
    start, head = report["start_block"] or 0, max(report["head_block"] or 1, 1)
    w, h, left, bottom, top = 1080, 240, 50, 30, 12
    top_count = max([c for pts in series.values() for _, c in pts] + [1])
    x = lambda b: left + (b - start) / max(head - start, 1) * (w - left - 10)  # noqa: E731
    y = lambda c: top + (1 - c / top_count) * (h - top - bottom)  # noqa: E731
    parts = [f'<svg role="img" aria-label="members per federation over blocks" viewBox="0 0 {w} {h}" '
             f'width="100%" style="max-width:{w}px" xmlns="http://www.w3.org/2000/svg" font-size="11">',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#999"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#999"/>',
             f'<text x="{left}" y="{h - 8}">block {start}</text>',
             f'<text x="{w - 10}" y="{h - 8}" text-anchor="end">block {head}</text>',
             f'<text x="{left - 6}" y="{top + 8}" text-anchor="end">{top_count}</text>',
             f'<text x="{left - 6}" y="{h - bottom}" text-anchor="end">0</text>']
    for r in report["state"]["removals"]:
        if r["reason"] == "moved":
            continue
        colour = "#c0392b" if r["automatic"] else "#e67e22"
        parts.append(f'<line x1="{x(r["block"]):.1f}" y1="{top}" x2="{x(r["block"]):.1f}" y2="{h - bottom}" '
                     f'stroke="{colour}" stroke-dasharray="3 3"><title>{_e(r["node"])} removed at block '
                     f'{_e(r["block"])} ({"automatic" if r["automatic"] else "by the TAS"}): '
                     f'{_e(removal_reason(r))}{_e(": " + r["note"]) if r.get("note") else ""}</title></line>')
    legend = []
    for i, (fid, pts) in enumerate(sorted(series.items())):
        colour = _COLOURS[i % len(_COLOURS)]
        coords, last = [], 0
        for block, count in pts:
            coords += [f"{x(block):.1f},{y(last):.1f}", f"{x(block):.1f},{y(count):.1f}"]
            last = count
        coords.append(f"{x(head):.1f},{y(last):.1f}")
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(coords)}">'
                     f"<title>federation {_e(names.get(fid, fid))}: {last} member(s) now</title></polyline>")
        legend.append(f'<span style="color:{colour}">&#9632;</span> {_e(names.get(fid, fid))}')
    parts.append("</svg>")
    access = {v["id"]: (sum(f["granted"] for f in v["files"]), sum(f["denied"] for f in v["files"]))
              for v in report["federations"]}
    most = max([g + d for g, d in access.values()] + [1])
    bars = "".join(
        f'<div class="bar"><span class="barname">{_e(names.get(fid, fid))}</span>'
        f'<span class="g" style="width:{g / most * 60:.1f}%" title="granted">{g}</span>'
        f'<span class="d" style="width:{d / most * 60:.1f}%" title="denied">{d}</span></div>'
        for fid, (g, d) in sorted(access.items()))
    totals = report["summary"]["accesses"]
    return ("<h3>Members per federation over time</h3>" + "".join(parts)
            + f'<p class="muted">{" &nbsp; ".join(legend)} &nbsp; dashed: removals (red automatic, orange by '
              "the TAS); hover for details</p>"
            + f"<h3>Accesses: {_e(totals.get('granted', 0))} granted, {_e(totals.get('denied', 0))} denied</h3>"
            + (bars or '<p class="muted">no federations</p>')
            + '<p class="muted">per federation of the file: <span class="g">granted</span> '
              '<span class="d">denied</span> (denials of unknown files count in the total only)</p>')


def _federation_html(v: dict[str, Any]) -> str:
    parts = [f'<section class="fed"><h3>Federation {_e(v["id"])}: {_e(v["location"])} / {_e(v["service"])}</h3>',
             f"<p>parent {_e(v['parent'] or 'none (root)')}, key epoch {_e(v['epoch'])}, "
             f"{len(v['members'])} active member(s), {len(v['files'])} file(s)</p>",
             _tree_html(v.get("tree")),
             "<h4>Tree refreshes (one transaction each; keys in a bundle in the content store)</h4>",
             _table(["generation", "epoch", "members", "revoked before", "bundle", "block", "tx"],
                    [(r["generation"], r["epoch"], r["members"], r["revoked_before"], r["bundle"], r["block"],
                      r["tx"]) for r in v.get("refreshes", [])]),
             "<h4>Members now</h4>", _table(["address"], [(m,) for m in v["members"]]),
             "<h4>Joined</h4>", _table(["node", "leaf", "block", "time", "tx"],
                                       [(j["node"], j.get("leaf", ""), j["block"], _when(j["time"]), j["tx"])
                                        for j in v["joined"]]),
             "<h4>Left (removed: leaf revoked)</h4>",
             _table(["node", "leaf", "reason", "note (on chain)", "triggered by", "block", "tx"],
                    [(r["node"], r.get("leaf", ""), removal_reason(r), r.get("note", ""), r["by"], r["block"],
                      r["tx"]) for r in v["left"]]),
             "<h4>Moved (handover through the mobility contract)</h4>",
             _table(["node", "move", "record found at level", "by", "block", "tx"],
                    [*((m["node"], f"moved to {m['to']}", m["level"], m["operator"], m["block"], m["tx"])
                       for m in v["moves_out"]),
                     *((m["node"], f"moved from {m['from']}", m["level"], m["operator"], m["block"], m["tx"])
                       for m in v["moves_in"])]),
             "<h4>Left and joined another federation</h4>",
             _table(["node", "left at block", "why", "joined federation", "at block", "tx"],
                    [(m["node"], m["left_block"], m["reason"], m["to"], m["block"], m["tx"]) for m in v["moved_out"]]),
             "<h4>Came from another federation</h4>",
             _table(["node", "from federation", "left at block", "joined at block", "tx"],
                    [(m["node"], m["from"], m["left_block"], m["block"], m["tx"]) for m in v["moved_in"]]),
             "<h4>Files</h4>", _table(["file id", "uploader", "epoch", "policy (covers named)", "cover nodes",
                                       "block", "damaged", "tx"],
                                      [(f["file_id"], f["uploader"], f["epoch"], f["policy"],
                                        ", ".join(f"{k}: {c['nodes']}" for k, c in f.get("covers", {}).items()),
                                        f["registered"]["block"], "yes" if f["damaged_at"] else "no",
                                        f["registered"]["tx"]) for f in v["files"]]),
             "</section>"]
    return "".join(parts)


def write_html(report: dict[str, Any], cp: Checkpoint, path: Path, timeline_limit: int = TIMELINE_LIMIT) -> None:
    """One HTML file, inline CSS, no external assets (one inline sorting/filtering script, pinned by the
    CSP's hash): summary, findings, federations, timeline; addresses shortened, labels beside them."""
    token = _LABELS.set(report.get("labels") or {})
    try:
        _write_html(report, cp, path, timeline_limit)
    finally:
        _LABELS.reset(token)


def _write_html(report: dict[str, Any], cp: Checkpoint, path: Path, timeline_limit: int) -> None:
    s = report["summary"]
    findings = report["findings"]
    total = cp.event_count()
    timeline = list(cp.events(newest_first=True, limit=timeline_limit))
    shown = f"the latest {len(timeline)} of {total}" if total > len(timeline) else f"all {total}"
    summary_rows = [(k.replace("_", " "), json.dumps(v) if isinstance(v, dict) else v) for k, v in s.items()]
    page = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src '{_script_hash()}'\">",
        f"<title>fogfed audit {_e(report['contract'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>fogfed audit of {_e(report['contract'])}</h1>",
        f"<p>chain {_e(report['chain_id'])}, blocks {_e(report['start_block'])} to {_e(report['head_block'])} "
        f"({_e(_when(report['head_time']))} UTC), {_e(report['events'])} events.</p>",
        "<h2>Summary</h2>", _table(["what", "count"], summary_rows),
        f"<h2>Findings ({len(findings)})</h2>",
        (f'<p class="ok">No anomalies.</p>' if not findings else
         _table(["kind", "subject", "what happened", "transactions"],
                [(f"{f['kind']} ({KINDS.get(f['kind'], '')})", f["subject"], f["message"], " ".join(f["txs"]))
                 for f in findings])),
        "<h2>Charts</h2>", _charts_html(report),
        "<h2>Federations</h2>", "".join(_federation_html(v) for v in report["federations"]),
        "<h2>Removals</h2>",
        '<p class="muted">reason: the contract\'s code; note: the operator\'s text, stored on chain by '
        "removeMember; triggered by: the account whose transaction removed the node (for an automatic "
        "removal, the member's own access that tipped its false-claim count, and that file)</p>",
        _table(["node", "federation", "kind", "reason", "note (on chain)", "triggered by", "tipping file",
                "block", "tx"],
               [(r["node"], r["federation_id"],
                 "move" if r["reason"] == "moved" else "automatic" if r["automatic"] else "manual",
                 removal_reason(r), r.get("note", ""), r["by"], r.get("trigger", {}).get("file_id", ""),
                 r["block"], r["tx"])
                for r in report["state"]["removals"]]),
        "<h2>Damage reports</h2>", _table(["file", "uploader", "holder", "reporter", "reason", "block", "tx"],
                                          [(d["file_id"], d["uploader"], d["holder"], d["reporter"],
                                            d["reason_text"], d["block"], d["tx"])
                                           for d in report["state"]["damage"]]),
        f"<h2>Timeline ({_e(shown)} events, newest first)</h2>",
        _table(["block", "time", "event", "details", "tx"],
               [(e.block, _when(e.timestamp), e.name, ", ".join(f"{k}={v}" for k, v in e.args.items()), e.tx)
                for e in timeline]),
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    path.write_text("".join(page), encoding="utf-8")
