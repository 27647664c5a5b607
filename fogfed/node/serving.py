"""The node's cache and its announcements on chain, and the peer server that serves cached copies."""

from __future__ import annotations

from pathlib import Path

from fogfed.chain import ChainError
from fogfed.errors import FogfedError, InputError
from fogfed.node.cache import CacheEntry, CacheError
from fogfed.node.membership import Membership
from fogfed.node.peer import PeerServer
from fogfed.node.results import parse_file_id

ANNOUNCE_MARGIN = 60  # announce for a little less than the maximum, so clocks may differ
ANNOUNCE_CHECK_MAX = 300.0  # seconds between announcement renewals of a serving node, at most


class Serving(Membership):
    """Cache, announcements and peer serving of a FogNode."""

    def _expiry(self) -> int:
        # A little short of the maximum, so that clocks may differ; a third short for tiny lifetimes.
        lifetime = self.max_cache_lifetime()
        return self.fed.chain.now() + lifetime - min(ANNOUNCE_MARGIN, lifetime // 3)

    def max_cache_lifetime(self) -> int:
        """The longest cache announcement the contract accepts, in seconds."""
        return self.fed.settings().max_cache_lifetime

    def announce_interval(self) -> float:
        """How often a serving node should renew its announcements: a third of the maximum cache
        lifetime (so a renewal is never late by a whole lifetime), at most 5 minutes, at least 1 s."""
        return max(1.0, min(self.max_cache_lifetime() / 3, ANNOUNCE_CHECK_MAX))

    def _cache_and_announce(self, file_id: bytes, path: Path, sha256: bytes | None, gas: dict[str, int], *,
                            cid: str | None = None) -> bool:
        """Cache the verified ciphertext and announce it on chain.

        ``sha256`` None: the bytes are the local store's file ``cid`` and the
        cache refers to them (``put_ref``). Otherwise the file at ``path`` is
        moved in with ``sha256``, the digest taken while it was written, so the
        cache neither reads nor hashes it again (its every open re-checks it).
        """
        try:
            if sha256 is None:
                self.cache.put_ref(file_id, cid)  # type: ignore[arg-type]
            else:
                self.cache.put_file(file_id, path, sha256)
        except (CacheError, InputError):
            return False  # a copy too large for the cache is simply not cached
        if not self._may_announce(file_id):
            return False  # shared-federation readers keep a private copy but cannot announce it
        expires = self._expiry()
        try:
            gas["announceCache"] = self.fed.announce_cache(self.account, file_id, expires).gas_used
        except ChainError:
            return False
        self.cache.set_expiry(file_id, expires)
        return True

    def _withdraw(self, file_id: bytes) -> None:
        # on_evict: a copy left the cache, so its announcement must go too
        if self.fed.cache_expiry(file_id, self.address):
            self.fed.withdraw_cache(self.account, file_id)

    def cache_entries(self) -> list[CacheEntry]:
        """The local cache's entries, least recently used first."""
        return self.cache.entries()

    def evict(self, file_id: bytes | str) -> bool:
        """Drop a cached copy (its announcement is withdrawn); False if it was not cached."""
        return self.cache.remove(parse_file_id(file_id))

    def refresh_announcements(self, *, margin: int = 300) -> int:
        """Re-announce held copies whose announcement expires within ``margin`` seconds; returns how many.

        The expiry is read from the chain (the source of truth), not the local index, so an
        announcement ended by anyone else is renewed at the next turn."""
        now = self.fed.chain.now()
        fid, active = self.membership()
        if not active:
            return 0
        done = 0
        for entry in self.cache.entries():
            if self.fed.cache_expiry(entry.file_id, self.address) - now > margin:
                continue
            if not self._may_announce(entry.file_id):
                continue
            expires = self._expiry()
            self.fed.announce_cache(self.account, entry.file_id, expires)
            self.cache.set_expiry(entry.file_id, expires)
            done += 1
        return done

    def _may_announce(self, file_id: bytes) -> bool:
        """Only members of a file's own federation may announce a copy (shared readers may not)."""
        return self.fed.is_active_member(self.address, self.fed.file(file_id).federation_id)

    # -- peer serving ------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> PeerServer:
        """Start the peer server and publish its endpoint on chain; returns the running PeerServer."""
        if self._server is not None:
            return self._server
        self._require_member("serve peers")
        server = PeerServer(self.identity, self.cache, self._may_read,
                            chain_id=self.chain_id, contract_address=self.fed.address, host=host,
                            port=port).start()
        try:
            self.fed.set_endpoint(self.account, server.url)
        except FogfedError:
            server.stop()
            raise
        self._server = server
        return server

    def _may_read(self, requester: str, file_id: bytes) -> bool:
        """Whether the contract lets ``requester`` read ``file_id`` (member of its federation or a shared one)."""
        return self.fed.has_access(requester, file_id)

