"""The compiled contract artifacts shipped inside the package.

``artifacts/FogFed.json`` holds the ABI, creation and runtime bytecode, the
compiler version and settings, and a hash of the Solidity sources it was built
from, so a ``pip install`` needs no Node or solc. Regenerate with
``python -m fogfed.chain.compile``.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fogfed.errors import FogfedError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
#: The contracts/ folder of a source checkout (absent in an installed wheel).
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


def read_sources(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, str]:
    """All ``.sol`` files under ``contracts_dir``, keyed by their path relative to it."""
    if not contracts_dir.is_dir():
        raise FogfedError(f"no contracts folder at {contracts_dir}",
                          "run this from a source checkout of fogfed")
    return {
        p.relative_to(contracts_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(contracts_dir.rglob("*.sol"))
    }


def sources_hash(sources: dict[str, str]) -> str:
    """SHA-256 over every (path, content) pair, in path order: names the exact sources."""
    h = hashlib.sha256()
    for path in sorted(sources):
        data = sources[path].encode("utf-8")
        h.update(f"{path}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@lru_cache(maxsize=None)
def load_artifact(name: str = "FogFed") -> dict[str, Any]:
    """The committed artifact of contract ``name`` (ABI, bytecode, compiler, sources hash)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FogfedError(f"contract artifact {path} is missing",
                          "run `python -m fogfed.chain.compile` in a source checkout") from exc
    except json.JSONDecodeError as exc:
        raise FogfedError(f"contract artifact {path} is not valid JSON ({exc})",
                          "regenerate it with `python -m fogfed.chain.compile`") from exc
