"""The node's membership and keys: enrollment request, membership checks, keys delivered on chain or in
refresh bundles, the system public key, and the federation's member tree (paper Algorithm 2, node side)."""

from __future__ import annotations

import bisect

from fogfed import abe
from fogfed.chain import public_key_commitment
from fogfed.chain.types import DecodedEvent
from fogfed.errors import InputError
from fogfed.node.datapath import read_blob
from fogfed.node.errors import NotMember
from fogfed.node.home import NodeHome
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.filepolicy import cover_problems, trees_at
from fogfed.protocol.files import cid_of_file_id
from fogfed.protocol.keydelivery import MAX_SEALED_BYTES, KeyDeliveryError, open_node_key, referenced_digest
from fogfed.protocol.membertree import TREE_EVENTS, MemberTree, parse_descriptor
from fogfed.protocol.refresh import Bundle


class Membership(NodeHome):
    """Membership and key management of a FogNode."""

    def enrollment_request(self, location: str, service: str) -> EnrollmentRequest:
        """A signed request for the TAS operator (paper Algorithm 2, the node's side)."""
        return EnrollmentRequest.create(self.identity, location, service, chain_id=self.chain_id,
                                        contract=self.fed.address)

    def membership(self) -> tuple[int, bool]:
        """(federation id, active) as the contract records them."""
        member = self.fed.member(self.address)
        return member.federation_id, member.active

    def _require_member(self, what: str) -> int:
        fid, active = self.membership()
        if not active:
            raise NotMember(f"{self.address} is not an active member of any federation, so it cannot {what}",
                            "enroll with the TAS first (fogfed node request, then tas enroll)" if fid == 0 else
                            "this node was removed by the TAS or for false claims")
        return fid

    def refresh_keys(self) -> int:
        """Pull keys the TAS delivered on chain; returns how many new ones were stored.

        One view call tells the block of the latest delivery; only that block
        is searched unless an epoch was skipped, then the blocks since the last look.
        """
        latest = self.fed.peer_blocks(self.address)[0]
        seen = self.config.get("key_block", 0)
        if latest == 0 or latest <= seen:
            return 0
        deliveries = self._deliveries(latest, latest)
        if any(self._missing_before(d) for d in deliveries):
            deliveries = self._deliveries(seen + 1, latest)
        added = 0
        for d in deliveries:
            fid, epoch = d["federationId"], d["epoch"]
            if self.keyring.get(fid, epoch) is not None:
                continue
            sealed = d["sealedKey"]
            digest = referenced_digest(sealed)
            if digest is not None:  # the box itself is in the content store (verified against its CID)
                sealed = read_blob(self.store, cid_of_file_id(digest), MAX_SEALED_BYTES)
            sk = open_node_key(self.identity, sealed, self.public_key(fid), chain_id=self.chain_id,
                               contract=self.fed.address, federation_id=fid, epoch=epoch,
                               is_operator=self.fed.is_operator)
            added += self.keyring.add(fid, epoch, sk)
        self.config["key_block"] = latest
        self._save_config()
        return added

    def _deliveries(self, first: int, last: int) -> list[dict]:
        """Arguments of this node's KeyDelivered events in blocks ``first``..``last``."""
        return [e.args for e in self.fed.events(first, last, ["KeyDelivered"], where={"node": self.address})]

    def _missing_before(self, delivery: dict) -> bool:
        held = self.keyring.latest_epoch(delivery["federationId"])
        return held is not None and held < delivery["epoch"] - 1

    def public_key(self, federation_id: int | None = None) -> abe.PublicKey:
        """The system public key, read from a FederationCreated event and checked against the commitment."""
        fid = federation_id or self.membership()[0]
        if fid == 0:
            raise NotMember(f"{self.address} has no federation yet, so no public key to read")
        commitment = self.fed.federation(fid).public_key_commitment
        if self._pk is not None and public_key_commitment(self._pk.to_bytes()) == commitment:
            return self._pk
        cached = self.config.get("public_key")
        raw = bytes.fromhex(cached) if cached else None
        if raw is None or public_key_commitment(raw) != commitment:
            raw = self.fed.federation_public_key(fid)
            self.config["public_key"] = raw.hex()
            self._save_config()
        self._pk = abe.PublicKey.from_bytes(raw)
        return self._pk

    def _ensure_key(self, fid: int) -> None:
        # One key per membership and tree generation (no re-keying on removals): look only when missing.
        if self.keyring.latest_epoch(fid) is None:
            self.refresh_keys()
        self.pull_refreshes(fid)

    def pull_refreshes(self, federation_id: int) -> int:
        """Take this node's keys from the bundles of tree refreshes it has none for; returns how many.

        The bundle is read from the content store by the digest the chain
        holds (TreeRefreshed), so it is the one the TAS committed to; the
        entry is opened like a delivered key (sender a TAS operator, bound to
        this chain, contract, node, federation and the refresh's epoch).
        """
        tree = self.member_tree(federation_id)
        held = {a.split(":")[2] for sk in self.keyring.candidates() for a in sk.attributes
                if a.startswith(f"ct:{federation_id}:")}
        added = 0
        for gen, state in sorted({**tree.past, tree.generation: tree}.items()):
            if state.bundle is None or str(gen) in held or self.address not in state.leaves:
                continue
            limit = 48 + (state.assigned + 1) * (22 + MAX_SEALED_BYTES)
            bundle = Bundle.from_bytes(read_blob(self.store, cid_of_file_id(state.bundle), limit))
            if (bundle.chain_id, bundle.contract, bundle.federation_id, bundle.generation) != (
                    self.chain_id, self.fed.address, federation_id, gen):
                raise KeyDeliveryError(f"the key bundle of generation {gen} is not for this federation",
                                       "tell the TAS operator; the chain's commitment does not match")
            found = bundle.entry(self.address)
            if found is None or found[0] != state.leaves[self.address]:
                continue  # joined while the refresh was being built: `tas sync` delivers its key
            sk = open_node_key(self.identity, found[1], self.public_key(federation_id), chain_id=self.chain_id,
                               contract=self.fed.address, federation_id=federation_id, epoch=bundle.epoch,
                               is_operator=self.fed.is_operator)
            added += self.keyring.add(federation_id, bundle.epoch, sk)
        return added

    def member_tree(self, federation_id: int) -> MemberTree:
        """The federation's member tree replayed from chain events (kept in memory, synced on each call)."""
        tree = self._trees.setdefault(federation_id, MemberTree(federation_id))
        events = self._tree_events()
        if tree.block < self._tree_log_block:
            tree.apply(events[bisect.bisect_right(events, tree.block, key=_block):])
            tree.block = self._tree_log_block
        return tree

    def _tree_events(self) -> list[DecodedEvent]:
        """FogFed's member-tree events from the deployment to the head: taken from the home's cache
        (fogfed.node.treelog) once per process, then only the blocks after it read from the chain
        (every federation's tree and every look back at a registration share them)."""
        end = self.fed.chain.block_number()
        if end > self._tree_log_block:
            if self._tree_log_block < 0:
                self._tree_log, self._tree_log_block = self._tree_cache.load(self.fed.chain.block_hash)
                self._tree_cached_block = self._tree_log_block
            start = self.fed.deploy_block if self._tree_log_block < 0 else self._tree_log_block + 1
            if start <= end:
                found = self.fed.events(start, end, TREE_EVENTS)
                self._tree_log.extend(found)
                self._tree_log_block = end
                self._cache_tree_events(end, bool(found))
        return self._tree_log

    def _cache_tree_events(self, end: int, found: bool) -> None:
        # Written when there is something new to keep, or a long stretch a fresh process would scan again;
        # only final blocks, so a reorganisation cannot leave a taken-back event in the cache.
        cached = self._tree_cached_block
        if not found and end - cached < _RESCAN_BLOCKS:
            return
        final = end if self.fed.chain.confirmations == 0 else min(self.fed.chain.final_block(), end)
        block_hash = self.fed.chain.block_hash(final) if final > cached else None
        if block_hash is None:
            return
        new = [e for e in self._tree_log if cached < e.block_number <= final]
        if self._tree_cache.extend(new, final, block_hash):
            self._tree_cached_block = final

    def _covers_at(self, registration: DecodedEvent) -> tuple[dict[int, MemberTree], list[str]]:
        """The member trees of every federation a file's registered policy names, as they were just
        before its FileRegistered event, and what is wrong with its covers then (fogfed.protocol.filepolicy)."""
        text = registration.args["policy"]
        try:
            named = parse_descriptor(text)[1]
        except InputError:
            named = {}
        events = self._tree_events()
        events = events[:bisect.bisect_right(events, registration.block_number, key=_block)]
        trees = trees_at(events, named, (registration.block_number, registration.log_index))
        return trees, cover_problems(text, trees)


_RESCAN_BLOCKS = 64  # blocks without tree events a fresh process may rescan before the cache records them


def _block(event: DecodedEvent) -> int:
    return event.block_number
