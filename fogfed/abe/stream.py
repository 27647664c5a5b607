"""Streaming authenticated encryption of file contents (format version 2; version 1 is still read).

Chunked AES-256-GCM in the STREAM construction (Hoang, Reyhanitabar, Rogaway,
Vizar, "Online authenticated-encryption and its nonce-reuse misuse-resistance",
CRYPTO 2015): every chunk's nonce is ``prefix || chunk index || last flag``, so
dropping, reordering, duplicating or splicing chunks, truncating or extending
the stream all fail authentication. Memory use is a few chunks, whatever the
file size. The byte layout is documented in ``docs/stream-format.md``.

The per-stream AES key comes from HKDF-SHA256 over the caller's 32-byte file
key, a random salt, the header fields and a hash of the caller's associated
data; a second HKDF output stored in the header commits the stream to that key.
So a file key reused by mistake never repeats a (key, nonce) pair, a modified
header or wrong key/AAD is rejected before any chunk is opened, and one
ciphertext cannot decrypt validly under two different file keys.

Both directions also hash the whole plaintext (the file's plaintext hash,
registered on chain and checked after every fetch): with SHA-256 in version 1
streams, with BLAKE3-256 in version 2, which this module writes. The only
difference between the versions is that digest: on a busy machine a second
SHA-256 pass (the store already SHA-256-hashes every ciphertext block for
its CID) cost the upload a third of its speed; BLAKE3 costs a third of it.

Callers that decrypt: a failure can surface after earlier chunks were already
written or yielded (each of those chunks is authentic, but the file as a whole
is not). Write into a temporary file and rename it only after the call returned
without raising.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fogfed.errors import InputError

__all__ = [
    "DEFAULT_CHUNK",
    "HEADER_SIZE",
    "MAX_CHUNK",
    "MIN_CHUNK",
    "READ_VERSIONS",
    "TAG_SIZE",
    "VERSION",
    "EncryptingReader",
    "StreamError",
    "StreamInfo",
    "ciphertext_size",
    "decrypt_iter",
    "decrypt_stream",
    "encrypt_stream",
    "plaintext_digest",
    "plaintext_hasher",
]

MAGIC = b"\x89FOGFED\n"  # the high byte and newline catch text-mode mangling
VERSION = 2  # written; see PLAINTEXT_HASH for what changed from 1
READ_VERSIONS = (1, 2)
PLAINTEXT_HASH = {1: "sha256", 2: "blake3"}  # the digest of the whole plaintext, per version
KEY_SIZE = 32
SALT_SIZE = 32
PREFIX_SIZE = 7
COMMIT_SIZE = 32
TAG_SIZE = 16
_FIELDS = struct.Struct(f">8sBI{SALT_SIZE}s{PREFIX_SIZE}s")
HEADER_SIZE = _FIELDS.size + COMMIT_SIZE  # 84 bytes
_NONCE = struct.Struct(f">{PREFIX_SIZE}sI?")
MIN_CHUNK = 16
MAX_CHUNK = 16 * 1024 * 1024  # a crafted header must not make us allocate gigabytes
DEFAULT_CHUNK = 256 * 1024  # see docs/benchmarks.md: fastest of 64 KiB..1 MiB here
MAX_CHUNKS = 2**32  # the 4-byte counter in the nonce
_KDF_LABEL = b"fogfed stream v1 key+commit"

Progress = Callable[[int], object]


class StreamError(InputError):
    """A stream is malformed, was tampered with, or does not match the key/AAD."""


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def digest(self) -> bytes: ...


def plaintext_hasher(version: int = VERSION) -> Hasher:
    """A fresh hash of the whole plaintext as a stream of ``version`` records it (32-byte digest).

    BLAKE3 on one thread (``max_threads=1``): the upload already runs it
    beside the cipher; it releases the GIL on large buffers like hashlib.
    """
    if version == 2:
        return blake3.blake3(max_threads=1)
    if version == 1:
        return hashlib.sha256()
    raise StreamError(f"unsupported stream format version {version}; this fogfed reads versions "
                      f"{', '.join(map(str, READ_VERSIONS))}", "upgrade fogfed, or the header is corrupt")


def plaintext_digest(data: bytes | bytearray | memoryview, version: int = VERSION) -> bytes:
    """The plaintext hash of ``data`` as a stream of ``version`` (default: the one written now) records it."""
    h = plaintext_hasher(version)
    h.update(data)
    return h.digest()


@dataclass(frozen=True)
class StreamInfo:
    """What one encryption or decryption processed.

    ``plaintext_hash`` is the digest of the whole plaintext (SHA-256 in a
    version 1 stream, BLAKE3-256 in version 2: ``hash_name``), or None when
    hashing was switched off.
    """

    plaintext_size: int
    ciphertext_size: int
    plaintext_hash: bytes | None
    chunk_size: int
    chunks: int
    version: int = VERSION

    @property
    def hash_name(self) -> str:
        return PLAINTEXT_HASH[self.version]


def ciphertext_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Exact size of the stream that encrypts ``plaintext_size`` bytes.

    Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the
    last holds fewer (possibly none), so a plaintext that is a whole number of
    chunks ends with an empty final chunk.
    """
    _check_chunk_size(chunk_size, StreamError)
    if not isinstance(plaintext_size, int) or plaintext_size < 0:
        raise InputError(f"plaintext size must be a non-negative integer, got {plaintext_size!r}")
    full, rest = divmod(plaintext_size, chunk_size)
    return HEADER_SIZE + full * (chunk_size + TAG_SIZE) + rest + TAG_SIZE


