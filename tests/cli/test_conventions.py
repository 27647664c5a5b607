"""CLI conventions shared by every command (docs/cli.md): --json errors, settings resolution,
lazy start-up, --version, shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fogfed.cli.common import SETTINGS_FILE, setting, write_settings
from tests.cli.helpers import FOGFED, env_for, run_inproc


def _run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(FOGFED), *args], capture_output=True, text=True, env=env_for(home, **env),
                          cwd=home, timeout=120)


# -- errors under --json ---------------------------------------------------------------------

def test_an_operational_error_is_one_json_document(tmp_path: Path) -> None:
    proc = _run(tmp_path, "node", "status", "--home", str(tmp_path / "nowhere"), "--json")
    assert proc.returncode == 2 and proc.stderr == ""
    error = json.loads(proc.stdout)["error"]
    assert "no node in" in error["message"] and "fogfed node init" in error["hint"] and error["exit_code"] == 2


def test_a_usage_error_is_json_too(tmp_path: Path) -> None:
    proc = _run(tmp_path, "tas", "watch", "--json", "--interval", "soon")
    assert proc.returncode == 2 and proc.stderr == ""
    assert "--interval" in json.loads(proc.stdout)["error"]["message"]


def test_without_json_errors_stay_text(tmp_path: Path) -> None:
    proc = _run(tmp_path, "node", "status", "--home", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith("error: no node in")


# -- configuration: flag > env > settings.toml > default --------------------------------------

def test_precedence_flag_env_file_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGFED_RPC", raising=False)
    home = tmp_path / "node"
    assert setting("rpc", None, home) == (None, "default")
    write_settings(home, {"rpc": "http://file:1", "ipfs": None})
    assert setting("rpc", None, home) == ("http://file:1", str(home / SETTINGS_FILE))
    monkeypatch.setenv("FOGFED_RPC", "http://env:2")
    assert setting("rpc", None, home) == ("http://env:2", "env FOGFED_RPC")
    assert setting("rpc", "http://flag:3", home) == ("http://flag:3", "flag")
    assert "ipfs" not in (home / SETTINGS_FILE).read_text()  # None values are left out


def test_config_command_shows_sources(tmp_path: Path) -> None:
    home = tmp_path / "n"
    write_settings(home, {"rpc": "http://127.0.0.1:8545", "label": "gw-1"})
    shown = json.loads(_run(tmp_path, "node", "config", "--home", str(home), "--json",
                            FOGFED_IPFS="http://127.0.0.1:5001").stdout)["settings"]
    assert shown["rpc"] == {"value": "http://127.0.0.1:8545", "source": str(home / SETTINGS_FILE)}
    assert shown["ipfs"] == {"value": "http://127.0.0.1:5001", "source": "env FOGFED_IPFS"}
    assert shown["label"]["value"] == "gw-1"
    flagged = json.loads(_run(tmp_path, "node", "config", "--home", str(home), "--rpc", "http://x:1",
                              "--json").stdout)["settings"]
    assert flagged["rpc"] == {"value": "http://x:1", "source": "flag"}


@pytest.mark.parametrize("text, words", [
    ("rpc = ", "damaged"),
    ("rpc = 5\n", "non-text"),
    ("colour = \"red\"\n", "unknown"),
])
def test_damaged_settings_file_is_named(tmp_path: Path, capsys, text: str, words: str) -> None:
    home = tmp_path / "n"
    home.mkdir()
    (home / SETTINGS_FILE).write_text(text)
    code, _, err = run_inproc(capsys, "node", "config", "--home", str(home))
    assert code == 2 and str(home / SETTINGS_FILE) in err and words in err and "Traceback" not in err


def test_a_forgotten_rpc_creates_no_chain_or_store(tmp_path: Path) -> None:
    fog = tmp_path / "fog"
    for args in (["tas", "status"], ["node", "ls"], ["tas", "federation", "list"]):
        proc = subprocess.run([str(FOGFED), *args], capture_output=True, text=True, env=env_for(fog),
                              cwd=tmp_path, timeout=120)
        assert proc.returncode == 2 and "no embedded chain" in proc.stderr, proc.stderr
    assert not (fog / "chain").exists() and not (fog / "store").exists()


def test_audit_checkpoint_goes_to_the_audit_home(tmp_path: Path, capsys, monkeypatch) -> None:
    from fogfed.cli.audit_cmds import default_db

    monkeypatch.setenv("FOGFED_HOME", str(tmp_path / "fog"))
    monkeypatch.setenv("FOGFED_CONTRACT", "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_inproc(capsys, "audit", "report")
    assert code == 1 and str(default_db("0x5FbDB2315678afecb367f032d93F642f64180aa3")) in err
    assert str(tmp_path / "fog" / "audit") in err and not list(tmp_path.glob("*.sqlite"))


# -- start-up, version, completion -----------------------------------------------------------

@pytest.mark.parametrize("args", [["--help"], ["node", "--help"], ["tas", "status", "--help"],
                                  ["audit", "replay", "--help"], ["gas-report", "--help"]])
def test_help_imports_no_chain_library(args: list[str]) -> None:
    """Start-up stays fast (docs/cli.md, measured figures) because help never imports web3 or py-evm."""
    code = ("import sys\nfrom fogfed.cli import main\nrc = main(%r)\n"
            "heavy = sorted(m for m in ('web3', 'eth', 'eth_account', 'rich', 'fogfed.chain.connection') "
            "if m in sys.modules)\nprint('HEAVY', heavy)\n" % args)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "HEAVY []" in out, out


def test_node_status_imports_no_chain_library(tmp_path: Path) -> None:
    home = tmp_path / "n"
    home.mkdir()
    (home / "identity.json").write_text("{}")
    (home / "config.json").write_text(json.dumps({"address": "0xabc", "contract": "0xdef", "chain_id": 1,
                                                  "cache_bytes": 1 << 20}))
    code = ("import sys\nfrom fogfed.cli import main\nrc = main(['node', 'status', '--home', %r])\n"
            "print('RC', rc, 'HEAVY', sorted(m for m in ('web3', 'eth_account', 'pymcl') if m in sys.modules))\n"
            % str(home))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "FOGFED_HOME": str(tmp_path)}).stdout
    assert "RC 0 HEAVY []" in out, out
    assert "0xabc" in out and "--live adds" in out


def test_version_names_commit_and_artifact_codehash() -> None:
    from eth_utils import keccak

    from fogfed.chain import connect, deploy

    proc = subprocess.run([str(FOGFED), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("fogfed ") and lines[1].startswith("commit: ")
    fogfed_line = next(line for line in lines if line.startswith("FogFed artifact: sha256 "))
    chain = connect(None)
    fed = deploy(chain, chain.dev_accounts()[0])
    onchain = "0x" + keccak(bytes(chain.w3.eth.get_code(fed.address))).hex()
    assert f"codehash {onchain}" in fogfed_line


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script(shell: str) -> None:
    proc = subprocess.run([str(FOGFED), "completion", shell], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "_FOGFED_COMPLETE" in proc.stdout


def test_completion_answers_like_bash_asks(tmp_path: Path) -> None:
    env = {**env_for(tmp_path), "COMP_WORDS": "fogfed node sta", "COMP_CWORD": "2",
           "_FOGFED_COMPLETE": "bash_complete"}
    out = subprocess.run([str(FOGFED)], capture_output=True, text=True, env=env, timeout=60).stdout
    assert "plain,status" in out.splitlines()


def test_passphrase_file_must_hold_a_passphrase(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty.txt").write_text("\n")
    code, _, err = run_inproc(capsys, "node", "config", "--home", str(tmp_path), "--passphrase-file",
                              str(tmp_path / "empty.txt"))
    assert code == 2 and "is empty" in err
    code, _, err = run_inproc(capsys, "node", "config", "--home", str(tmp_path), "--passphrase-file",
                              str(tmp_path / "missing.txt"))
    assert code == 2 and "missing.txt" in err and "Traceback" not in err


def test_gas_report_scale_limits_match_the_library() -> None:
    """chain_cmds repeats them so --help needs no chain import; they must not drift."""
    from fogfed.chain import gasreport
    from fogfed.cli import chain_cmds

    assert (chain_cmds.DEFAULT_SCALE, chain_cmds.MAX_SCALE) == (gasreport.DEFAULT_SCALE, gasreport.MAX_SCALE)


def test_tas_init_refuses_a_short_passphrase_before_deploying(tmp_path: Path) -> None:
    fog = tmp_path / "fog"
    proc = subprocess.run([str(FOGFED), "tas", "init"], capture_output=True, text=True,
                          env=env_for(fog, FOGFED_PASSPHRASE="short"), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "at least 8 characters" in proc.stderr
    assert not fog.exists()  # no chain (so no deployment), no empty tas/ folder
