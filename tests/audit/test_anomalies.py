"""Each anomaly comes from a scenario that causes it, with its evidence, and not from a clean history."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3
from web3.exceptions import ContractLogicError

from fogfed import audit
from fogfed.protocol.files import file_id_for
from tests.audit.conftest import Replayed
from tests.audit.history import ZERO, Script, base

pytestmark = pytest.mark.anvil


def _findings(w3: Web3, s: Script, tmp_path: Path) -> list[audit.Finding]:
    r = audit.replay(w3, s.address, tmp_path / "audit.sqlite")
    assert audit.verify(w3, s.address, r.state, r.head) == []  # anomalies are history, not corruption
    return audit.anomalies(r.state, r.head_time)


def _only(findings: list[audit.Finding], kind: str) -> list[audit.Finding]:
    assert {f.kind for f in findings} == {kind}, [f.message for f in findings]
    return findings


def test_clean_history_has_no_findings(clean: Replayed) -> None:
    assert audit.anomalies(clean.result.state, clean.result.head_time) == []


def test_repeated_denied_accesses_are_probing(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    prober = s.accounts[7]
    txs = [s.send(prober, "recordAccess", ids["file_a"]).transactionHash.to_0x_hex() for _ in range(3)]
    [f] = _only(_findings(w3, s, tmp_path), "probing")
    assert f.subject == prober and f.txs == txs and "3 times" in f.message


def test_two_denied_accesses_are_below_the_threshold(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    for _ in range(2):
        s.send(s.accounts[7], "recordAccess", ids["file_a"])
    assert _findings(w3, s, tmp_path) == []


def test_registering_just_before_removal_is_flagged(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    s.mine(20)
    node = s.accounts[2]
    upload = s.upload(node, ids["f1"], "last-minute")
    reg_tx = s.c.events.FileRegistered().get_logs(from_block=0, argument_filters={"fileId": upload})[0]
    removal = s.send(s.tas, "removeMember", node)
    [f] = _only(_findings(w3, s, tmp_path), "write_near_removal")
    assert f.subject == node
    assert f.txs == [reg_tx["transactionHash"].to_0x_hex(), removal.transactionHash.to_0x_hex()]


def test_announcing_right_after_re_enrolment_following_removal_is_flagged(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    s.mine(20)
    node = s.accounts[3]
    s.send(s.tas, "removeMember", node)
    s.send(s.tas, "addMember", ids["f1"], node, b"\x01" * 32)
    s.announce(node, ids["file_a"])
    s.send(node, "withdrawCache", ids["file_a"], node)
    [f] = _only(_findings(w3, s, tmp_path), "write_near_removal")
    assert f.subject == node and "after its removal" in f.message


def test_damage_reports_clustered_on_one_uploader(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    a = s.accounts
    files = [s.upload(a[1], ids["f1"], f"u{i}") for i in range(3)]
    reports = [s.send(a[2], "reportDamage", fid, ZERO, 1).transactionHash.to_0x_hex() for fid in files]
    [f] = _only(_findings(w3, s, tmp_path), "damage_cluster_uploader")
    assert f.subject == a[1] and f.txs == reports


def test_damage_reports_clustered_on_one_cache_holder(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    a = s.accounts
    files = [ids["file_a"]] + [s.upload(a[2], ids["f1"], f"h{i}") for i in range(2)]
    for fid in files:
        s.announce(a[3], fid)
    reports = [s.send(a[1], "reportDamage", fid, a[3], 2).transactionHash.to_0x_hex() for fid in files]
    [f] = _only(_findings(w3, s, tmp_path), "damage_cluster_holder")
    assert f.subject == a[3] and f.txs == reports


def test_a_stale_epoch_registration_is_refused_on_chain(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    s.send(s.tas, "bumpEpoch", ids["f1"], s.c.functions.federation(ids["f1"]).call()[2], b"\x07" * 32)
    with pytest.raises(ContractLogicError):
        s.c.functions.registerFile(ids["f1"], b"\x07" * 32, 0, b"\x08" * 32, b"\x09" * 32, 0, "p").transact(
            {"from": s.accounts[1]})
    assert _findings(w3, s, tmp_path) == []


def test_registration_in_the_block_that_retires_its_epoch_is_flagged(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    a = s.accounts
    fid = b"\x42" * 32
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        # Both wait in the same block; the registration pays more, so it is ordered first.
        reg = s.c.functions.registerFile(ids["f1"], fid, 0, b"\x08" * 32, b"\x09" * 32, 0,
                                       f"p and cover({ids['f1']}:0:0:{s.assigned[ids['f1']]})").transact(
            {"from": a[1], "gas": 300_000, "gasPrice": w3.to_wei(50, "gwei")})
        rem = s.c.functions.removeMember(a[2]).transact(
            {"from": s.tas, "gas": 300_000, "gasPrice": w3.to_wei(5, "gwei")})
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    r1, r2 = w3.eth.get_transaction_receipt(reg), w3.eth.get_transaction_receipt(rem)
    assert r1.status == r2.status == 1 and r1.blockNumber == r2.blockNumber
    assert r1.transactionIndex < r2.transactionIndex
    [f] = _only(_findings(w3, s, tmp_path), "stale_epoch")
    assert f.subject == a[1] and f.txs == [reg.to_0x_hex(), rem.to_0x_hex()]


def test_an_expired_announcement_never_withdrawn_is_flagged(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    holder = s.accounts[2]
    announce = s.c.functions.announceCache(ids["file_a"], s.now() + 60).transact({"from": holder})
    s.mine(1, seconds=120)
    [f] = _only(_findings(w3, s, tmp_path), "cache_never_withdrawn")
    assert f.subject == holder and f.txs == [announce.to_0x_hex()] and "expired" in f.message


def test_an_announcement_outliving_its_holders_membership_is_flagged(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    ids = base(s)
    holder = s.accounts[3]
    s.announce(holder, ids["file_a"])
    s.mine(20)
    s.send(s.tas, "removeMember", holder)
    [f] = _only(_findings(w3, s, tmp_path), "cache_never_withdrawn")
    assert f.subject == holder and "no longer a member" in f.message


def test_uncovered_and_impossible_covers_are_flagged(w3: Web3, tmp_path: Path) -> None:
    """A registration without a cover (raw transaction) or naming leaves the tree did not have is a finding."""
    s = Script(w3)
    ids = base(s)
    node, f1 = s.accounts[1], ids["f1"]
    s.send(node, "registerFile", f1, b"\x51" * 32, 0, b"\x52" * 32, b"\x53" * 32, 0, "ff:1")
    s.send(node, "registerFile", f1, b"\x54" * 32, 0, b"\x55" * 32, b"\x56" * 32, 0,
           f"ff:1 and cover({f1}:0:0:{s.assigned[f1] + 5})")
    fine = s.upload(node, f1, "covered")
    findings = _findings(w3, s, tmp_path)
    flagged = [f for f in findings if f.kind == "uncovered_file"]
    expected = {"0x" + file_id_for(node, bytes([b]) * 32).hex() for b in (0x51, 0x54)}
    assert len(flagged) == 2 and expected == {next(w for w in f.message.split() if w.startswith("0x"))
                                              for f in flagged}
    assert not any(("0x" + fine.hex()) in f.message for f in flagged)
