"""The fog node as a Python API: identity, keys, upload, fetch, cache, peer serving.

Paper Algorithms 4 (encrypt), 8 (add file) and 9 (retrieval) on the node side.
See docs/architecture.md for the upload and fetch orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fogfed.errors import FogfedError
from fogfed.keys.keystore import KdfParams
from fogfed.protocol.enrollment import EnrollmentRequest

Progress = Callable[[int], object]


class NodeError(FogfedError):
    """A node operation could not be done."""


class AccessDenied(NodeError):
    """The contract refused this node access to the file."""


class FetchFailed(NodeError):
    """No source gave an intact copy; nothing was written at the destination."""


@dataclass(frozen=True)
class UploadResult:
    """A file uploaded and registered (paper Algorithms 4 and 8)."""

    file_id: bytes
    cid: str
    plaintext_sha256: bytes
    size: int
    federation_id: int
    epoch: int
    policy: str
    shared_with: tuple[int, ...] = ()
    gas: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchResult:
    """A file retrieved (paper Algorithm 9): ``source`` is "peer:<address>" or "storage"."""

    file_id: bytes
    dest: Path
    source: str
    size: int
    plaintext_sha256: bytes
    damage_reports: tuple[str, ...] = ()
    gas: dict[str, int] = field(default_factory=dict)


class FogNode:
    """One fog node with its home directory (identity.json, keys.json, cache/, config.json)."""

    @classmethod
    def init(cls, home: Path, chain, fed_address: str, store, passphrase: str, *, account=None,
             kdf: KdfParams | None = None, cache_bytes: int = 1 << 30) -> "FogNode":
        """A new node: generates its identity (or uses ``account``) and writes its keystores."""
        raise NotImplementedError

    @classmethod
    def open(cls, home: Path, chain, store, passphrase: str) -> "FogNode":
        """Open an existing node home; WrongPassphrase for a wrong passphrase."""
        raise NotImplementedError

    def enrollment_request(self, location: str, service: str) -> EnrollmentRequest:
        """A signed request for the TAS operator (paper Algorithm 2, the node's side)."""
        raise NotImplementedError

    def refresh_keys(self) -> int:
        """Pull keys the TAS delivered on chain; returns how many new ones were stored."""
        raise NotImplementedError

    def upload(self, path: Path, *, policy: str | None = None, progress: Progress | None = None) -> UploadResult:
        """Paper Algorithms 4 + 8: encrypt, store, then register on chain; cache and announce."""
        raise NotImplementedError

    def fetch(self, file_id: bytes | str, dest: Path, *, progress: Progress | None = None) -> FetchResult:
        """Paper Algorithm 9: from a fresh peer cache or storage, verified; damage reported."""
        raise NotImplementedError

    def files(self) -> list[dict]:
        """Files this node uploaded (local record)."""
        raise NotImplementedError

    def cache_entries(self) -> list:
        """The local cache's entries."""
        raise NotImplementedError

    def serve(self, host: str = "127.0.0.1", port: int = 0):
        """Start the peer server and publish its endpoint on chain; returns the running PeerServer."""
        raise NotImplementedError

    def refresh_announcements(self, *, margin: int = 300) -> int:
        """Re-announce held copies whose announcement expires within ``margin`` seconds."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop serving and close the cache."""
        raise NotImplementedError
