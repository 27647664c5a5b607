"""The auditor: trust nothing but the chain and still see everything that happened.

Replay every FogFed event (optionally also its mobility contract's) into a local SQLite checkpoint (resumable), rebuild
the whole state and its history from events alone, verify it against the
contract's views at the same block, find anomalies, and export reports.

    w3 = connect("http://127.0.0.1:8545")
    result = replay(w3, address, "audit.sqlite")
    mismatches = verify(w3, address, result.state, result.head)
    with Checkpoint.open("audit.sqlite") as cp:
        report = build_report(cp)
"""

from fogfed.audit.abi import Event, EventSpec, decode_log, event_specs
from fogfed.audit.checkpoint import Checkpoint
from fogfed.audit.errors import AuditError
from fogfed.audit.findings import KINDS, Finding, Thresholds, anomalies
from fogfed.audit.replay import ReplayResult, check_mobility, replay, restore
from fogfed.audit.report import build_report, federation_views, write_csv, write_html, write_json
from fogfed.audit.source import LogSource, connect
from fogfed.audit.state import HANDLED_EVENTS, Rebuild, RebuildConfig
from fogfed.audit.verify import verify

__all__ = [
    "AuditError", "Checkpoint", "Event", "EventSpec", "Finding", "HANDLED_EVENTS", "KINDS", "LogSource",
    "Rebuild", "RebuildConfig", "ReplayResult", "Thresholds", "anomalies", "build_report", "check_mobility", "connect",
    "decode_log", "event_specs", "federation_views", "replay", "restore", "verify", "write_csv",
    "write_html", "write_json",
]
