"""The fog-node role: local blob cache and the peer protocol (server and client).

Built as a library with injected dependencies (membership check, false-claim
report, eviction hook); the node command assembles it with the chain and
storage layers.
"""

from fogfed.node.client import AccessDenied, FetchFailed, FetchResult, FogNode, NodeError, UntrustedFile, UploadResult

__all__ = ["AccessDenied", "FetchFailed", "FetchResult", "FogNode", "NodeError", "UntrustedFile", "UploadResult"]
