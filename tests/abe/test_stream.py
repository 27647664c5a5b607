"""The streaming file format: round trips, and every attack on it rejected."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tracemalloc

import blake3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogfed.abe import stream
from fogfed.errors import InputError

C = 16  # small chunks keep every test fast and give many chunk boundaries
SK = bytes(range(32))
AAD = b"file-42"
SIZES = [0, 1, C - 1, C, C + 1, 3 * C, 3 * C + 5]


def seal(data: bytes, sk: bytes = SK, aad: bytes = AAD, chunk_size: int = C) -> bytes:
    out = io.BytesIO()
    stream.encrypt_stream(sk, io.BytesIO(data), out, aad=aad, chunk_size=chunk_size)
    return out.getvalue()


def open_(ct: bytes, sk: bytes = SK, aad: bytes = AAD) -> bytes:
    out = io.BytesIO()
    stream.decrypt_stream(sk, io.BytesIO(ct), out, aad=aad)
    return out.getvalue()


def chunks_of(ct: bytes, chunk_size: int = C) -> list[bytes]:
    body = ct[stream.HEADER_SIZE :]
    step = chunk_size + stream.TAG_SIZE
    return [body[i : i + step] for i in range(0, len(body), step)]


def rejected_everywhere(ct: bytes, sk: bytes = SK, aad: bytes = AAD) -> list[str]:
    """Decrypt with both readers; both must raise. Returns their messages."""
    messages = []
    with pytest.raises(stream.StreamError) as err:
        open_(ct, sk, aad)
    messages.append(str(err.value))
    with pytest.raises(stream.StreamError) as err:
        b"".join(stream.decrypt_iter(sk, [ct[i : i + 7] for i in range(0, len(ct), 7)], aad))
    messages.append(str(err.value))
    return messages


# --- round trips -----------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_file_api(size: int) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    info = stream.encrypt_stream(SK, io.BytesIO(data), out, aad=AAD, chunk_size=C)
    ct = out.getvalue()
    assert len(ct) == info.ciphertext_size == stream.ciphertext_size(size, C)
    assert info.plaintext_size == size
    assert info.plaintext_hash == stream.plaintext_digest(data) and info.hash_name == "blake3"
    assert info.chunks == size // C + 1  # a whole number of chunks ends with an empty final chunk
    back = io.BytesIO()
    assert stream.decrypt_stream(SK, io.BytesIO(ct), back, aad=AAD) == info
    assert back.getvalue() == data


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("read_size", [1, 5, C + stream.TAG_SIZE, 1000, -1])
def test_round_trip_reader_and_iterator(size: int, read_size: int) -> None:
    data = os.urandom(size)
    reader = stream.EncryptingReader(SK, io.BytesIO(data), aad=AAD, chunk_size=C)
    assert reader.info is None
    pieces = list(iter(lambda: reader.read(read_size), b""))
    ct = b"".join(pieces)
    assert reader.info is not None and reader.info.ciphertext_size == len(ct)
    assert reader.info.plaintext_hash == stream.plaintext_digest(data)
    plain = stream.decrypt_iter(SK, pieces, AAD)
    assert b"".join(plain) == data
    assert plain.info == reader.info


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5 * C), cuts=st.lists(st.integers(0, 400), max_size=8), chunk=st.sampled_from([16, 17, 64]))
def test_iterator_accepts_any_piece_boundaries(data: bytes, cuts: list[int], chunk: int) -> None:
    ct = seal(data, chunk_size=chunk)
    points = sorted({0, len(ct), *(c % (len(ct) + 1) for c in cuts)})
    pieces = [ct[a:b] for a, b in zip(points, points[1:])]
    assert b"".join(stream.decrypt_iter(SK, pieces, AAD)) == data


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 10**12), chunk=st.integers(stream.MIN_CHUNK, stream.MAX_CHUNK))
def test_ciphertext_size_formula(size: int, chunk: int) -> None:
    full, rest = divmod(size, chunk)
    assert stream.ciphertext_size(size, chunk) == stream.HEADER_SIZE + full * (chunk + 16) + rest + 16


def test_progress_reports_bytes_so_far() -> None:
    data = os.urandom(5 * C + 3)
    seen: list[int] = []
    out = io.BytesIO()
    stream.encrypt_stream(SK, io.BytesIO(data), out, aad=AAD, chunk_size=C, progress=seen.append)
    assert seen == [C, 2 * C, 3 * C, 4 * C, 5 * C, 5 * C + 3]
    read: list[int] = []
    stream.decrypt_stream(SK, io.BytesIO(out.getvalue()), io.BytesIO(), aad=AAD, progress=read.append)
    assert read == sorted(read) and read[-1] == len(out.getvalue())


def test_hashing_can_be_switched_off() -> None:
    out = io.BytesIO()
    info = stream.encrypt_stream(SK, io.BytesIO(b"abc"), out, aad=AAD, chunk_size=C, hash_plaintext=False)
    assert info.plaintext_hash is None
    back = stream.decrypt_stream(SK, io.BytesIO(out.getvalue()), io.BytesIO(), aad=AAD, hash_plaintext=False)
    assert back.plaintext_hash is None and back.plaintext_size == 3


def test_reads_sources_without_readinto() -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._io = io.BytesIO(data)

        def read(self, n: int) -> bytes:
            return self._io.read(min(n, 3))  # short reads too

    data = os.urandom(4 * C + 1)
    out = io.BytesIO()
    stream.encrypt_stream(SK, ReadOnly(data), out, aad=AAD, chunk_size=C)
    assert open_(out.getvalue()) == data
    back = io.BytesIO()
    stream.decrypt_stream(SK, ReadOnly(out.getvalue()), back, aad=AAD)
    assert back.getvalue() == data


def test_documented_layout_decodes_independently() -> None:
    """A decoder written from docs/stream-format.md alone reads what we write."""
    data = os.urandom(2 * C + 7)
    ct = seal(data)
    magic, version, chunk_size, salt, prefix = struct.unpack(">8sBI32s7s", ct[:52])
    assert (magic, version, chunk_size) == (b"\x89FOGFED\n", 2, C)
    commit = ct[52:84]
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=64,
        salt=salt,
        info=b"fogfed stream v1 key+commit" + ct[:52] + hashlib.sha256(AAD).digest(),
    ).derive(SK)
    assert okm[32:] == commit
    aead, body, plain = AESGCM(okm[:32]), ct[84:], b""
    chunks = [body[i : i + C + 16] for i in range(0, len(body), C + 16)]
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        plain += aead.decrypt(prefix + i.to_bytes(4, "big") + bytes([last]), chunk, None)
    assert plain == data
    # version 2's plaintext hash is BLAKE3-256 of the whole plaintext
    back = io.BytesIO()
    assert stream.decrypt_stream(SK, io.BytesIO(ct), back, aad=AAD).plaintext_hash == blake3.blake3(data).digest()


def test_version_1_streams_are_still_read_with_their_sha256() -> None:
    """Files uploaded before format 2 keep decrypting, and their plaintext hash stays the registered SHA-256."""
    data = os.urandom(3 * C + 5)
    old = io.BytesIO()
    wrote = stream.encrypt_stream(SK, io.BytesIO(data), old, aad=AAD, chunk_size=C, version=1)
    assert old.getvalue()[8] == 1 and wrote.version == 1 and wrote.hash_name == "sha256"
    assert wrote.plaintext_hash == hashlib.sha256(data).digest()
    back = io.BytesIO()
    info = stream.decrypt_stream(SK, io.BytesIO(old.getvalue()), back, aad=AAD)
    assert back.getvalue() == data and info.version == 1
    assert info.plaintext_hash == hashlib.sha256(data).digest() == stream.plaintext_digest(data, 1)
    it = stream.decrypt_iter(SK, [old.getvalue()], aad=AAD)
    assert b"".join(it) == data and it.info.plaintext_hash == hashlib.sha256(data).digest()


@pytest.mark.parametrize("version", [0, 3, True, "2"])
def test_unknown_version_is_refused_when_writing(version: object) -> None:
    with pytest.raises(InputError, match="stream format version must be one of"):
        stream.encrypt_stream(SK, io.BytesIO(b"x"), io.BytesIO(), version=version)  # type: ignore[arg-type]


# --- no nonce reuse --------------------------------------------------------


def test_reused_file_key_never_reuses_keystream() -> None:
    p1, p2 = os.urandom(3 * C), os.urandom(3 * C)
    c1, c2 = seal(p1), seal(p2)
    assert c1[:13] == c2[:13] and c1[13:84] != c2[13:84]  # same format, fresh salt and prefix
    x_ct = bytes(a ^ b for a, b in zip(c1[84:], c2[84:]))
    x_pt = bytes(a ^ b for a, b in zip(p1, p2))
    # With a repeated (key, nonce) pair, XOR of ciphertexts would equal XOR of plaintexts.
    assert x_ct[:C] != x_pt[:C]
    assert seal(p1) != c1


# --- tampering, truncation, reordering, splicing ---------------------------

TAMPER_PLAIN = os.urandom(4 * C + 9)
TAMPER_CT = seal(TAMPER_PLAIN)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pos=st.integers(0, len(TAMPER_CT) - 1), mask=st.integers(1, 255))
def test_any_flipped_byte_is_rejected(pos: int, mask: int) -> None:
    bad = bytearray(TAMPER_CT)
    bad[pos] ^= mask
    rejected_everywhere(bytes(bad))


@pytest.mark.parametrize("pos", range(len(TAMPER_CT)))
def test_every_byte_position_flipped_is_rejected_and_nothing_unauthenticated_written(pos: int) -> None:
    bad = bytearray(TAMPER_CT)
    bad[pos] ^= 0x01
    out = io.BytesIO()
    with pytest.raises(stream.StreamError):
        stream.decrypt_stream(SK, io.BytesIO(bytes(bad)), out, aad=AAD)
    # Only chunks before the damaged one may have been written, and they are authentic.
    damaged_chunk = max(0, pos - stream.HEADER_SIZE) // (C + 16)
    written = out.getvalue()
    assert written == TAMPER_PLAIN[: len(written)]
    assert len(written) <= damaged_chunk * C


@pytest.mark.parametrize("cut", range(len(TAMPER_CT)))
def test_truncation_anywhere_is_rejected(cut: int) -> None:
    messages = rejected_everywhere(TAMPER_CT[:cut])
    if cut < stream.HEADER_SIZE:
        assert all("header truncated" in m for m in messages)
    elif (cut - stream.HEADER_SIZE) % (C + 16) == 0:
        assert all("without its final chunk" in m for m in messages)


def test_truncation_at_each_chunk_boundary_names_it() -> None:
    for i in range(1, len(chunks_of(TAMPER_CT))):
        cut = stream.HEADER_SIZE + i * (C + 16)
        for message in rejected_everywhere(TAMPER_CT[:cut]):
            assert f"ends after chunk {i - 1} without its final chunk" in message


def test_dropping_the_empty_final_chunk_is_rejected() -> None:
    ct = seal(os.urandom(2 * C))
    assert len(chunks_of(ct)[-1]) == stream.TAG_SIZE
    rejected_everywhere(ct[: -stream.TAG_SIZE])


@pytest.mark.parametrize("order", [(1, 0, 2, 3, 4), (0, 2, 1, 3, 4), (0, 1, 2, 4, 3), (4, 3, 2, 1, 0)])
def test_reordered_chunks_are_rejected(order: tuple[int, ...]) -> None:
    parts = chunks_of(TAMPER_CT)
    assert len(parts) == 5
    rejected_everywhere(TAMPER_CT[: stream.HEADER_SIZE] + b"".join(parts[i] for i in order))


@pytest.mark.parametrize("edit", ["drop-middle", "duplicate", "repeat-last-full-as-final"])
def test_dropped_or_duplicated_chunks_are_rejected(edit: str) -> None:
    parts = chunks_of(TAMPER_CT)
    if edit == "drop-middle":
        parts = parts[:2] + parts[3:]
    elif edit == "duplicate":
        parts = parts[:2] + [parts[1]] + parts[2:]
    else:
        parts = parts[:4]  # four full chunks; the short final chunk is gone
    rejected_everywhere(TAMPER_CT[: stream.HEADER_SIZE] + b"".join(parts))


def test_chunk_spliced_from_another_stream_with_the_same_key_is_rejected() -> None:
    other = seal(os.urandom(len(TAMPER_PLAIN)))
    mine, theirs = chunks_of(TAMPER_CT), chunks_of(other)
    for i in range(len(mine)):
        spliced = mine[:i] + [theirs[i]] + mine[i + 1 :]
        rejected_everywhere(TAMPER_CT[: stream.HEADER_SIZE] + b"".join(spliced))
    # Their header with my body (and the reverse) fails too.
    rejected_everywhere(other[: stream.HEADER_SIZE] + TAMPER_CT[stream.HEADER_SIZE :])


@pytest.mark.parametrize("extra", [b"\x00", b"x" * 15, b"x" * 16, b"x" * (C + 16), b"x" * 100], ids=len)
def test_trailing_data_is_rejected(extra: bytes) -> None:
    rejected_everywhere(TAMPER_CT + extra)
    rejected_everywhere(TAMPER_CT + chunks_of(TAMPER_CT)[-1])


def test_empty_file_stream_cannot_be_extended() -> None:
    ct = seal(b"")
    rejected_everywhere(ct + seal(b"x")[stream.HEADER_SIZE :])


# --- wrong key, wrong AAD, bad headers -------------------------------------


@pytest.mark.parametrize(
    "sk, aad",
    [(bytes(32), AAD), (SK[:-1] + b"\xff", AAD), (SK, b"file-43"), (SK, b""), (SK, AAD + b"\x00")],
    ids=["zero-key", "one-bit-key", "other-aad", "no-aad", "longer-aad"],
)
def test_wrong_key_or_aad_is_rejected_before_any_output(sk: bytes, aad: bytes) -> None:
    for message in rejected_everywhere(TAMPER_CT, sk, aad):
        assert "wrong file key, wrong associated data" in message
    out = io.BytesIO()
    with pytest.raises(stream.StreamError):
        stream.decrypt_stream(sk, io.BytesIO(TAMPER_CT), out, aad=aad)
    assert out.getvalue() == b""


def with_header_field(offset: int, packed: bytes) -> bytes:
    return TAMPER_CT[:offset] + packed + TAMPER_CT[offset + len(packed) :]


BAD_HEADERS = {  # id: (make the bad stream, expected message)
    "magic": (lambda: with_header_field(0, b"NOTFOGFD"), "not a fogfed stream: magic bytes are"),
    "magic-case": (lambda: with_header_field(0, b"\x89fogfed\n"), "not a fogfed stream"),
    "version-3": (lambda: with_header_field(8, b"\x03"), "unsupported stream format version 3; this fogfed reads versions 1, 2"),
    # a downgrade to version 1 (whose plaintext hash is SHA-256): the version byte is in the key derivation
    "version-1": (lambda: with_header_field(8, b"\x01"), "stream key check failed"),
    "version-0": (lambda: with_header_field(8, b"\x00"), "unsupported stream format version 0"),
    "chunk-0": (lambda: with_header_field(9, struct.pack(">I", 0)), "declares chunk size 0, outside the allowed 16..16777216"),
    "chunk-15": (lambda: with_header_field(9, struct.pack(">I", 15)), "declares chunk size 15"),
    "chunk-huge": (lambda: with_header_field(9, struct.pack(">I", 2**32 - 1)), "declares chunk size 4294967295"),
    "chunk-17": (lambda: with_header_field(9, struct.pack(">I", 17)), "stream key check failed"),
    "salt": (lambda: with_header_field(20, b"\x00" * 8), "stream key check failed"),
    # flipped, not set: a set byte equal to the random one there would change nothing (1 run in 256)
    "prefix": (lambda: with_header_field(50, bytes([TAMPER_CT[50] ^ 0x01])), "stream key check failed"),
    "commitment": (lambda: with_header_field(60, b"\x00" * 4), "stream key check failed"),
    "empty": (lambda: b"", "stream header truncated: got 0 of 84 bytes"),
    "short": (lambda: TAMPER_CT[:83], "stream header truncated: got 83 of 84 bytes"),
    "plain-text": (lambda: b"hello world, this is plain text\n" * 4, "not a fogfed stream"),
}


@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_bad_header_gives_a_clear_message(case: str) -> None:
    make, expected = BAD_HEADERS[case]
    for message in rejected_everywhere(make()):
        assert expected in message


def test_stream_error_is_an_input_error_with_a_hint() -> None:
    with pytest.raises(InputError) as err:
        open_(TAMPER_CT[:-1])
    assert isinstance(err.value, stream.StreamError)
    assert err.value.hint


# --- bad arguments ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"sk": b"short"}, "file key must be 32 bytes, got 5"),
        ({"sk": "x" * 32}, "file key must be bytes, got str"),
        ({"aad": "file-42"}, "associated data must be bytes, got str"),
        ({"chunk_size": 0}, "chunk size 0 is outside"),
        ({"chunk_size": 15}, "chunk size 15 is outside"),
        ({"chunk_size": stream.MAX_CHUNK + 1}, f"chunk size {stream.MAX_CHUNK + 1} is outside"),
        ({"chunk_size": 1.5}, "chunk size must be an integer, got float"),
        ({"chunk_size": True}, "chunk size must be an integer, got bool"),
    ],
)
def test_bad_encrypt_arguments(kwargs: dict, expected: str) -> None:
    args = {"sk": SK, "aad": AAD, "chunk_size": C} | kwargs
    sk = args.pop("sk")
    with pytest.raises(InputError, match=expected):
        stream.encrypt_stream(sk, io.BytesIO(b"data"), io.BytesIO(), **args)
    with pytest.raises(InputError, match=expected):
        stream.EncryptingReader(sk, io.BytesIO(b"data"), **args)


def test_bad_decrypt_arguments() -> None:
    with pytest.raises(InputError, match="file key must be 32 bytes"):
        stream.decrypt_stream(b"k" * 31, io.BytesIO(TAMPER_CT), io.BytesIO())
    with pytest.raises(InputError, match="file key must be 32 bytes"):
        stream.decrypt_iter(b"k" * 33, [TAMPER_CT])
    with pytest.raises(InputError, match="stream pieces must be bytes, got str"):
        list(stream.decrypt_iter(SK, ["text"], AAD))
    with pytest.raises(InputError, match="plaintext size must be a non-negative integer"):
        stream.ciphertext_size(-1, C)


def test_text_mode_source_is_refused(tmp_path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("hello")
    with path.open("r") as text, pytest.raises(InputError, match="open the file in binary mode"):
        stream.encrypt_stream(SK, text, io.BytesIO(), aad=AAD, chunk_size=C)


def test_short_reads_from_readinto_fill_a_chunk_before_it_is_sealed() -> None:
    class Trickle(io.RawIOBase):  # a pipe or socket: readinto returns what is there, not a full chunk
        def __init__(self, data: bytes, most: int) -> None:
            self._io, self._most, self.calls = io.BytesIO(data), most, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            self.calls += 1
            view = memoryview(buffer)
            return self._io.readinto(view[: self._most])

    data = os.urandom(3 * C + 5)
    for most in (1, 7, C - 1, C, C + 1):
        src, out = Trickle(data, most), io.BytesIO()
        info = stream.encrypt_stream(SK, src, out, aad=AAD, chunk_size=C)
        assert info.chunks == 4 and info.plaintext_size == len(data)  # full chunks, whatever the reads returned
        assert len(out.getvalue()) == stream.ciphertext_size(len(data), C)
        assert open_(out.getvalue()) == data


def test_non_blocking_source_with_no_data_is_refused_not_sealed_short() -> None:
    class NotReady(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> None:
            return None  # what a non-blocking raw file returns when no data is ready

    with pytest.raises(InputError, match="non-blocking"):
        stream.encrypt_stream(SK, NotReady(), io.BytesIO(), aad=AAD, chunk_size=C)

    class ReadyThenNot(NotReady):  # some data, then nothing ready in the middle of a chunk
        def __init__(self) -> None:
            self.calls = 0

        def readinto(self, buffer):
            self.calls += 1
            if self.calls > 1:
                return None
            memoryview(buffer)[:5] = b"12345"
            return 5

    with pytest.raises(InputError, match="non-blocking"):
        stream.encrypt_stream(SK, ReadyThenNot(), io.BytesIO(), aad=AAD, chunk_size=C)


def test_chunk_counter_overflow_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(stream, "MAX_CHUNKS", 3)
    with pytest.raises(stream.StreamError, match="more than 3 chunks"):
        seal(os.urandom(3 * C))
    seal(os.urandom(2 * C + 1))  # exactly three chunks still fit


# --- constant memory -------------------------------------------------------


class PatternSource(io.RawIOBase):
    """``size`` bytes of a repeating random block, generated while read, hashed as they go."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._block = memoryview(os.urandom(1 << 16))
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._left, len(self._block))
        memoryview(buffer)[:n] = self._block[:n]
        self.sha.update(self._block[:n])
        self._left -= n
        return n


