"""Ape integration: compile, the Ape-format tests with a gas profile, and the deploy script.

Each command runs through scripts/ape-solc.sh as a real subprocess (offline:
npm solc behind a solc-v<version> shim, npm Anvil started by ape-foundry).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NETWORK = ["--network", "ethereum:local:foundry"]

pytestmark = [pytest.mark.ape, pytest.mark.slow]


def ape(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # The venv's bin first, so the script finds this interpreter's `ape`.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "NO_COLOR": "1"}
    proc = subprocess.run([str(ROOT / "scripts" / "ape-solc.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def test_ape_config_matches_the_package_compiler_settings() -> None:
    import json

    import yaml

    from fogfed.chain.compile import SETTINGS

    solidity = yaml.safe_load((ROOT / "ape-config.yaml").read_text())["solidity"]
    npm_solc = json.loads((ROOT / "node_modules" / "solc" / "package.json").read_text())["version"]
    assert solidity["version"] == npm_solc
    assert solidity["evm_version"] == SETTINGS["evmVersion"]
    assert solidity["via_ir"] == SETTINGS["viaIR"]
    assert solidity["optimize"] == SETTINGS["optimizer"]["enabled"]
    assert solidity["optimization_runs"] == SETTINGS["optimizer"]["runs"]


def test_ape_compile_uses_the_npm_solc() -> None:
    import json

    from fogfed.chain.compile import SETTINGS

    proc = ape("compile", "--force")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Compiling using Solidity compiler '0.8.37" in out and "contracts/FogFed.sol" in out, out
    manifest = json.loads((ROOT / ".build" / "__local__.json").read_text())
    [compiler] = manifest["compilers"]
    assert compiler["version"].startswith("0.8.37+commit.")
    assert compiler["settings"]["viaIR"] == SETTINGS["viaIR"]
    assert compiler["settings"]["optimizer"] == SETTINGS["optimizer"]
    assert "FogFed" in manifest["contractTypes"]


def test_ape_test_runs_the_ape_suite_with_a_gas_profile() -> None:
    proc = ape("test", "tests/ape", *NETWORK, "--gas")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"\b\d+ passed\b", out) and " failed" not in out, out
    assert "Gas Profile" in out and "FogFed Gas" in out, out
    for method in ("__init__", "createFederation", "addMember", "registerFile"):
        assert re.search(rf"^\s*{method}\s+\d+\s+\d+", out, re.M), f"{method} missing from gas table:\n{out}"


def test_ape_run_deploy_prints_the_address() -> None:
    proc = ape("run", "deploy", *NETWORK)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    match = re.search(r"FogFed deployed at (0x[0-9a-fA-F]{40})", proc.stdout)
    assert match, out
    assert re.search(r"gas used \d+", proc.stdout), out


def test_ape_helper_explains_missing_npm_tools(tmp_path: Path) -> None:
    proc = subprocess.run([str(ROOT / "scripts" / "ape-solc.sh"), "compile"], cwd=ROOT,
                          env={**os.environ, "FOGFED_NODE_MODULES": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "npm tools" in proc.stderr and "scripts/test.sh" in proc.stderr
