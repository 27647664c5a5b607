"""``TrustedAuthority.status()["unfinished"]``: operations cut short at each step are described by kind,
federation, node(s), the step reached, the time they began and the commands that finish them; a journal
written before the start time was recorded is upgraded in place (issue 13)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from fogfed._faults import at_step
from fogfed.chain import connect
from fogfed.keys import NodeIdentity
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.storage import EmbeddedStore
from fogfed.tas.inflight import STEPS
from fogfed.tas.journal import Journal
from fogfed.tas.state import LocalDb
from tests.e2e.conftest import build_system

FIELDS = {"kind", "request", "federation_ids", "new_federations", "nodes", "node_count", "step", "progress",
          "started", "updated", "finish"}


class Cut(Exception):
    """The operation stopped here (as if the chain went away)."""


def _cut():
    raise Cut


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("status")
    s = build_system(connect(None), EmbeddedStore(root / "store"), root, layout=("A", "A"))
    yield s
    s.close()


def _request(tas, location: str) -> EnrollmentRequest:
    return EnrollmentRequest.create(NodeIdentity.generate(), location, "health", chain_id=tas.chain_id,
                                    contract=tas.contract_address)


def _cut_at(name: str, action) -> None:
    with at_step(name, _cut), pytest.raises(Cut):
        action()


def _only_unfinished(tas) -> dict:
    (u,) = tas.status()["unfinished"]
    assert set(u) == FIELDS and u["node_count"] == len(u["nodes"])
    assert u["step"] in STEPS[u["kind"]] and u["finish"][0] == "fogfed tas sync"
    assert u["started"] <= u["updated"] <= time.time() and u["started"] > time.time() - 600
    return u


@pytest.mark.parametrize("at, step, known", [
    ("enroll:journal", "accepted", False),  # its federation does not exist yet
    ("enroll:federation", "federation-created", True),
    ("enroll:addMember", "member-added", True),
    ("enroll:fund-sent", "funding", True),
    ("enroll:fund", "funded", True),
])
def test_an_enrollment_cut_short_says_how_far_it_got(system, at: str, step: str, known: bool) -> None:
    tas = system.tas
    location = "e" + at.split(":")[1].replace("-", "").lower()
    req = _request(tas, location)
    _cut_at(at, lambda: tas.enroll(req, approve=True, fund_wei=10**15))
    u = _only_unfinished(tas)
    fid = tas.fed.federation_by_attributes(location, "health")
    assert (u["kind"], u["request"], u["nodes"], u["step"], u["progress"]) == (
        "enroll", req.nonce.hex(), [req.address], step, None)
    assert (u["federation_ids"], u["new_federations"]) == (([fid], []) if known else ([], [f"{location}/health"]))
    assert u["finish"] == ["fogfed tas sync", "fogfed tas enroll REQUEST.json"]
    tas.sync()
    assert tas.status()["unfinished"] == [] and tas.fed.member(req.address).active


def test_a_batch_cut_short_lists_its_nodes_and_counts_its_progress(system) -> None:
    tas = system.tas
    reqs = [_request(tas, "batchtown") for _ in range(3)]
    _cut_at("batch:addMembers", lambda: tas.enroll_batch(reqs, approve=True, chunk=1))  # the first of 3 mined
    u = _only_unfinished(tas)
    fid = tas.fed.federation_by_attributes("batchtown", "health")
    assert (u["kind"], u["federation_ids"], u["new_federations"]) == ("enroll-batch", [fid], [])
    assert (u["nodes"], u["node_count"]) == ([r.address for r in reqs], 3)
    assert (u["step"], u["progress"]) == ("registering", {"done": 1, "total": 3})
    tas.sync()
    assert tas.status()["unfinished"] == []
    reqs = [_request(tas, "fundville") for _ in range(2)]
    _cut_at("batch:fund-sent", lambda: tas.enroll_batch(reqs, approve=True, fund_wei=10**15))
    u = _only_unfinished(tas)
    assert (u["step"], u["progress"]) == ("funding", {"done": 0, "total": 2})
    tas.sync()
    assert tas.status()["unfinished"] == []


def test_a_removal_and_a_refresh_cut_short(system) -> None:
    tas = system.tas
    node = system.nodes[1].address
    _cut_at("remove:journal", lambda: tas.remove(node))
    u = _only_unfinished(tas)
    assert (u["kind"], u["federation_ids"], u["nodes"], u["step"]) == ("remove", [1], [node], "accepted")
    assert u["finish"] == ["fogfed tas sync", f"fogfed tas remove {node}"]
    tas.sync()
    assert tas.status()["unfinished"] == []
    for at, step in (("refresh:stored", "bundle-stored"), ("refresh:mined", "committed")):
        _cut_at(at, lambda: tas.refresh(1))
        u = _only_unfinished(tas)
        assert (u["kind"], u["federation_ids"], u["nodes"], u["node_count"], u["step"]) == (
            "refresh", [1], [], 0, step)
        assert u["finish"] == ["fogfed tas sync", "fogfed tas refresh 1"]
        tas.sync()
        assert tas.status()["unfinished"] == []


def test_a_journal_from_before_the_start_time_is_upgraded(tmp_path) -> None:
    old = sqlite3.connect(tmp_path / "tas.sqlite")
    old.executescript("""
        CREATE TABLE journal (key TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL,
                              done INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL);
        CREATE TABLE nonces (nonce TEXT PRIMARY KEY, spent_at REAL NOT NULL);
        INSERT INTO journal VALUES ('ab12', 'enroll', '{}', 0, 200.0);
        INSERT INTO nonces VALUES ('ab12', 100.0);
        INSERT INTO journal VALUES ('remove:0x1:0', 'remove', '{}', 0, 300.0);
    """)
    old.commit()
    old.close()
    journal = Journal(LocalDb(tmp_path))
    assert [(e.key, e.started, e.updated) for e in journal.unfinished()] == [
        ("ab12", 100.0, 200.0),  # a request's nonce was spent when its entry was written
        ("remove:0x1:0", None, 300.0)]
    LocalDb(tmp_path)  # a second opening finds the column there
    entry = journal.begin("cd34", "enroll", {})
    assert entry.started == entry.updated and entry.started > time.time() - 60
