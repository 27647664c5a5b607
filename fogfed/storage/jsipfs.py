"""Start and stop js-ipfs nodes on 127.0.0.1 (for tests and benchmarks).

Kubo does not install here, so the npm ``ipfs`` package (js-ipfs 0.66.1, which
speaks the Kubo HTTP RPC API and yields Kubo's CIDs) stands in. A node runs in
a repo of its own with no gateway, bootstrap peers, MDNS or delegates; by
default offline with no swarm, or (``swarm=True``) listening for libp2p peers
on a loopback TCP port, so several nodes form a private swarm and exchange
blocks by Bitswap (:class:`JsIpfsSwarm`).

js-ipfs's swarm works on Node 20 only with the npm overrides in package.json
that keep every libp2p package on ``@multiformats/multiaddr`` 11: its
transports otherwise get multiaddr 12 from later semver-compatible releases,
reject libp2p 0.42's addresses ("no valid addresses were provided for
transports") and fail identify, so no peer ever gets a block.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import requests

from fogfed._proc import Server, free_port, port_open
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
    """A js-ipfs daemon; ``api_url`` is valid between ``start`` and ``stop``.

    ``start`` after ``stop`` (or after the process died) reuses the same repo and
    ports, so content survives a restart and clients keep their URL.
    ``swarm=True``: listen for peers on 127.0.0.1 (``swarm_port``, default a free
    one) instead of running offline; peers are added with :meth:`connect`.
    """

    def __init__(self, home: Path | None = None, *, port: int = 0, timeout: float = 60.0,
                 swarm: bool = False, swarm_port: int = 0) -> None:
        """``home`` (default: a new temp dir) holds the repo, the init config and the log."""
        self._own_home = home is None
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="fogfed-jsipfs-"))
        self.repo, self.log = self.home / "repo", self.home / "node.log"
        self.port, self.timeout = port, timeout
        self.swarm = swarm
        self.swarm_port = (swarm_port or free_port()) if swarm else 0
        self.peer_id: str | None = None
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
        swarm = [self.swarm_address_base] if self.swarm else []
        init_config.write_text(json.dumps({
            "Addresses": {"API": f"/ip4/127.0.0.1/tcp/{self.port}", "Gateway": "", "RPC": "",
                          "Swarm": swarm, "Delegates": []},
            "Bootstrap": [],
            "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
        }))
        if (self.repo / "config").exists():
            self._set_api_port()
        # a killed daemon leaves these behind; the process that owned them is gone
        for stale in ("api", "repo.lock"):
            p = self.repo / stale
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        offline = [] if self.swarm else ["--offline"]
        self._server = Server(
            "js-ipfs", ["node", str(cli), "daemon", *offline, "--enable-preload=false",
                        "--init-profile", "test", "--init-config", str(init_config)],
            ready=self._ready, env={"IPFS_PATH": str(self.repo)},
            log=self.log, timeout=self.timeout,
        )
        self._server.start()
        self.peer_id = self.rpc("id")["ID"]
        return self

    @property
    def swarm_address_base(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.swarm_port}"

    @property
    def swarm_address(self) -> str:
        """The multiaddr other nodes dial: ``/ip4/127.0.0.1/tcp/<port>/p2p/<peer id>``."""
        if not self.swarm or self.peer_id is None:
            raise FogfedError("this js-ipfs node has no swarm address", "start it with swarm=True")
        return f"{self.swarm_address_base}/p2p/{self.peer_id}"

    def rpc(self, command: str, *args: str, timeout: float = 30.0, **opts: str) -> dict:
        """One Kubo RPC call (``/api/v0/<command>?arg=...``) answered with a JSON object."""
        params = [("arg", a) for a in args] + list(opts.items())
        try:
            reply = requests.post(f"{self.api_url}/api/v0/{command}", params=params, timeout=timeout)
        except requests.RequestException as exc:
            raise FogfedError(f"js-ipfs at {self.api_url} did not answer {command}: {exc}") from None
        if reply.status_code != 200:
            raise FogfedError(f"js-ipfs at {self.api_url} refused {command}: {reply.text[:200]}")
        return reply.json()

    def connect(self, other: "JsIpfsNode") -> None:
        """Dial ``other`` (a swarm node) so the two exchange blocks by Bitswap."""
        self.rpc("swarm/connect", other.swarm_address)

    def peers(self) -> list[str]:
        """Peer ids this node is connected to."""
        return [p["Peer"] for p in self.rpc("swarm/peers").get("Peers") or []]

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


class JsIpfsSwarm:
    """``n`` js-ipfs daemons on 127.0.0.1, all connected to each other, no public peers.

    One daemon per fog node; content added through one is fetched through any
    other by Bitswap. :meth:`reconnect` redials after a daemon was restarted.
    """

    def __init__(self, n: int, home: Path | None = None, *, timeout: float = 60.0) -> None:
        if n < 1:
            raise FogfedError(f"a swarm needs at least one node, got {n}")
        self._own_home = home is None
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="fogfed-swarm-"))
        self.nodes = [JsIpfsNode(self.home / f"node{i}", swarm=True, timeout=timeout) for i in range(n)]

    @property
    def api_urls(self) -> list[str]:
        return [node.api_url for node in self.nodes]

    def start(self) -> "JsIpfsSwarm":
        try:
            for node in self.nodes:
                node.start()
            self.reconnect()
        except BaseException:
            self.stop()
            raise
        return self

    def reconnect(self) -> None:
        """Connect every running node to every running node after it (libp2p links go both ways)."""
        running = [node for node in self.nodes if node.pid is not None]
        for i, node in enumerate(running):
            for other in running[i + 1:]:
                node.connect(other)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def cleanup(self) -> None:
        self.stop()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "JsIpfsSwarm":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
