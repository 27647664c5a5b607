"""Errors the storage layer raises; all are FogfedErrors with a hint."""

from __future__ import annotations

from fogfed.errors import FogfedError, InputError


class StorageError(FogfedError):
    """A content store failed or answered something unusable."""


class StorageUnavailable(StorageError):
    """The store cannot be reached (IPFS node down, directory not writable)."""


class ContentNotFound(StorageError):
    """The store does not hold the requested content."""


class ContentCorrupted(StorageError, InputError):
    """Bytes from the store do not match their CID or their DAG's declared sizes."""