def _check_chunk_size(chunk_size: object, error: type[InputError]) -> int:
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
        raise error(f"chunk size must be an integer, got {type(chunk_size).__name__}")
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise error(
            f"chunk size {chunk_size} is outside the allowed {MIN_CHUNK}..{MAX_CHUNK} bytes",
            "use the default chunk size unless you have measured a better one",
        )
    return chunk_size


def _check_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InputError(f"{what} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _check_key(sk: object) -> bytes:
    sk = _check_bytes(sk, "file key")
    if len(sk) != KEY_SIZE:
        raise InputError(f"file key must be {KEY_SIZE} bytes, got {len(sk)}", "pass the 32-byte symmetric file key SK")
    return sk


class _Cipher:
    """Per-stream key and the STREAM nonce sequence; shared by both directions."""

    def __init__(self, sk: bytes, fields: bytes, aad: bytes) -> None:
        _magic, self.version, self.chunk_size, salt, self.prefix = _FIELDS.unpack(fields)
        okm = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_SIZE + COMMIT_SIZE,
            salt=salt,
            info=_KDF_LABEL + fields + hashlib.sha256(aad).digest(),
        ).derive(sk)
        self.aead = AESGCM(okm[:KEY_SIZE])
        self.commitment = okm[KEY_SIZE:]
        self.index = 0

    def nonce(self, last: bool) -> bytes:
        index = self.index
        if index >= MAX_CHUNKS:
            raise StreamError(
                f"stream has more than {MAX_CHUNKS} chunks, the most the format can count",
                "encrypt with a larger chunk size",
            )
        self.index = index + 1
        return _NONCE.pack(self.prefix, index, last)  # prefix (7) | index (4, big-endian) | last flag (1)


def _fill(src: BinaryIO, view: memoryview, got: int | None = 0) -> int:
    """Read until ``view`` is full or the source ends; returns the byte count.

    ``got``: what the caller's own first ``readinto`` returned (bytes already in ``view``).
    """
    if got is None:
        raise InputError("source is non-blocking and had no data ready", "pass a blocking binary file")
    size = len(view)
    readinto = getattr(src, "readinto", None)
    while got < size:
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = src.read(size - got)
            if isinstance(data, str):
                raise InputError("source returned text, not bytes", "open the file in binary mode ('rb')")
            n = None if data is None else len(data)
            if n:
                view[got : got + n] = data
        if n is None:
            # Treating "no data yet" as EOF would end (and seal) the stream early.
            raise InputError("source is non-blocking and had no data ready", "pass a blocking binary file")
        if not n:
            break
        got += n
    return got


