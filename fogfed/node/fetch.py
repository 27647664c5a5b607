"""Fetch (paper Algorithm 9): the free hasAccess view first (an honest node never spends gas on a strike),
the file's registration checked against the member trees as they were then, the recorded access, the
encrypted key (refused unless under the registered policy), then each source in turn (own cache, fresh
peer caches with damage-reported holders last, storage): verified against the CID, decrypted to a temp
file, the plaintext hash checked, renamed into place; a bad copy is reported on chain and the next tried.
"""

from __future__ import annotations

from pathlib import Path

from eth_utils import keccak

from fogfed import abe
from fogfed.abe.policy import Policy
from fogfed.chain import ChainError, ContractRevert
from fogfed.chain.types import DecodedEvent
from fogfed.errors import InputError
from fogfed.node.cache import CacheError
from fogfed.node.datapath import PlaintextMismatch, decrypt_checked, matches_cid, phase, read_blob, temp_file, write_pieces
from fogfed.node.errors import AccessDenied, FetchFailed, UntrustedFile
from fogfed.node.home import TMP, Progress
from fogfed.node.peer import PeerError
from fogfed.node.results import FetchResult, parse_file_id
from fogfed.node.serving import Serving
from fogfed.protocol.filepolicy import registered_policy
from fogfed.protocol.files import cid_of_file_id, encsk_aad, file_id_for
from fogfed.storage.errors import ContentCorrupted, StorageError

HASH_MISMATCH, FAILED_AUTHENTICATION = "hash-mismatch", "ciphertext-invalid"  # FogFed.reportDamage reasons
ACCESS_DENIED_REASONS = {1: "the file is not registered", 2: "this node is not a member",
                         3: "this node was removed", 4: "the file belongs to another federation"}
PEER_MISBEHAVED = {"too_large": FAILED_AUTHENTICATION, "too_slow": "unavailable"}
MAX_PEERS = 8
HOLDERS_CONSIDERED = 4 * MAX_PEERS  # fresh holders read from the chain, of which the MAX_PEERS least reported are tried
ZERO_HOLDER = "0x" + "00" * 20  # reportDamage's holder for the stored copy


