"""Upload (paper Algorithms 4 and 8): encrypt and store, store the encrypted file key, register on chain,
share, cache and announce; an upload interrupted after registering is finished by the retry.

Nothing is lost: nothing is registered unless storage confirmed the
ciphertext and the encrypted key (docs/architecture.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from fogfed import abe
from fogfed._faults import step
from fogfed.chain import ChainError, ContractRevert
from fogfed.errors import InputError
from fogfed.node.datapath import encrypt_and_store, store_blob, temp_file
from fogfed.node.errors import NodeError
from fogfed.node.home import TMP, Progress
from fogfed.node.leftovers import UploadLeftovers, reclaim_leftovers
from fogfed.node.records import source_key
from fogfed.node.results import UploadResult
from fogfed.node.serving import Serving
from fogfed.node.sharing import Sharing
from fogfed.protocol.files import cid_of_file_id, encsk_aad, file_id_for, file_id_of_cid


class Uploading(Sharing, Serving):
    """Uploads of a FogNode and its record of them."""

    def upload(self, path: Path, *, policy: str | None = None, progress: Progress | None = None) -> UploadResult:
        """Paper Algorithms 4 + 8: encrypt, store, then register on chain; cache and announce.

        Nothing is registered unless storage confirmed the ciphertext and the
        encrypted key; a failure before registration leaves ``path`` untouched
        and the upload can be retried. ``policy`` (over loc:/svc:/ff:
        attributes) shares the file with every federation that satisfies it.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path} is not a readable file")
        fid = self._require_member("upload")
        self._ensure_key(fid)
        policy_text, descriptor, epoch, shares = self._policy_for(policy, fid)
        pk = self.public_key(fid)
        source = source_key(path, policy)
        earlier_id = self.uploads.pending(source)
        # an upload of this very file was interrupted: registered, or not at all?
        earlier = self.uploads.registration(earlier_id) if earlier_id is not None else None
        given_up = {earlier_id} if earlier_id is not None and earlier is None else set()
        reclaim_leftovers(self.home / TMP, self.store, self._registered_key, given_up,  # what failed uploads stored
                          self._registration_dropped)
        if earlier_id is not None:
            if earlier is not None and not self._stale_registration(bytes.fromhex(earlier["file_id"][2:])):
                return self._finish_earlier(earlier, source, path, shares)  # registered, its answer lost
            self.uploads.finish(source)  # never registered, or registered with a cover a removal had outdated
        file_key = os.urandom(32)
        with temp_file(self.home / TMP) as (ct_path, ct_copy), UploadLeftovers(self.home / TMP, self.store) as left:
            # a local store's copy is the cache's: the ciphertext is written once (datapath.py)
            # the store tells the CID before it can pin it: noted, a reply lost after the pin leaks nothing
            cid, info, ct_sha = encrypt_and_store(left.noting(self.store, self._file_id_hex), path, file_key,
                                                  None if getattr(self.store, "local", False) else ct_copy, progress)
            digest = file_id_of_cid(cid)
            file_id = file_id_for(self.address, digest)
            left.stored(cid, "0x" + file_id.hex())
            self.uploads.begin(source, "0x" + file_id.hex())
            step("upload:stored")
            gas: dict[str, int] = {}
            for attempt in range(3):  # a removal between reading the epoch and registering makes it stale
                # covers as the chain has them now, not before the file was encrypted (which may take long)
                policy_text, descriptor, epoch, shares = self._policy_for(policy, fid)
                encsk = abe.encrypt(pk, policy_text, file_key, aad=encsk_aad(self.chain_id, self.fed.address,
                                                                            file_id))
                encsk_ref = file_id_of_cid(store_blob(self.store, encsk, left))
                step("upload:key-stored")

                def signing(nonce: int) -> None:  # before the transaction can leave: its nonce tells its fate
                    left.sending("0x" + file_id.hex(), nonce, self.account.address)
                    step("upload:signed")
                try:
                    tx = self.fed.register_file(self.account, fid, digest, info.plaintext_hash, encsk_ref,
                                                descriptor, epoch, on_nonce=signing)
                    break
                except ContractRevert as exc:
                    if exc.error_name != "StaleEpoch" or attempt == 2:
                        raise
            gas["registerFile"] = tx.gas_used
            step("upload:registered")
            problems = self._covers_at(tx.event("FileRegistered"))[1]
            if problems:  # a removal in a federation shared with was mined between our look and the registration
                self.uploads.finish(source)
                raise NodeError(f"file 0x{file_id.hex()} was registered, but {'; '.join(problems)}; it is not "
                                f"shared, and fetchers refuse it",
                                "upload it again: the retry encrypts under a fresh key and the current covers")
            for other in sorted(shares):
                gas[f"shareFile:{other}"] = self.fed.share_file(self.account, file_id, other).gas_used
            announced = self._cache_and_announce(file_id, ct_path, ct_sha, gas, cid=cid)
            left.finish({cid, cid_of_file_id(encsk_ref)})  # unpins the keys of attempts that went stale
        self._record_upload(file_id, cid, path, info.plaintext_size, fid, epoch, descriptor)
        self.uploads.finish(source)
        return UploadResult(file_id, cid, info.plaintext_hash, info.plaintext_size, fid, epoch, policy_text,
                            tuple(sorted(shares)), announced, gas, descriptor)

    def _registered_key(self, file_id_hex: str) -> str | None:
        """The encrypted key's CID if this node registered ``file_id_hex``; None if not (or unknown now)."""
        try:
            record = self.fed.file(bytes.fromhex(file_id_hex[2:]))
        except (ChainError, ValueError):
            return None
        return cid_of_file_id(record.enc_sk_ref) if record.uploader.lower() == self.address.lower() else None

    def _file_id_hex(self, cid: str) -> str:
        return "0x" + file_id_for(self.address, file_id_of_cid(cid)).hex()

    def _registration_dropped(self, file_id_hex: str, sender: str | None, nonce: int) -> bool:
        """Whether a ``registerFile`` of ``file_id_hex`` that ``sender`` signed with ``nonce``, in an
        upload no longer running, can never be mined: the file is not registered and the chain has
        used the nonce (another transaction took it, or ours was mined and reverted), or this is the
        embedded chain and it has not (no mempool, no journal there: a transaction is mined as it is
        sent, so one not mined by a process that has ended was never sent). Unknown (chain away): False."""
        chain, sender = self.fed.chain, sender or self.address
        try:
            # the nonce first: a registration mined before this read is seen by the one below
            if not chain.nonce_used(sender, nonce) and not (chain.is_embedded and
                                                            not chain.nonce_used(sender, nonce, "latest")):
                return False
            self.fed.file(bytes.fromhex(file_id_hex[2:]))
        except ContractRevert as exc:
            return exc.error_name == "UnknownFile"
        except (ChainError, ValueError):
            return False
        return False

    def _stale_registration(self, file_id: bytes) -> bool:
        """Whether this node's registration of ``file_id`` names a cover a removal had outdated by then."""
        found = self.fed.events(self.fed.deploy_block, names=["FileRegistered"], where={"fileId": file_id})
        return bool(found) and bool(self._covers_at(found[-1])[1])

    def _finish_earlier(self, earlier: dict, source: str, path: Path, shares: dict[int, int]) -> UploadResult:
        """The steps an interrupted upload of the same source left undone: its shares, its record."""
        file_id = bytes.fromhex(earlier["file_id"][2:])
        size = path.stat().st_size
        gas: dict[str, int] = {}
        done = {e.args["federationId"] for e in self.fed.events(names=["FileShared"], where={"fileId": file_id})}
        for other in sorted(set(shares) - done):
            gas[f"shareFile:{other}"] = self.fed.share_file(self.account, file_id, other).gas_used
        self._record_upload(file_id, earlier["cid"], path, size, earlier["federation_id"], earlier["epoch"],
                            earlier["policy"])
        self.uploads.finish(source)
        announced = bool(self.fed.cache_expiry(file_id, self.address))
        return UploadResult(file_id, earlier["cid"], bytes.fromhex(earlier["plaintext_hash"][2:]), size,
                            earlier["federation_id"], earlier["epoch"], earlier["policy"], tuple(sorted(shares)),
                            announced, gas, earlier["policy"], resumed=True)

    def _record_upload(self, file_id: bytes, cid: str, path: Path, size: int, fid: int, epoch: int,
                       policy: str) -> None:
        self.uploads.add({"file_id": "0x" + file_id.hex(), "cid": cid, "name": path.name, "size": size,
                          "federation_id": fid, "epoch": epoch, "policy": policy, "uploaded_at": int(time.time())})

    def files(self) -> list[dict]:
        """Files this node uploaded: every registration the chain shows, oldest first, with the
        local name and time where this node recorded them (fogfed.node.records)."""
        return self.uploads.list()

