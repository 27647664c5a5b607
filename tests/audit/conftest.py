"""Fixtures of the auditor tests: a Web3 on the session's Anvil and a replayed clean history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from fogfed import audit
from tests.audit.history import Script, clean_history


@pytest.fixture(scope="module")
def w3(anvil_url: str) -> Web3:
    return audit.connect(anvil_url)


@dataclass
class Replayed:
    script: Script
    ids: dict[str, Any]
    db: Path
    result: audit.ReplayResult


@pytest.fixture(scope="module")
def clean(w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    """The scripted clean history on a fresh deployment, replayed once into a checkpoint."""
    s = Script(w3)
    ids = clean_history(s)
    db = tmp_path_factory.mktemp("audit") / "clean.sqlite"
    return Replayed(s, ids, db, audit.replay(w3, s.address, db))
