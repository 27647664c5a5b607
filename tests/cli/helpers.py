"""Running ``fogfed`` in-process and as a real process, and checking one-line failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fogfed.cli import main

PASSPHRASE = "cli test passphrase"
FOGFED = Path(sys.executable).parent / "fogfed"  # the console script installed with the package


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOGFED_")}
    env.update({"FOGFED_HOME": str(home), "FOGFED_PASSPHRASE": PASSPHRASE})
    env.update(extra)  # may override either
    return env


def run_proc(home: Path, *args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess:
    """``fogfed ARGS`` in a fresh interpreter (the persistent chain must carry state across these)."""
    return subprocess.run([str(FOGFED), *args], capture_output=True, text=True,
                          env=env_for(home, **extra), cwd=cwd or home, timeout=300)


def run_bytes(home: Path, *args: str, data: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``fogfed ARGS`` with ``data`` on stdin; stdout and stderr as bytes."""
    return subprocess.run([str(FOGFED), *args], input=data, capture_output=True, env=env_for(home),
                          cwd=cwd or home, timeout=300)


def ok_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def run_embedded(root: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    """``fogfed ARGS`` in a process of its own on the embedded chain under ``root`` (killed at ``kill_at``)."""
    extra = {"FOGFED_RPC": f"embedded:{root / 'chain'}"}
    if kill_at:
        extra["FOGFED_KILL_AT"] = kill_at
    return subprocess.run([str(FOGFED), *args], capture_output=True, text=True, env=env_for(root, **extra),
                          cwd=root, timeout=300)


def cli_env(monkeypatch, root: Path, rpc: str) -> None:
    """The environment of a CLI run in this process: FOGFED_* cleared, then home, passphrase and rpc."""
    for k in [k for k in os.environ if k.startswith("FOGFED_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("FOGFED_HOME", str(root))
    monkeypatch.setenv("FOGFED_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("FOGFED_RPC", rpc)
    monkeypatch.chdir(root)


def run_inproc(capsys, *args: str) -> tuple[int, str, str]:
    """``fogfed ARGS`` through fogfed.cli.main in this process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def tas_home(tmp_path: Path, monkeypatch, capsys) -> str:
    """A clean FOGFED_* environment in ``tmp_path`` (also the working directory) with an initialised
    TAS; sets and returns FOGFED_CONTRACT."""
    for k in [k for k in os.environ if k.startswith("FOGFED_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("FOGFED_HOME", str(tmp_path))
    monkeypatch.setenv("FOGFED_PASSPHRASE", PASSPHRASE)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_inproc(capsys, "tas", "init", "--json")
    assert code == 0, err
    contract = json.loads(out)["contract"]
    monkeypatch.setenv("FOGFED_CONTRACT", contract)
    return contract


def assert_one_line_error(code: int, err: str, expected_code: int, *words: str) -> None:
    """An ``error:`` line (plus at most a ``hint:`` line), the right exit code, no traceback."""
    assert code == expected_code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), err
    # a malformed policy adds two lines showing where (caret under the position)
    assert len(lines) <= 4 and lines[-1].startswith(("error: ", "hint: ", " ")), err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in err.lower(), err