class HashSink:
    def __init__(self) -> None:
        self.sha, self.size = hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        return len(data)


BIG = 64 * 1024 * 1024
MEM_CHUNK = 256 * 1024


def peak_while(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_through_file_api_and_reader() -> None:
    src, sink = PatternSource(BIG), HashSink()

    def pipeline() -> None:
        reader = stream.EncryptingReader(SK, src, aad=AAD, chunk_size=MEM_CHUNK)
        info = stream.decrypt_stream(SK, reader, sink, aad=AAD)
        assert info.plaintext_size == BIG and info.plaintext_hash == reader.info.plaintext_hash

    peak = peak_while(pipeline)
    assert sink.size == BIG and sink.sha.digest() == src.sha.digest()
    assert peak < 8 * MEM_CHUNK, f"peak {peak} bytes while streaming {BIG} bytes"


def test_memory_stays_bounded_through_iterator_and_encrypt_stream() -> None:
    src, sink = PatternSource(BIG), HashSink()

    def pipeline() -> None:
        reader = stream.EncryptingReader(SK, src, aad=AAD, chunk_size=MEM_CHUNK)
        for piece in stream.decrypt_iter(SK, iter(lambda: reader.read(100_000), b""), AAD):
            sink.write(piece)

    assert peak_while(pipeline) < 8 * MEM_CHUNK
    assert sink.size == BIG and sink.sha.digest() == src.sha.digest()
    src2, ct_sink = PatternSource(BIG), HashSink()
    peak = peak_while(lambda: stream.encrypt_stream(SK, src2, ct_sink, aad=AAD, chunk_size=MEM_CHUNK))
    assert peak < 3 * MEM_CHUNK
    assert ct_sink.size == stream.ciphertext_size(BIG, MEM_CHUNK)
