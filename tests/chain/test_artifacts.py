"""The committed artifact matches contracts/ and the solc wrapper behaves like a solc binary."""

from __future__ import annotations

import json
import subprocess

from fogfed.chain.artifacts import load_artifact, read_sources, sources_hash
from fogfed.chain.compile import REPO_ROOT, SETTINGS, SOLC_WRAPPER, compile_sources


def test_sources_hash_matches_contracts():
    assert load_artifact()["sourcesHash"] == sources_hash(read_sources()), \
        "contracts/ changed: run python -m fogfed.chain.compile and commit the artifact"


def test_sources_hash_sees_any_change():
    sources = read_sources()
    changed = dict(sources, **{"FogFed.sol": sources["FogFed.sol"] + " "})
    assert sources_hash(changed) != sources_hash(sources)


def test_recompiling_gives_the_committed_artifact():
    # node_modules/solc is installed by scripts/test.sh (npm ci); a missing compiler fails here.
    fresh = compile_sources(read_sources())
    committed = load_artifact()
    for key in ("abi", "bytecode", "deployedBytecode", "compiler", "sourcesHash"):
        assert fresh[key] == committed[key], f"artifact field {key} is stale"


def test_pinned_settings():
    assert SETTINGS["evmVersion"] == "shanghai" and SETTINGS["optimizer"]["enabled"]
    assert load_artifact()["compiler"]["settings"] == SETTINGS


def test_wrapper_answers_like_solc():
    out = subprocess.run(["node", str(SOLC_WRAPPER), "--version"], capture_output=True, text=True, check=True).stdout
    assert any(line.startswith("Version: 0.8.37+commit.") for line in out.splitlines())
    bad = subprocess.run(["node", str(SOLC_WRAPPER), "--bogus"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unsupported argument" in bad.stderr


def test_wrapper_reports_compile_errors_as_json():
    source = {"language": "Solidity", "sources": {"Bad.sol": {"content": "contract {"}}, "settings": {}}
    out = subprocess.run(["node", str(SOLC_WRAPPER), "--standard-json"], input=json.dumps(source),
                         capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
    errors = json.loads(out)["errors"]
    assert errors and errors[0]["severity"] == "error"


def test_wrapper_refuses_imports_outside_the_base_path(tmp_path):
    source = {"language": "Solidity", "settings": {},
              "sources": {"A.sol": {"content": 'import "../../etc/passwd";\ncontract A {}'}}}
    out = subprocess.run(["node", str(SOLC_WRAPPER), "--standard-json", "--base-path", str(tmp_path)],
                         input=json.dumps(source), capture_output=True, text=True, check=True).stdout
    assert any("not found" in e["message"].lower() or "not found" in e.get("formattedMessage", "").lower()
               for e in json.loads(out)["errors"])


def test_compile_errors_come_back_as_a_fogfed_error():
    """py-solc-x drives the wrapper; its SolcError becomes the compiler's own message."""
    import pytest

    from fogfed.errors import FogfedError

    with pytest.raises(FogfedError, match="Undeclared identifier"):
        compile_sources({"X.sol": "contract X { function f() public { y = 1; } }"}, name="X")
