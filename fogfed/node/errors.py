"""The node API's errors (a CLI maps each to its exit code through FogfedError)."""

from __future__ import annotations

from fogfed.errors import FogfedError, InputError


class NodeError(FogfedError):
    """A node operation could not be done."""


class NoNodeHome(NodeError, InputError):
    """The home folder given holds no node (a wrong --home or FOGFED_HOME: bad input, exit code 2)."""


class NotMember(NodeError):
    """This node is not an active member of any federation."""


class AccessDenied(NodeError):
    """The contract refused this node access to the file."""


class FetchFailed(NodeError):
    """No source gave an intact copy; nothing was written at the destination."""


class UntrustedFile(FetchFailed):
    """The file's registration or encrypted key breaks its own policy (its uploader's doing): refused, unread."""