def _encrypt_chunks(
    sk: bytes, src: BinaryIO, aad: bytes, chunk_size: int, hash_plaintext: bool, progress: Progress | None,
    version: int = VERSION,
) -> Iterator[memoryview | bytes]:
    """Check the arguments, then return the generator of the stream's pieces."""
    sk = _check_key(sk)
    aad = _check_bytes(aad, "associated data")
    _check_chunk_size(chunk_size, InputError)
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise InputError(f"stream format version must be one of {READ_VERSIONS}, got {version!r}",
                         "leave the version out: the current one is written by default")
    fields = _FIELDS.pack(MAGIC, version, chunk_size, os.urandom(SALT_SIZE), os.urandom(PREFIX_SIZE))
    cipher = _Cipher(sk, fields, aad)
    return _seal(cipher, fields + cipher.commitment, src, chunk_size, hash_plaintext, progress, version)


def _seal(
    cipher: _Cipher, header: bytes, src: BinaryIO, chunk_size: int, hash_plaintext: bool, progress: Progress | None,
    version: int,
) -> Iterator[memoryview | bytes]:
    """Yield the header, then each ciphertext chunk; returns the StreamInfo.

    Chunks are views into one reused buffer: consume each before asking for
    the next. A source that fills a chunk in one ``readinto`` (a regular
    file, BytesIO) costs one call and one ``encrypt_into`` per chunk, full
    chunks need no slicing, so what the stream adds to AES-GCM is mostly the
    copy out of the source.
    """
    yield header
    inbuf = memoryview(bytearray(chunk_size))
    outbuf = memoryview(bytearray(chunk_size + TAG_SIZE))
    sha = plaintext_hasher(version) if hash_plaintext else None
    encrypt_into = cipher.aead.encrypt_into
    readinto = getattr(src, "readinto", None)
    total = 0
    while True:
        have = readinto(inbuf) if readinto is not None else 0
        if have != chunk_size:  # short read, end of file, no readinto, or no data ready: the careful loop
            have = _fill(src, inbuf, have)
        # A full chunk is never the last one (an empty final chunk follows it
        # at EOF), so the reader tells the last chunk by its size alone.
        last = have < chunk_size
        plain = inbuf[:have] if last else inbuf
        if sha is not None:
            sha.update(plain)
        out = outbuf[: have + TAG_SIZE] if last else outbuf
        encrypt_into(cipher.nonce(last), plain, None, out)
        total += have
        yield out
        if progress is not None:
            progress(total)
        if last:
            break
    return StreamInfo(
        plaintext_size=total,
        ciphertext_size=ciphertext_size(total, chunk_size),
        plaintext_hash=sha.digest() if sha is not None else None,
        chunk_size=chunk_size,
        chunks=cipher.index,
        version=version,
    )


def encrypt_stream(
    sk: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    aad: bytes = b"",
    chunk_size: int = DEFAULT_CHUNK,
    hash_plaintext: bool = True,
    progress: Progress | None = None,
    version: int = VERSION,
) -> StreamInfo:
    """Encrypt everything readable from ``src`` into ``dst`` as one stream.

    ``sk`` is the 32-byte file key; ``aad`` (e.g. the file id) must be given
    again to decrypt. ``progress`` is called after each chunk with the number
    of plaintext bytes read so far. Memory stays at about two chunks.
    ``version`` 1 writes the former format, for readers that predate 2.
    """
    chunks = _encrypt_chunks(sk, src, aad, chunk_size, hash_plaintext, progress, version)
    while True:
        try:
            dst.write(next(chunks))
        except StopIteration as done:
            return done.value


