"""What the node API takes and gives: file ids, and the results of an upload and a fetch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fogfed.errors import InputError
from fogfed.node.cache import check_file_id

@dataclass(frozen=True)
class UploadResult:
    """A file uploaded and registered (paper Algorithms 4 and 8)."""

    file_id: bytes
    cid: str
    plaintext_hash: bytes
    size: int
    federation_id: int
    epoch: int
    policy: str
    shared_with: tuple[int, ...] = ()
    announced: bool = False
    gas: dict[str, int] = field(default_factory=dict)
    descriptor: str = ""  # the compact text registered on chain (policy with covers named, not listed)
    resumed: bool = False  # an earlier, interrupted upload of the same source was found on chain and finished

    @property
    def file_id_hex(self) -> str:
        """``0x`` + 64 hex digits, as the CLI prints and accepts it."""
        return "0x" + self.file_id.hex()


@dataclass(frozen=True)
class FetchResult:
    """A file retrieved (paper Algorithm 9): ``source`` is "cache", "peer:<address>" or "storage"."""

    file_id: bytes
    dest: Path
    source: str
    size: int
    plaintext_hash: bytes
    damage_reports: tuple[str, ...] = ()
    gas: dict[str, int] = field(default_factory=dict)


def parse_file_id(value: bytes | str) -> bytes:
    """A file id from 32 bytes or ``0x`` + 64 hex digits (a CID is not an id: ids name the uploader too)."""
    if isinstance(value, (bytes, bytearray)):
        return check_file_id(value)
    if not isinstance(value, str):
        raise InputError(f"file id must be bytes or text, got {type(value).__name__}")
    text = value.strip()
    if text.startswith("0x") and len(text) == 66:
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            pass
    elif text.startswith("Qm"):
        raise InputError(f"{text:.80} is a CID, not a file id",
                         "a file id is keccak256(uploader, CID digest): give the 0x id upload printed")
    raise InputError(f"malformed file id {value!r:.80}", "give 0x and 64 hex digits, as upload printed it")

