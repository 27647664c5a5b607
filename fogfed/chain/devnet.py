"""Local Ethereum devnets (Anvil, Ganache) started and stopped by PID.

Used by the test fixtures, the benchmarks and the Ape helper; the product
itself runs on the embedded chain and needs none of this. Both devnets use
Anvil's default mnemonic, so the same funded accounts exist on both.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from fogfed._proc import Server, free_port
from fogfed.errors import FogfedError

HOST = "127.0.0.1"
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
# Anvil's chain id; Ganache is started with the same one so URLs are interchangeable.
DEFAULT_CHAIN_ID = 31337
ANVIL_BIN = Path("@foundry-rs/anvil-linux-amd64/bin/anvil")
GANACHE_CLI = Path("ganache/dist/node/cli.js")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def node_modules() -> Path:
    """The folder holding the npm tools: ``$FOGFED_NODE_MODULES`` or ``<repo>/node_modules``."""
    env = os.environ.get("FOGFED_NODE_MODULES")
    path = Path(env) if env else _REPO_ROOT / "node_modules"
    if not path.is_dir():
        raise FogfedError(
            f"npm tools not found: {path} does not exist",
            "run scripts/test.sh once (it runs npm ci), or set FOGFED_NODE_MODULES",
        )
    return path


def npm_tool(relative: Path) -> Path:
    """The path of one installed npm tool file, with a clear error if missing."""
    path = node_modules() / relative
    if not path.is_file():
        raise FogfedError(
            f"npm tool not installed: {path} is missing",
            "run scripts/test.sh once (it runs npm ci), or set FOGFED_NODE_MODULES",
        )
    return path


def rpc_chain_id(url: str, timeout: float = 0.5) -> int | None:
    """``eth_chainId`` of the node at ``url``, or None if it does not answer (yet)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read())
        return int(reply["result"], 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError):
        return None


class Devnet:
    """A running devnet: its RPC URL plus the server handle; a context manager."""

    def __init__(self, kind: str, server: Server, url: str) -> None:
        self.kind, self.server, self.url = kind, server, url

    @property
    def pid(self) -> int | None:
        """PID of the node process (Anvil itself, or the node running Ganache)."""
        return self.server.proc.pid if self.server.proc else None

    def stop(self) -> None:
        """Stop the node; safe to call twice."""
        self.server.stop()

    def __enter__(self) -> "Devnet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start(kind: str, argv: list[str], url: str, log: Path | None, timeout: float) -> Devnet:
    server = Server(kind, argv, lambda: rpc_chain_id(url) is not None, log=log, timeout=timeout)
    server.start()
    return Devnet(kind, server, url)


def start_anvil(port: int | None = None, *, accounts: int = 10,
                log: Path | None = None, timeout: float = 30.0) -> Devnet:
    """Start Anvil on 127.0.0.1 (instant mining, shanghai rules) and wait until it answers."""
    port = port or free_port(HOST)
    argv = [
        str(npm_tool(ANVIL_BIN)), "--host", HOST, "--port", str(port),
        "--accounts", str(accounts), "--mnemonic", DEFAULT_MNEMONIC,
        "--chain-id", str(DEFAULT_CHAIN_ID), "--hardfork", "shanghai",
        "--quiet",
    ]
    return _start("anvil", argv, f"http://{HOST}:{port}", log, timeout)


def start_ganache(port: int | None = None, *, accounts: int = 20,
                  log: Path | None = None, timeout: float = 60.0) -> Devnet:
    """Start Ganache on 127.0.0.1 (instant mining, shanghai) and wait until it answers."""
    port = port or free_port(HOST)
    argv = [
        "node", str(npm_tool(GANACHE_CLI)),
        "--server.host", HOST, "--server.port", str(port), "--logging.quiet",
        "--wallet.mnemonic", DEFAULT_MNEMONIC, "--wallet.totalAccounts", str(accounts),
        "--wallet.defaultBalance", "1000000",
        "--chain.hardfork", "shanghai", "--chain.chainId", str(DEFAULT_CHAIN_ID),
        # 30M like Anvil, so a deployment that fits one fits the other.
        "--miner.blockGasLimit", "30000000",
    ]
    return _start("ganache", argv, f"http://{HOST}:{port}", log, timeout)


def start_devnet(kind: str, port: int | None = None, **kwargs: object) -> Devnet:
    """Start the devnet named ``kind`` ("anvil" or "ganache")."""
    starters = {"anvil": start_anvil, "ganache": start_ganache}
    if kind not in starters:
        raise FogfedError(f"unknown devnet {kind!r}", "use 'anvil' or 'ganache'")
    return starters[kind](port, **kwargs)  # type: ignore[arg-type]