class EncryptingReader(io.RawIOBase):
    """A readable binary file whose content is the encryption of ``src``.

    Ciphertext is produced on the fly while it is read, so a store can upload
    it without a temporary file. After EOF, ``info`` holds the StreamInfo.
    """

    def __init__(
        self,
        sk: bytes,
        src: BinaryIO,
        *,
        aad: bytes = b"",
        chunk_size: int = DEFAULT_CHUNK,
        hash_plaintext: bool = True,
        progress: Progress | None = None,
        version: int = VERSION,
    ) -> None:
        super().__init__()
        self._chunks = _encrypt_chunks(sk, src, aad, chunk_size, hash_plaintext, progress, version)
        self._pending = memoryview(b"")
        self.info: StreamInfo | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        dst = memoryview(buffer).cast("B")
        while not self._pending and self.info is None:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration as done:
                self.info = done.value
        n = min(len(dst), len(self._pending))
        dst[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _parse_header(header: bytes, sk: bytes, aad: bytes) -> _Cipher:
    if len(header) < HEADER_SIZE:
        raise StreamError(
            f"stream header truncated: got {len(header)} of {HEADER_SIZE} bytes",
            "the file is incomplete; fetch it again",
        )
    fields, commitment = header[: _FIELDS.size], header[_FIELDS.size : HEADER_SIZE]
    magic, version, chunk_size, _salt, _prefix = _FIELDS.unpack(fields)
    if magic != MAGIC:
        raise StreamError(
            f"not a fogfed stream: magic bytes are {magic.hex()}, expected {MAGIC.hex()}",
            "was this file encrypted with fogfed.abe.stream?",
        )
    if version not in READ_VERSIONS:
        raise StreamError(
            f"unsupported stream format version {version}; this fogfed reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}",
            "upgrade fogfed, or the header is corrupt",
        )
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise StreamError(
            f"stream header declares chunk size {chunk_size}, outside the allowed {MIN_CHUNK}..{MAX_CHUNK} bytes",
            "the header is corrupt or was crafted",
        )
    cipher = _Cipher(sk, fields, aad)
    if not hmac.compare_digest(commitment, cipher.commitment):
        raise StreamError(
            "stream key check failed: wrong file key, wrong associated data, or the header was modified",
            "check that the file key and the file id/AAD belong to this ciphertext",
        )
    return cipher


class _Opener:
    """Checks and opens the chunks of one stream, in order."""

    def __init__(self, sk: bytes, header: bytes, aad: bytes, hash_plaintext: bool) -> None:
        self.cipher = _parse_header(header, sk, aad)
        self.chunk_size = self.cipher.chunk_size
        self.sealed_size = self.chunk_size + TAG_SIZE
        self.sha = plaintext_hasher(self.cipher.version) if hash_plaintext else None
        self.plaintext_size = 0
        self.ciphertext_size = HEADER_SIZE

    def open(self, sealed: memoryview, out: memoryview | None = None) -> memoryview | bytes:
        """Authenticate and decrypt one chunk; a short chunk is the final one."""
        index = self.cipher.index
        if len(sealed) < TAG_SIZE:
            raise StreamError(
                f"stream truncated: it ends after chunk {index - 1} without its final chunk"
                if not sealed
                else f"stream truncated inside chunk {index} ({len(sealed)} bytes, a chunk has at least {TAG_SIZE})",
                "the file is incomplete or was cut; fetch it again",
            )
        last = len(sealed) < self.sealed_size
        nonce = self.cipher.nonce(last)
        try:
            if out is None:
                plain = self.cipher.aead.decrypt(nonce, sealed, None)
            else:
                plain = out[: len(sealed) - TAG_SIZE]
                self.cipher.aead.decrypt_into(nonce, sealed, None, plain)
        except InvalidTag:
            raise StreamError(
                f"chunk {index} failed authentication: the ciphertext was modified, reordered, "
                "truncated or extended",
                "do not use this copy; fetch the file again from another source",
            ) from None
        if self.sha is not None:
            self.sha.update(plain)
        self.plaintext_size += len(plain)
        self.ciphertext_size += len(sealed)
        return plain

    def info(self) -> StreamInfo:
        return StreamInfo(
            plaintext_size=self.plaintext_size,
            ciphertext_size=self.ciphertext_size,
            plaintext_hash=self.sha.digest() if self.sha is not None else None,
            chunk_size=self.chunk_size,
            chunks=self.cipher.index,
            version=self.cipher.version,
        )


def decrypt_stream(
    sk: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    aad: bytes = b"",
    hash_plaintext: bool = True,
    progress: Progress | None = None,
) -> StreamInfo:
    """Decrypt the stream read from ``src`` into ``dst``.

    Raises StreamError on a bad header, wrong key or AAD, and on any modified,
    reordered, spliced, missing or extra byte. Only authenticated chunks are
    written, but a failure can come after earlier chunks were written: write
    to a temporary file and rename it only after success. ``progress`` is
    called after each chunk with the number of ciphertext bytes read so far.
    """
    sk = _check_key(sk)
    aad = _check_bytes(aad, "associated data")
    header = bytearray(HEADER_SIZE)
    got = _fill(src, memoryview(header))
    opener = _Opener(sk, bytes(header[:got]), aad, hash_plaintext)
    sealed = memoryview(bytearray(opener.sealed_size))
    plain = memoryview(bytearray(opener.chunk_size))
    while True:
        n = _fill(src, sealed)
        dst.write(opener.open(sealed[:n], plain))
        if progress is not None:
            progress(opener.ciphertext_size)
        if n < len(sealed):
            return opener.info()


class decrypt_iter(Iterator[bytes]):  # noqa: N801 - used like a generator function
    """Iterate over the plaintext of a stream given as byte pieces of any size.

    ``chunks`` is any iterable of bytes (e.g. an HTTP response body); pieces
    need not line up with the stream's chunks. Each plaintext piece is yielded
    only after its chunk is authenticated; StreamError is raised on any
    problem, possibly after earlier pieces were yielded (so write to a
    temporary file and rename after success). When the iteration ends,
    ``info`` holds the StreamInfo.
    """

    def __init__(self, sk: bytes, chunks: Iterable[bytes], aad: bytes = b"", *, hash_plaintext: bool = True) -> None:
        self.info: StreamInfo | None = None
        self._run = self._open_all(_check_key(sk), iter(chunks), _check_bytes(aad, "associated data"), hash_plaintext)

    def __iter__(self) -> decrypt_iter:
        return self

    def __next__(self) -> bytes:
        return next(self._run)

    def _open_all(self, sk: bytes, pieces: Iterator[bytes], aad: bytes, hash_plaintext: bool) -> Iterator[bytes]:
        buf = bytearray()
        opener: _Opener | None = None
        for piece in pieces:
            if not isinstance(piece, (bytes, bytearray, memoryview)):
                raise InputError(f"stream pieces must be bytes, got {type(piece).__name__}")
            buf += piece
            if opener is None:
                if len(buf) < HEADER_SIZE:
                    continue
                opener = _Opener(sk, bytes(buf[:HEADER_SIZE]), aad, hash_plaintext)
                del buf[:HEADER_SIZE]
            # Open every complete full-size chunk; a full chunk is never the final one.
            size, done, opened = opener.sealed_size, 0, []
            with memoryview(buf) as view:
                while len(view) - done >= size:
                    opened.append(opener.open(view[done : done + size]))
                    done += size
            del buf[:done]  # no view may be alive while the buffer shrinks or grows
            yield from opened
        if opener is None:
            opener = _Opener(sk, bytes(buf), aad, hash_plaintext)  # raises: header incomplete
        with memoryview(buf) as view:
            last = opener.open(view)
        self.info = opener.info()
        if last:
            yield last