class Fetching(Serving):
    """Fetches of a FogNode, with damage reports for bad copies."""

    def fetch(self, file_id: bytes | str, dest: Path, *, progress: Progress | None = None) -> FetchResult:
        """Paper Algorithm 9: from the own cache, a fresh peer cache or storage; verified; damage reported.

        A copy that fails any check is reported on chain, discarded, and the
        next source is tried; if none works FetchFailed is raised and nothing
        is written at ``dest``. A file whose registered covers were not its
        federations' at registration is refused (UntrustedFile) before any
        transaction; one whose encrypted key is under another policy than its
        registration stands for, before anything is decrypted (fogfed.protocol.filepolicy).
        """
        file_id = parse_file_id(file_id)
        dest = Path(dest)
        if dest.is_dir():
            raise InputError(f"{dest} is a directory", "give a file path to write the plaintext to")
        if not dest.parent.is_dir():
            raise InputError(f"folder {dest.parent} does not exist")
        fid = self._require_member("fetch files")
        self._check_access(file_id)
        self._ensure_key(fid)
        record = self.fed.file(file_id)
        plain_sha = record.plaintext_hash
        registration = self._registration(file_id, record)
        digest = bytes(registration.args["contentDigest"])
        expected = self._registered_policy(file_id, record, registration)
        gas: dict[str, int] = {}
        tx = self.fed.record_access(self.account, file_id)
        gas["recordAccess"] = tx.gas_used
        if not tx.value:
            reason = next((e.args["reason"] for e in tx.events if e.name == "AccessDenied"), None)
            raise AccessDenied(f"access to file 0x{file_id.hex()} denied by the contract: "
                               f"{ACCESS_DENIED_REASONS.get(reason, 'refused')}",
                               "only active members of the file's federation (or one it is shared with) may fetch")
        reports: list[str] = []
        unavailable: list[str] = []  # why a source gave nothing (IPFS down, peer gone): kept for the error
        try:
            file_key = self._file_key(file_id, record.enc_sk_ref, record.federation_id, expected, record.uploader)
        except StorageError as exc:
            if not _is_damage(exc):
                raise
            reports.append(self._report(file_id, ZERO_HOLDER, FAILED_AUTHENTICATION, "encrypted key", exc, gas))
            raise FetchFailed(f"the encrypted key of file 0x{file_id.hex()} is damaged in storage ({reports[0]})",
                              "nothing was written; the damage was reported on chain") from None
        cid = cid_of_file_id(digest)
        total = self._file_size(cid)  # ciphertext bytes, as the file's DAG declares them
        for source, holder, fill in self._sources(file_id, cid):
            with temp_file(self.home / TMP) as (ct_path, ct):
                phase(progress, f"fetching from {source.split(':')[0]}", total)
                try:
                    ct_sha = fill(ct, progress)
                except (PeerError, StorageError, CacheError, InputError) as exc:
                    code = getattr(exc, "code", "")
                    if code in PEER_MISBEHAVED:  # flooded past the declared size, or trickled past the deadline
                        reports.append(self._report(file_id, holder, PEER_MISBEHAVED[code], source, exc, gas))
                        continue
                    if code in ("not_cached",) or not _is_damage(exc):
                        unavailable.append(f"{source}: {getattr(exc, 'message', exc)}")
                        continue
                    reports.append(self._report(file_id, holder, FAILED_AUTHENTICATION, source, exc, gas))
                    continue
                # only a peer's bytes need their CID computed: the cache checks its own, and the
                # store checks every block against its CID as it gives it out
                from_peer = holder not in (None, ZERO_HOLDER)
                if from_peer:
                    phase(progress, "verifying", total)
                if from_peer and not matches_cid(ct_path, cid, progress):
                    reports.append(self._report(file_id, holder, FAILED_AUTHENTICATION, source,
                                                "bytes do not match the file's CID", gas))
                    continue
                try:
                    phase(progress, "decrypting", total)
                    info = decrypt_checked(file_key, ct_path, dest, plain_sha, progress)
                except PlaintextMismatch as exc:
                    reports.append(self._report(file_id, holder, HASH_MISMATCH, source, exc, gas))
                    continue
                except InputError as exc:  # StreamError: failed authentication
                    reports.append(self._report(file_id, holder, FAILED_AUTHENTICATION, source, exc, gas))
                    continue
                if source == "storage" and getattr(self.store, "local", False):
                    self._cache_and_announce(file_id, ct_path, None, gas, cid=cid)  # the store's copy
                elif source != "cache":
                    self._cache_and_announce(file_id, ct_path, ct_sha, gas)
                if source == "storage" and record.damaged:
                    self._report_intact(file_id, gas)
                return FetchResult(file_id, dest, source, info.plaintext_size, plain_sha, tuple(reports), gas)
        raise FetchFailed(f"no intact copy of file 0x{file_id.hex()} could be retrieved"
                          + (f" ({'; '.join(reports + unavailable)})" if reports or unavailable else ""),
                          "nothing was written; the damage was reported on chain" if reports else
                          "check that the content store is reachable and try again")

    def _registration(self, file_id: bytes, record) -> DecodedEvent:
        """The file's FileRegistered event, checked against the file's record (id, policy text)."""
        found = self.fed.events(self.fed.deploy_block, names=["FileRegistered"], where={"fileId": file_id})
        if not found or file_id_for(record.uploader, bytes(found[-1].args["contentDigest"])) != file_id \
                or keccak(found[-1].args["policy"].encode("utf-8", "surrogateescape")) != record.policy_ref:
            raise FetchFailed(f"the chain's registration of file 0x{file_id.hex()} does not name it",
                              "the RPC endpoint is not trustworthy; use another")
        return found[-1]

    def _registered_policy(self, file_id: bytes, record, registration: DecodedEvent) -> Policy:
        """The policy the file key must be encrypted under, from the registered text and the member
        trees as they were at registration; UntrustedFile if a cover is not the one the chain had then
        (fogfed.protocol.filepolicy). Free reads only: nothing is spent on a file that is refused."""
        text = registration.args["policy"]
        trees, problems = self._covers_at(registration)
        if not problems:
            try:
                return registered_policy(text, trees)
            except InputError as exc:
                problems = [str(exc.message)]
        raise UntrustedFile(f"file 0x{file_id.hex()} is refused: {'; '.join(problems)}",
                            f"its uploader {record.uploader} registered it so; nothing was written and nothing "
                            f"reported as damage (storage holds what was registered): tell the TAS operator")

    def _file_key(self, file_id: bytes, encsk_ref: bytes, file_fid: int, expected: Policy | None = None,
                  uploader: str = "") -> bytes:
        """The file key from the encrypted key in storage (verified against its CID); with ``expected``,
        only if the CP-ABE ciphertext is under exactly that policy (UntrustedFile otherwise)."""
        encsk = read_blob(self.store, cid_of_file_id(encsk_ref))
        if expected is not None:
            try:
                actual = abe.Ciphertext.from_bytes(encsk).policy
            except InputError as exc:
                actual, why = None, f"its encrypted key is not a CP-ABE ciphertext ({exc.message})"
            else:
                why = (f"its encrypted key is under the policy {str(actual)!r:.300}, not the "
                       f"{str(expected)!r:.300} its registration stands for")
            if actual != expected:
                raise UntrustedFile(f"file 0x{file_id.hex()} is refused: {why}",
                                    f"its uploader {uploader} registered that key; nothing was decrypted or written, and "
                                    "nothing reported as damage (storage holds what was registered): tell the "
                                    "TAS operator")
        pk = self.public_key(file_fid) if self.membership()[1] else self.public_key()
        aad = encsk_aad(self.chain_id, self.fed.address, file_id)
        for sk in self.keyring.candidates():
            try:
                return abe.decrypt(pk, sk, encsk, aad=aad)
            except (abe.PolicyNotSatisfied, abe.DecryptionError):
                continue
        raise AccessDenied(f"none of this node's keys can decrypt the key of file 0x{file_id.hex()}",
                           "the file's policy excludes this node, or its key for the file's epoch is missing "
                           "(fogfed node join)")

    def _sources(self, file_id: bytes, cid: str):
        """(name, holder for damage reports, fill function) in the order to try them."""
        if file_id in self.cache:
            def from_cache(out, progress):
                with self.cache.open(file_id) as f:
                    return write_pieces(iter(lambda: f.read(1 << 16), b""), out, progress)
            yield "cache", None, from_cache
        holders = [h.holder for h in self.fed.fresh_cache_holders(file_id, limit=HOLDERS_CONSIDERED)
                   if h.holder != self.address]
        if holders:
            reported = self._damage_reporters(file_id)
            # Holders with damage reports from the most distinct members go last (stable otherwise).
            holders.sort(key=lambda h: len(reported.get(h, ())))
        bound = self._declared_size(cid) if holders else 0
        for holder in holders[:MAX_PEERS]:
            url = self.fed.endpoint(holder)
            if not url:
                continue

            def from_peer(out, progress, holder=holder, url=url):
                result = self.peer_client.fetch(url, holder, file_id, out, progress=progress, max_bytes=bound)
                out.flush()
                return result.sha256
            yield f"peer:{holder}", holder, from_peer

        def from_storage(out, progress):
            # a local store's bytes are cached by reference (no digest); others' copies need one
            return write_pieces(self.store.cat(cid, progress=progress), out,
                                digest=not getattr(self.store, "local", False))
        yield "storage", ZERO_HOLDER, from_storage

    def _file_size(self, cid: str) -> int | None:
        """The ciphertext's size as its DAG declares it, or None when storage cannot tell (for progress)."""
        try:
            return self.store.size(cid)
        except StorageError:
            return None

    def _declared_size(self, cid: str) -> int:
        """The most a peer may send: the size the file's DAG declares (its root block in storage, checked
        against the CID), or this node's cache cap when storage cannot tell."""
        try:
            return self.store.size(cid)
        except StorageError:
            return self.cache.max_bytes

    def _damage_reporters(self, file_id: bytes) -> dict[str, set[str]]:
        """Holder -> distinct members that reported its copy of ``file_id`` damaged (FileDamaged events)."""
        out: dict[str, set[str]] = {}
        for e in self.fed.events(self.fed.deploy_block, names=["FileDamaged"], where={"fileId": file_id}):
            if e.args["holder"] != ZERO_HOLDER:
                out.setdefault(e.args["holder"], set()).add(e.args["reporter"])
        return out

    def _check_access(self, file_id: bytes) -> None:
        """Refuse locally, with no transaction, what recordAccess would refuse (the free hasAccess view).

        A refused recordAccess by a member of another federation counts a false claim against
        this node, and enough of them remove it: an honest node must never send one.
        """
        if self.fed.has_access(self.address, file_id):
            return
        try:
            self.fed.file(file_id)
        except ContractRevert:
            raise AccessDenied(f"there is no file 0x{file_id.hex()} on chain; no transaction was sent",
                               "check the file id (0x and 64 hex digits, as upload printed it)") from None
        member = self.fed.member(self.address)
        threshold = self.fed.settings().false_claim_threshold
        raise AccessDenied(f"file 0x{file_id.hex()} belongs to another federation and is not shared with this "
                           f"node's; no transaction was sent (recording this access would count a false claim: "
                           f"{member.false_claims} of {threshold} counted so far, removal at {threshold})",
                           "ask the uploader to share it, or fetch it from a node of its federation")

    def _report_intact(self, file_id: bytes, gas: dict[str, int]) -> None:
        """The stored copy was marked damaged but decrypted intact here: clear the mark on chain."""
        try:
            gas["reportIntact"] = self.fed.report_intact(self.account, file_id).gas_used
        except ChainError:
            pass  # the mark stays; the next intact fetch clears it

    def _report(self, file_id: bytes, holder: str | None, reason: int, source: str, why: object,
                gas: dict[str, int]) -> str:
        """Report a bad copy on chain (Algorithm 9's damage report); returns a line for the result."""
        text = f"{source}: {getattr(why, 'message', why)}"
        if holder is None:  # own cache: the cache already dropped it; nothing on chain to blame
            return text
        try:
            gas[f"reportDamage:{source}"] = self.fed.report_damage(self.account, file_id, reason, holder).gas_used
            return text + " (reported)"
        except ChainError as exc:
            return text + f" (report failed: {exc.message})"


def _is_damage(exc: Exception) -> bool:
    return isinstance(exc, ContentCorrupted) or getattr(exc, "code", "") == "corrupt"
