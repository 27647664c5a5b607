"""Start and stop an offline js-ipfs node on 127.0.0.1 (for tests and benchmarks).

Kubo does not install here, so the npm ``ipfs`` package (js-ipfs 0.66.1, which
speaks the Kubo HTTP RPC API and yields Kubo's CIDs) stands in. The node runs
offline with no swarm, gateway or bootstrap peers, in a repo of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from fogfed._proc import Server, port_open
from fogfed.errors import FogfedError

_REPO_ROOT = Path(__file__).resolve().parents[2]


def find_jsipfs() -> Path:
    """The js-ipfs CLI script under node_modules ($FOGFED_NODE_MODULES or the repo's)."""
    modules = Path(os.environ.get("FOGFED_NODE_MODULES", _REPO_ROOT / "node_modules"))
    cli = modules / "ipfs" / "src" / "cli.js"
    if not cli.is_file():
        raise FogfedError(f"js-ipfs not found at {cli}",
                          "run `npm ci` in the repository root (scripts/test.sh does) "
                          "or set FOGFED_NODE_MODULES to a node_modules holding ipfs@0.66.1")
    if shutil.which("node") is None:
        raise FogfedError("Node.js (`node`) is not on PATH; js-ipfs needs it", "install Node.js 20")
    return cli


class JsIpfsNode:
    """An offline js-ipfs daemon; ``api_url`` is valid between ``start`` and ``stop``.

    ``start`` after ``stop`` (or after the process died) reuses the same repo and
    port, so content survives a restart and clients keep their URL.
    """

    def __init__(self, home: Path | None = None, *, port: int = 0, timeout: float = 60.0) -> None:
        """``home`` (default: a new temp dir) holds the repo, the init config and the log."""
        self._own_home = home is None
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="fogfed-jsipfs-"))
        self.repo, self.log = self.home / "repo", self.home / "node.log"
        self.port, self.timeout = port, timeout
        self._server: Server | None = None

    @property
    def api_url(self) -> str:
        if self._server is None:
            raise FogfedError("js-ipfs node is not running", "call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self._server.proc if self._server else None
        return proc.pid if proc and proc.poll() is None else None

    def start(self) -> "JsIpfsNode":
        cli = find_jsipfs()
        self.home.mkdir(parents=True, exist_ok=True)
        init_config = self.home / "init.json"
        init_config.write_text(json.dumps({
            "Addresses": {"API": f"/ip4/127.0.0.1/tcp/{self.port}", "Gateway": "", "RPC": "",
                          "Swarm": [], "Delegates": []},
            "Bootstrap": [],
        }))
        if (self.repo / "config").exists():
            self._set_api_port()
        # a killed daemon leaves these behind; the process that owned them is gone
        for stale in ("api", "repo.lock"):
            p = self.repo / stale
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        self._server = Server(
            "js-ipfs", ["node", str(cli), "daemon", "--offline", "--enable-preload=false",
                        "--init-profile", "test", "--init-config", str(init_config)],
            ready=self._ready, env={"IPFS_PATH": str(self.repo)},
            log=self.log, timeout=self.timeout,
        )
        self._server.start()
        return self

    def _set_api_port(self) -> None:
        path = self.repo / "config"
        config = json.loads(path.read_text())
        config["Addresses"]["API"] = f"/ip4/127.0.0.1/tcp/{self.port}"
        path.write_text(json.dumps(config, indent=2))

    def _ready(self) -> bool:
        try:
            addr = (self.repo / "api").read_text().strip()  # /ip4/127.0.0.1/tcp/<port>/http
        except FileNotFoundError:
            return False
        parts = addr.split("/")
        if len(parts) < 5 or not parts[4].isdigit():
            return False
        self.port = int(parts[4])
        return port_open("127.0.0.1", self.port)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; the repo stays for a later ``start``."""
        if self._server:
            self._server.stop()
            self._server = None

    def kill(self) -> None:
        """Kill the daemon at once (SIGKILL), as a crash would."""
        if self._server and self._server.proc and self._server.proc.poll() is None:
            os.killpg(self._server.proc.pid, 9)
            self._server.proc.wait()
        self._server = None

    def cleanup(self) -> None:
        """Stop and, if this object created its home directory, delete it."""
        self.stop()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "JsIpfsNode":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
