"""The network settings as CLI options and settings.toml entries: --confirmations, --tx-journal,
--stuck-after, --ipfs-replicas, each by flag > FOGFED_* variable > <home>/settings.toml > default,
shown by `config`, and used by the chain and store the commands open (a restarted process resumes
the transactions in its home's journal)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fogfed.chain import connect
from tests.cli.helpers import assert_one_line_error, ok_json, run_inproc, run_proc

ENV = {"confirmations": "FOGFED_CONFIRMATIONS", "tx_journal": "FOGFED_TX_JOURNAL",
       "stuck_after": "FOGFED_STUCK_AFTER", "ipfs_replicas": "FOGFED_IPFS_REPLICAS"}
RPC = "http://127.0.0.1:9"  # `config` does not connect; a JSON-RPC URL makes the journal apply
IPFS3 = "http://127.0.0.1:7,http://127.0.0.1:8,http://127.0.0.1:9"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in [k for k in os.environ if k.startswith("FOGFED_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("FOGFED_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    node = tmp_path / "node"
    node.mkdir()
    return node


def config(capsys, home: Path, *args: str) -> dict:
    code, out, err = run_inproc(capsys, "node", "config", "--home", str(home), "--json", *args)
    assert code == 0, err
    return json.loads(out)["settings"]


def test_defaults_depend_on_the_chain(home: Path, capsys) -> None:
    embedded = config(capsys, home)
    assert embedded["confirmations"] == {"value": 0, "source": "default"}
    assert embedded["tx_journal"]["value"] is None and "embedded chain" in embedded["tx_journal"]["note"]
    assert embedded["stuck_after"]["value"] == 60.0 and embedded["ipfs_replicas"]["value"] is None
    rpc = config(capsys, home, "--rpc", RPC, "--ipfs", IPFS3)
    assert rpc["tx_journal"] == {"value": str(home / "tx-journal"), "source": "default"}
    assert rpc["ipfs_replicas"] == {"value": 2, "source": "default"}
    assert config(capsys, home, "--ipfs", "http://127.0.0.1:7,http://127.0.0.1:8")["ipfs_replicas"]["value"] == 2
    assert "one IPFS node" in config(capsys, home, "--ipfs", "http://127.0.0.1:7")["ipfs_replicas"]["note"]
    off = config(capsys, home, "--rpc", RPC, "--tx-journal", "off")["tx_journal"]
    assert off["value"] is None and off["source"] == "flag"


def test_flag_beats_env_beats_settings_file_beats_default(home: Path, capsys, monkeypatch) -> None:
    # a hand-written file may give the numbers as TOML numbers
    (home / "settings.toml").write_text(f'rpc = "{RPC}"\nipfs = "{IPFS3}"\nconfirmations = 12\n'
                                        'tx_journal = "journal"\nstuck_after = 90\nipfs_replicas = 3\n')
    from_file = config(capsys, home)
    where = str(home / "settings.toml")
    assert {k: v["source"] for k, v in from_file.items() if k in ENV} == dict.fromkeys(ENV, where)
    assert [from_file[k]["value"] for k in ENV] == [12, str(home / "journal"), 90.0, 3]  # relative to the home
    for name, value in {"confirmations": "finalized", "tx_journal": str(home / "env-j"), "stuck_after": "5",
                        "ipfs_replicas": "1"}.items():
        monkeypatch.setenv(ENV[name], value)
    from_env = config(capsys, home)
    assert {k: v["source"] for k, v in from_env.items() if k in ENV} == {k: f"env {v}" for k, v in ENV.items()}
    assert [from_env[k]["value"] for k in ENV] == ["finalized", str(home / "env-j"), 5.0, 1]
    flags = config(capsys, home, "--confirmations", "safe", "--tx-journal", "flag-j", "--stuck-after", "2.5",
                   "--ipfs-replicas", "2")
    assert {k: v["source"] for k, v in flags.items() if k in ENV} == dict.fromkeys(ENV, "flag")
    assert [flags[k]["value"] for k in ENV] == ["safe", str(home.parent / "flag-j"), 2.5, 2]  # relative to cwd
    code, out, err = run_inproc(capsys, "tas", "config", "--home", str(home), "--confirmations", "3")
    assert code == 0 and "confirmations  3   [flag]" in out and "ipfs_replicas  1   [env FOGFED_IPFS_REPLICAS]" in out


@pytest.mark.parametrize("args, env, words", [
    (["--confirmations", "soon"], {}, ["confirmations must be", "--confirmations"]),
    (["--stuck-after", "0"], {}, ["stuck-after", "positive", "--stuck-after"]),
    (["--ipfs-replicas", "two"], {}, ["ipfs-replicas", "whole number", "--ipfs-replicas"]),
    ([], {"FOGFED_STUCK_AFTER": "nan"}, ["positive", "env FOGFED_STUCK_AFTER"]),
    ([], {"FOGFED_CONFIRMATIONS": "-1"}, ["confirmations must be", "env FOGFED_CONFIRMATIONS"]),
])
def test_a_bad_value_is_refused_naming_where_it_came_from(home: Path, capsys, monkeypatch, args, env, words) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = run_inproc(capsys, "node", "config", "--home", str(home), "--rpc", RPC, *args)
    assert_one_line_error(code, err, 2, *words)


def test_a_bad_value_in_the_settings_file_names_the_file(home: Path, capsys) -> None:
    (home / "settings.toml").write_text('ipfs_replicas = 0\n')
    code, _, err = run_inproc(capsys, "node", "config", "--home", str(home))
    assert_one_line_error(code, err, 2, "ipfs-replicas", str(home / "settings.toml"))
    (home / "settings.toml").write_text('stuck_after = true\n')
    code, _, err = run_inproc(capsys, "node", "config", "--home", str(home))
    assert_one_line_error(code, err, 2, "damaged", "stuck_after")


def test_the_chain_and_store_a_command_opens_use_them(home: Path, monkeypatch, anvil_url: str, ipfs_api: str) -> None:
    from fogfed.cli.common import connect_chain, open_content_store
    from fogfed.storage import ReplicatedStore

    chain = connect_chain(anvil_url, home)
    assert (chain.confirmations, chain.stuck_after, chain.tx_journal_dir) == (0, 60.0, home / "tx-journal")
    three = ",".join([ipfs_api] * 3)  # one daemon three times: enough to count copies asked for
    (home / "settings.toml").write_text('confirmations = "2"\nstuck_after = "7"\ntx_journal = "off"\n'
                                        f'ipfs = "{three}"\nipfs_replicas = "3"\n')
    chain = connect_chain(anvil_url, home)
    assert (chain.confirmations, chain.stuck_after, chain.tx_journal_dir) == (2, 7.0, None)
    store = open_content_store(None, home)
    assert isinstance(store, ReplicatedStore) and store.replicas == 3
    monkeypatch.setenv("FOGFED_IPFS_REPLICAS", "4")  # more copies than daemons
    with pytest.raises(Exception, match="between 1 and the 3"):
        open_content_store(None, home)
    monkeypatch.setenv("FOGFED_TX_JOURNAL", "OFF")  # the library honours "off" too
    assert connect(anvil_url).tx_journal_dir is None


def test_init_remembers_them_and_a_restarted_process_resumes_its_journal(tmp_path: Path, anvil_url: str) -> None:
    """The TAS on Anvil with the default journal in its home: a transaction journaled by a process that
    died before broadcasting it is sent by the next `fogfed tas` process, before that one's own."""
    from eth_account import Account

    from fogfed.chain.nonces import Pending, TxJournal

    funder = connect(anvil_url)
    key = Account.create()
    funder.fund(key.address, 10**18, sender=funder.dev_accounts()[9])
    extra = {"FOGFED_PRIVATE_KEY": key.key.hex()}
    init = ok_json(run_proc(tmp_path, "tas", "init", "--rpc", anvil_url, "--confirmations", "0", "--stuck-after",
                            "30", "--json", **extra))
    settings = (tmp_path / "tas" / "settings.toml").read_text()
    assert 'confirmations = "0"' in settings and 'stuck_after = "30"' in settings and "tx_journal" not in settings
    journal = TxJournal(tmp_path / "tas" / "tx-journal", 31337, key.address)
    assert journal.path.is_file() and journal.pending() == {}  # used by init's deployment, nothing left over
    # the process that "died": signed and journaled a transfer, never broadcast it
    chain = connect(anvil_url)
    nonce = chain.w3.eth.get_transaction_count(key.address, "pending")
    fees = {"maxFeePerGas": 2 * chain.w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
            "maxPriorityFeePerGas": 10**9}
    tx = {"to": funder.dev_accounts()[8].address, "value": 12345, "gas": 21000, "chainId": 31337}
    signed = key.sign_transaction({**tx, **fees, "nonce": nonce})
    with journal.locked():
        journal.record(Pending(nonce, tx, fees, "0x" + signed.raw_transaction.hex(), ["0x" + signed.hash.hex()],
                               "fund"))
    created = ok_json(run_proc(tmp_path, "tas", "federation", "create", "jeddah", "health", "--json", **extra))
    assert created["federation_id"] >= 1
    receipt = chain.w3.eth.get_transaction_receipt(signed.hash)
    assert receipt["status"] == 1 and receipt["from"] == key.address
    assert list(journal.pending()) in ([], [nonce])  # a re-sent entry stays until a later send sees its receipt
    connect(anvil_url, tx_journal=journal.dir).recover(key)
    assert journal.pending() == {}
    assert chain.w3.eth.get_transaction_count(key.address) == nonce + 2  # the transfer, then createFederation
    assert init["contract"]
