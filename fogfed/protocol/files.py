"""How a stored file is named on chain and what its encryptions are bound to.

A file id is keccak256(uploader address ++ content digest), the content digest
being the sha2-256 digest inside the ciphertext's CIDv0 (the contract computes
the id in ``registerFile``, so a copied registration names the copier's file,
never the original). ``encSkRef`` is the digest inside the CIDv0 of the CP-ABE
ciphertext of the file key, stored in the same content store. fogfed nodes
always register CIDv0 (``cidCodec`` 0), so both CIDs are rebuilt from digests.
"""

from __future__ import annotations

from eth_utils import keccak

from fogfed.storage.cids import DAG_PB, Cid, parse_cid
from fogfed.errors import InputError

STREAM_AAD = b"fogfed file stream v1"
_ENCSK_DOMAIN = b"fogfed encrypted file key v1\x00"


def file_id_for(uploader: str, content_digest: bytes) -> bytes:
    """The file id the contract gives ``uploader``'s registration of ``content_digest``."""
    if not isinstance(content_digest, (bytes, bytearray)) or len(content_digest) != 32:
        raise InputError(f"content digest must be 32 bytes, got {content_digest!r:.80}")
    return keccak(bytes.fromhex(uploader[2:]) + bytes(content_digest))


def file_id_of_cid(cid: str) -> bytes:
    """The 32-byte digest a CIDv0 (as ContentStore.add returns) names."""
    parsed = parse_cid(cid)
    if parsed.version != 0:
        raise InputError(f"CID {cid} is not a CIDv0", "fogfed registers the CIDv0 its store returns")
    return parsed.digest


def cid_of_file_id(file_id: bytes) -> str:
    """The CIDv0 string of a 32-byte content digest (or encSkRef)."""
    if not isinstance(file_id, (bytes, bytearray)) or len(file_id) != 32:
        raise InputError(f"file id must be 32 bytes, got {file_id!r:.80}")
    return str(Cid(0, DAG_PB, bytes(file_id)))


def encsk_aad(chain_id: int, contract: str, file_id: bytes) -> bytes:
    """Binds an encrypted file key to one file of one deployment, so it cannot be moved to another."""
    return _ENCSK_DOMAIN + chain_id.to_bytes(8, "big") + bytes.fromhex(contract[2:]) + file_id
