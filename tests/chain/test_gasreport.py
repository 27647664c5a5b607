"""fogfed.chain.gasreport: every Table 4 row measured from real receipts, the scale check, bad input."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from fogfed.chain import gasreport
from fogfed.chain.errors import ChainUnreachable, InvalidArgument, WrongChain
from fogfed.chain.gasreport import PAPER_TABLE4, GasRow, PaperRow

PAPER_GAS = {  # Table 4 of the paper, typed in again on purpose: the module's copy is under test
    "SC Deployment": 4_153_581,
    "Fog Federation Creation": 1_949_796,
    "Adding FN to FF": 847_139,
    "Add File Index and SK + Add File Hash": 2_136_909 + 2_037_800,
    "Getting SK and file index": 927_240,
    "Remove FN from FF": 806_318,
    "Verifying FN by attribute": 952_460,
}
SCALE_OPS = {"createFederation", "addMember", "registerFile", "recordAccess", "verifyMember", "removeMember"}


@pytest.fixture(scope="module")
def embedded_report() -> gasreport.GasReport:
    return gasreport.measure(scale=12)


def test_rows_follow_table4_in_order(embedded_report: gasreport.GasReport) -> None:
    assert [(r.paper_row, r.paper_gas) for r in embedded_report.rows] == list(PAPER_GAS.items())


def test_each_row_is_consistent(embedded_report: gasreport.GasReport) -> None:
    for row in embedded_report.rows:
        assert 21_000 < row.gas < row.paper_gas, row
        assert row.ratio == pytest.approx(row.gas / row.paper_gas, abs=1e-6)
        assert row.passed == (row.gas <= row.target)
        assert row.tx.startswith("0x") and len(row.tx) == 66
    assert embedded_report.passed == (all(r.passed for r in embedded_report.rows)
                                      and all(s.flat for s in embedded_report.scale))


def test_scale_check_measures_every_operation_twice(embedded_report: gasreport.GasReport) -> None:
    assert embedded_report.scale_n == 12
    assert {s.operation for s in embedded_report.scale} == SCALE_OPS
    by_op = {s.operation: s for s in embedded_report.scale}
    rows = {r.operation.split(" ")[0]: r for r in embedded_report.rows}
    for op, s in by_op.items():
        assert s.first == rows[op].gas  # the Table 4 row is the first measurement
        assert s.flat == (s.nth <= s.first * (1 + gasreport.FLAT_TOLERANCE))
        assert s.nth > 21_000


def test_json_is_the_spec_form(embedded_report: gasreport.GasReport) -> None:
    doc = embedded_report.to_json()
    assert set(doc) >= {"rows", "passed", "chain", "compiler", "scale"}
    for row in doc["rows"]:
        assert {"paper_row": str, "paper_gas": int, "gas": int, "ratio": float, "operation": str}.items() <= {
            k: type(row[k]) for k in ("paper_row", "paper_gas", "gas", "ratio", "operation")}.items()
    assert doc["compiler"]["version"].startswith("0.8.")
    assert doc["chain"]["name"] == "embedded" and doc["chain"]["rpc"] is None
    assert doc["scale"]["n"] == 12 and len(doc["scale"]["rows"]) == len(SCALE_OPS)


@pytest.mark.anvil
def test_anvil_receipts_back_every_row_and_match_the_embedded_chain(
        anvil_url: str, embedded_report: gasreport.GasReport) -> None:
    report = gasreport.measure(anvil_url, chain_id=31337, scale=12)
    w3 = Web3(Web3.HTTPProvider(anvil_url))
    for row in report.rows:
        receipt = w3.eth.get_transaction_receipt(row.tx)
        assert receipt["status"] == 1 and receipt["gasUsed"] == row.gas, row
    assert report.chain["chain_id"] == 31337 and "anvil" in report.chain["client"].lower()
    # py-evm and Anvil charge the same gas for the same transactions.
    assert [r.gas for r in report.rows] == [r.gas for r in embedded_report.rows]
    assert [(s.first, s.nth) for s in report.scale] == [(s.first, s.nth) for s in embedded_report.scale]


@given(st.one_of(st.integers(max_value=1), st.integers(min_value=gasreport.MAX_SCALE + 1),
                 st.booleans(), st.floats(), st.text(max_size=5), st.none()))
def test_bad_scale_is_refused_before_connecting(scale: object) -> None:
    with pytest.raises(InvalidArgument, match="scale must be an integer"):
        gasreport.measure("http://127.0.0.1:1", scale=scale)  # type: ignore[arg-type]


def test_unreachable_node() -> None:
    from fogfed._proc import free_port

    with pytest.raises(ChainUnreachable, match="cannot reach"):
        gasreport.measure(f"http://127.0.0.1:{free_port()}", scale=2)


def test_wrong_chain_id() -> None:
    with pytest.raises(WrongChain):
        gasreport.measure(chain_id=1, scale=2)


@given(gas=st.integers(min_value=0, max_value=10**8), target=st.integers(min_value=1, max_value=10**8))
def test_gas_row_ratio_and_verdict(gas: int, target: int) -> None:
    row = GasRow.of(PaperRow("r", 4_000_000, target, "op"), gas, "0x")
    assert row.ratio == pytest.approx(gas / 4_000_000, abs=1e-6)
    assert row.passed is (gas <= target)


def test_paper_table_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER_TABLE4[0].paper_gas = 1  # type: ignore[misc]


@pytest.mark.anvil
def test_benchmark_compares_embedded_and_anvil(tmp_path, capsys) -> None:
    import json

    from benchmarks import gas

    code = gas.main(["--scale", "3", "--json", str(tmp_path / "gas.json")])
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "gas.json").read_text())
    assert code == 0 and doc["identical"] is True, out
    assert "embedded and Anvil gas: identical" in out
    assert [r["gas"] for r in doc["embedded"]["rows"]] == [r["gas"] for r in doc["anvil"]["rows"]]
    assert {t["name"] for t in doc["targets"]} >= {p.name for p in PAPER_TABLE4}
