"""The devnet launchers: real Anvil and Ganache, started and stopped by PID."""

from __future__ import annotations

import os

import pytest
from web3 import Web3

from fogfed.chain import devnet
from fogfed.errors import FogfedError

FIRST_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.mark.anvil
def test_anvil_fixture_answers_with_default_accounts(anvil_url: str) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil_url))
    assert w3.eth.chain_id == devnet.DEFAULT_CHAIN_ID
    assert w3.eth.accounts[0] == FIRST_ACCOUNT
    assert w3.eth.get_balance(FIRST_ACCOUNT) > 10**21


@pytest.mark.ganache
def test_ganache_fixture_shares_anvils_accounts(ganache_url: str) -> None:
    w3 = Web3(Web3.HTTPProvider(ganache_url))
    assert w3.eth.chain_id == devnet.DEFAULT_CHAIN_ID
    assert w3.eth.accounts[0] == FIRST_ACCOUNT
    assert len(w3.eth.accounts) >= 20


@pytest.mark.anvil
def test_stop_kills_the_process_and_frees_the_port() -> None:
    node = devnet.start_anvil()
    pid = node.pid
    assert devnet.rpc_chain_id(node.url) == devnet.DEFAULT_CHAIN_ID
    node.stop()
    node.stop()  # idempotent
    assert devnet.rpc_chain_id(node.url) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_missing_node_modules_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("FOGFED_NODE_MODULES", str(tmp_path / "nowhere"))
    with pytest.raises(FogfedError) as err:
        devnet.start_anvil()
    assert "nowhere" in err.value.message and "scripts/test.sh" in err.value.hint


def test_missing_tool_in_node_modules(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("FOGFED_NODE_MODULES", str(tmp_path))
    with pytest.raises(FogfedError, match="ganache"):
        devnet.start_ganache()


def test_unknown_devnet_kind() -> None:
    with pytest.raises(FogfedError, match="unknown devnet"):
        devnet.start_devnet("hardhat")


def test_rpc_chain_id_of_a_closed_port_is_none() -> None:
    from fogfed._proc import free_port
    assert devnet.rpc_chain_id(f"http://127.0.0.1:{free_port()}") is None
