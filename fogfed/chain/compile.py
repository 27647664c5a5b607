"""Compile contracts/ with solcjs and write the package's artifacts.

Usage: ``python -m fogfed.chain.compile [--check]``. It compiles through
py-solc-x (``solcx.compile_standard``) with ``scripts/solc.js`` as the solc
executable (npm ``solc``, WebAssembly, no network) and writes one artifact per deployable contract
(``fogfed/chain/artifacts/FogFed.json``, ``FogFedMobility.json``). ``--check``
only compares a fresh build with the committed artifacts and exits 1 when stale.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from fogfed.chain.artifacts import ARTIFACTS_DIR, CONTRACTS_DIR, read_sources, sources_hash
from fogfed.errors import FogfedError

REPO_ROOT = CONTRACTS_DIR.parent
SOLC_WRAPPER = REPO_ROOT / "scripts" / "solc.js"
MAIN_CONTRACT = ("FogFed.sol", "FogFed")
#: Every contract that gets an artifact: FogFed, and mobility deployed next to it.
CONTRACTS = (MAIN_CONTRACT, ("FogFedMobility.sol", "FogFedMobility"))

#: Pinned compiler settings. viaIR: the many-field events are too deep for the legacy
#: pipeline. Optimizer runs 1: the smallest code; every runtime byte costs ~216 gas of
#: deployment, which must stay under 2,000,000 (per-call gas barely changes).
SETTINGS: dict[str, Any] = {
    "evmVersion": "shanghai",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 1},
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "devdoc", "userdoc"]}
    },
}


def standard_input(sources: dict[str, str]) -> dict[str, Any]:
    """The solc standard-JSON input for ``sources`` with the pinned settings."""
    return {
        "language": "Solidity",
        "sources": {path: {"content": text} for path, text in sources.items()},
        "settings": SETTINGS,
    }


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise FogfedError("node is not installed", "install Node.js 20 and run `npm ci` in the project root")
    return node


def solc_version() -> str:
    """Version string of the solcjs behind scripts/solc.js, e.g. ``0.8.37+commit.f401782d...``."""
    out = _run([_node(), str(SOLC_WRAPPER), "--version"], "")
    for line in out.splitlines():
        if line.startswith("Version: "):
            return line.removeprefix("Version: ").strip()
    raise FogfedError(f"unexpected `solc.js --version` output: {out.strip()[:200]!r}")


def _run(argv: list[str], stdin: str) -> str:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise FogfedError("solc did not finish within 300 s") from exc
    if proc.returncode != 0:
        raise FogfedError(f"solc wrapper failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}",
                          "run `npm ci` in the project root to install solc")
    return proc.stdout


def compile_all(sources: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Compile ``sources`` once; the artifact dict of every contract in CONTRACTS, by name."""
    import solcx  # only the compile step needs it
    from solcx.exceptions import SolcError

    _node()  # a clear error when Node.js is missing (solc.js is a Node script)
    try:
        out = solcx.compile_standard(standard_input(sources), base_path=CONTRACTS_DIR, solc_binary=SOLC_WRAPPER)
    except SolcError as exc:
        if exc.error_dict:
            text = "\n".join(e.get("formattedMessage", e.get("message", "")) for e in exc.error_dict
                             if e.get("severity") == "error")
            raise FogfedError(f"Solidity compilation failed:\n{text}") from exc
        raise FogfedError(f"solc wrapper failed (exit {exc.return_code}): {str(exc.stderr_data).strip()[:500]}",
                          "run `npm ci` in the project root to install solc") from exc
    except (OSError, ValueError) as exc:  # wrapper missing / not executable / output not JSON
        raise FogfedError(f"solc wrapper failed: {exc}", "run `npm ci` in the project root to install solc") from exc
    compiler = {"name": "solc", "version": solc_version(), "settings": SETTINGS}
    artifacts = {}
    for unit, name in CONTRACTS:
        contract = out["contracts"][unit][name]
        artifacts[name] = {
            "contractName": name,
            "sourceUnit": unit,
            "abi": contract["abi"],
            "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
            "devdoc": contract.get("devdoc", {}),
            "userdoc": contract.get("userdoc", {}),
            "compiler": compiler,
            "sourcesHash": sources_hash(sources),
            "sources": sorted(sources),
        }
    return artifacts


def compile_sources(sources: dict[str, str], name: str = "FogFed") -> dict[str, Any]:
    """Compile ``sources`` and return contract ``name``'s artifact dict (raises on any compiler error)."""
    return compile_all(sources)[name]


def write_artifact(artifact: dict[str, Any], directory: Path = ARTIFACTS_DIR) -> Path:
    """Write ``artifact`` as ``<contractName>.json`` (stable formatting, so diffs stay small)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{artifact['contractName']}.json"
    path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fogfed.chain.compile", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed artifact is stale")
    args = parser.parse_args(argv)
    try:
        artifacts = compile_all(read_sources())
        if args.check:
            stale = [name for name, artifact in artifacts.items() if _is_stale(name, artifact)]
            print(f"artifacts are stale ({', '.join(stale)}): run python -m fogfed.chain.compile" if stale
                  else "artifacts are up to date")
            return 1 if stale else 0
        paths = {name: write_artifact(artifact) for name, artifact in artifacts.items()}
    except FogfedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        artifact = artifacts[name]
        size = (len(artifact["deployedBytecode"]) - 2) // 2
        print(f"wrote {path.relative_to(REPO_ROOT)} (solc {artifact['compiler']['version']}, runtime {size} bytes)")
    return 0


def _is_stale(name: str, artifact: dict[str, Any]) -> bool:
    try:
        committed = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return any(committed.get(k) != artifact[k] for k in ("abi", "bytecode", "deployedBytecode", "sourcesHash", "compiler"))


if __name__ == "__main__":
    sys.exit(main())
