"""Encrypted keystore files: named secrets under a passphrase.

File format (JSON, version 1)::

    {"format": "fogfed-keystore", "version": 1, "kind": "<what it holds>",
     "kdf": {"name": "argon2id", "salt": hex, "memory_cost": KiB,
             "iterations": int, "lanes": int},
     "check": hex(32), "nonce": hex(12), "ciphertext": hex,
     "checksum": hex(32)}

The passphrase goes through Argon2id (RFC 9106 parameters by default) to 64
bytes: the first half is the AES-256-GCM key, the second keys an HMAC whose
output is stored as ``check``. The header (every field but ``ciphertext`` and
``checksum``) is the GCM associated data, so no parameter can be swapped.

Why a key-check value and a checksum: GCM alone cannot tell a wrong passphrase
from a damaged file. ``checksum`` (SHA-256 of everything else, unkeyed) catches
damage first, before the expensive KDF; ``check`` then tells a wrong passphrase.
Someone who edits the file on purpose and recomputes the checksum gets either
"wrong passphrase" (if the edit touches the KDF inputs or ``check``) or
"malformed" (GCM fails): either way the secrets are never returned altered.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from fogfed.errors import InputError

FORMAT = "fogfed-keystore"
VERSION = 1
MAX_FILE_BYTES = 1 << 20
MIN_PASSPHRASE_CHARS = 8
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_CHECK_LABEL = b"fogfed-keystore-v1 passphrase check"


class WrongPassphrase(InputError):
    """The passphrase does not open this keystore."""


class MalformedKeystore(InputError):
    """The keystore file is damaged, truncated, of another version or another kind."""


class PassphraseUnavailable(InputError):
    """No passphrase in the environment and no terminal to ask on."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost; memory in KiB. The defaults are RFC 9106's second recommendation."""

    memory_cost: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4

    # Bounds apply to files we read too: a hostile file must not make us
    # allocate gigabytes or spin for minutes, nor be weaker than OWASP's floor.
    LIMITS = {"memory_cost": (19 * 1024, 1024 * 1024), "iterations": (1, 16), "lanes": (1, 16)}

    def validate(self, where: str) -> None:
        for name, (lo, hi) in self.LIMITS.items():
            value = getattr(self, name)
            if type(value) is not int or not lo <= value <= hi:
                raise MalformedKeystore(f"{where}: kdf {name}={value!r} is outside {lo}..{hi}",
                                        "the keystore was not written by fogfed or was edited")


def _derive(passphrase: str, salt: bytes, params: KdfParams) -> tuple[bytes, bytes]:
    okm = Argon2id(salt=salt, length=64, iterations=params.iterations, lanes=params.lanes,
                   memory_cost=params.memory_cost).derive(passphrase.encode("utf-8"))
    return okm[:32], okm[32:]


def _canonical(obj: Mapping) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")


def _checked_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _NAME_RE.match(kind):
        raise InputError(f"keystore kind {kind!r} is not a short lowercase name",
                         "use letters, digits, '-', '_' or '.', e.g. 'node-identity'")
    return kind


def _encode_secrets(secrets: Mapping[str, bytes]) -> bytes:
    if not isinstance(secrets, Mapping) or not secrets:
        raise InputError("a keystore needs at least one named secret")
    out = {}
    for name, value in secrets.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InputError(f"secret name {name!r} is not a short lowercase name")
        if not isinstance(value, (bytes, bytearray)):
            raise InputError(f"secret {name!r} must be bytes, not {type(value).__name__}")
        out[name] = base64.b64encode(bytes(value)).decode("ascii")
    return _canonical(out)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename), readable by the owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_keystore(path: str | os.PathLike, secrets: Mapping[str, bytes], passphrase: str, *,
                  kind: str, overwrite: bool = False, kdf: KdfParams | None = None) -> None:
    """Encrypt ``secrets`` under ``passphrase`` into the keystore file at ``path`` (mode 0600).

    Refuses to replace an existing file unless ``overwrite`` is set, since
    losing a keystore loses the keys in it.
    """
    path = Path(path)
    _checked_kind(kind)
    if not isinstance(passphrase, str) or len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise InputError(f"keystore passphrase must be at least {MIN_PASSPHRASE_CHARS} characters")
    if path.exists() and not overwrite:
        raise InputError(f"keystore {path} already exists",
                         "move it away first; fogfed never overwrites a keystore silently")
    params = kdf or KdfParams()
    params.validate("requested kdf parameters")
    plaintext = _encode_secrets(secrets)
    salt, nonce = os.urandom(16), os.urandom(12)
    enc_key, check_key = _derive(passphrase, salt, params)
    header = {
        "format": FORMAT, "version": VERSION, "kind": kind,
        "kdf": {"name": "argon2id", "salt": salt.hex(), **asdict(params)},
        "check": hmac.new(check_key, _CHECK_LABEL, hashlib.sha256).hexdigest(),
        "nonce": nonce.hex(),
    }
    body = {**header, "ciphertext": AESGCM(enc_key).encrypt(nonce, plaintext, _canonical(header)).hex()}
    body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
    write_private_file(path, json.dumps(body, sort_keys=True, indent=1).encode("ascii") + b"\n")


def _hex_field(doc: dict, key: str, where: str, size: int | None = None) -> bytes:
    value = doc.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError
        raw = bytes.fromhex(value)
    except ValueError:
        raise MalformedKeystore(f"{where}: field {key!r} is missing or not hex") from None
    if size is not None and len(raw) != size:
        raise MalformedKeystore(f"{where}: field {key!r} has {len(raw)} bytes, expected {size}")
    return raw


def read_keystore_kind(path: str | os.PathLike) -> str:
    """The ``kind`` recorded in a keystore, checked for damage but without decrypting it."""
    return _parse(Path(path))[0]["kind"]


def _parse(path: Path) -> tuple[dict, bytes]:
    where = f"keystore {path}"
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{where} does not exist", "check the path or create the keystore first") from None
    except OSError as exc:
        raise InputError(f"{where} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise MalformedKeystore(f"{where} is larger than {MAX_FILE_BYTES} bytes; not a keystore")
    try:
        doc = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedKeystore(f"{where} is not valid JSON (truncated or damaged)",
                                "restore it from a backup") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise MalformedKeystore(f"{where} is not a fogfed keystore")
    if doc.get("version") != VERSION:
        raise MalformedKeystore(f"{where} has unsupported version {doc.get('version')!r}",
                                f"this fogfed reads version {VERSION}")
    expected = {"format", "version", "kind", "kdf", "check", "nonce", "ciphertext", "checksum"}
    if set(doc) != expected:
        raise MalformedKeystore(f"{where} has fields {sorted(set(doc) ^ expected)} added or missing")
    checksum = _hex_field(doc, "checksum", where, 32)
    rest = {k: v for k, v in doc.items() if k != "checksum"}
    if not hmac.compare_digest(hashlib.sha256(_canonical(rest)).digest(), checksum):
        raise MalformedKeystore(f"{where} is damaged (checksum mismatch)", "restore it from a backup")
    if not isinstance(doc["kind"], str) or not _NAME_RE.match(doc["kind"]):
        raise MalformedKeystore(f"{where}: kind {doc['kind']!r} is not valid")
    kdf = doc["kdf"]
    if not isinstance(kdf, dict) or kdf.get("name") != "argon2id" or set(kdf) != {
            "name", "salt", "memory_cost", "iterations", "lanes"}:
        raise MalformedKeystore(f"{where}: unsupported kdf section {kdf!r}")
    return doc, checksum


def load_keystore(path: str | os.PathLike, passphrase: str, *, kind: str | None = None) -> dict[str, bytes]:
    """Decrypt the keystore at ``path``; returns its named secrets.

    Raises WrongPassphrase, MalformedKeystore (damaged, truncated, another
    version, or not of ``kind`` when given) or InputError (missing file).
    """
    path = Path(path)
    where = f"keystore {path}"
    doc, _ = _parse(path)
    if kind is not None and doc["kind"] != _checked_kind(kind):
        raise MalformedKeystore(f"{where} holds a {doc['kind']!r}, not a {kind!r}",
                                "check that you passed the right keystore file")
    kdf = doc["kdf"]
    params = KdfParams(memory_cost=kdf["memory_cost"], iterations=kdf["iterations"], lanes=kdf["lanes"])
    params.validate(where)
    salt = _hex_field(kdf, "salt", where, 16)
    check = _hex_field(doc, "check", where, 32)
    nonce = _hex_field(doc, "nonce", where, 12)
    ciphertext = _hex_field(doc, "ciphertext", where)
    if not isinstance(passphrase, str) or not passphrase:
        raise WrongPassphrase(f"empty passphrase for {where}")
    enc_key, check_key = _derive(passphrase, salt, params)
    if not hmac.compare_digest(hmac.new(check_key, _CHECK_LABEL, hashlib.sha256).digest(), check):
        raise WrongPassphrase(f"wrong passphrase for {where}",
                              "check FOGFED_PASSPHRASE or retype it")
    header = {k: v for k, v in doc.items() if k not in ("ciphertext", "checksum")}
    try:
        plaintext = AESGCM(enc_key).decrypt(nonce, ciphertext, _canonical(header))
    except InvalidTag:
        raise MalformedKeystore(f"{where} was altered (authentication failed)",
                                "restore it from a backup") from None
    try:
        encoded = json.loads(plaintext)
        return {name: base64.b64decode(value, validate=True) for name, value in encoded.items()}
    except (ValueError, AttributeError, TypeError):
        raise MalformedKeystore(f"{where} decrypted to unreadable content") from None


def passphrase_from_env_or_prompt(env_var: str = "FOGFED_PASSPHRASE", confirm: bool = False,
                                  prompt: str = "Keystore passphrase: ") -> str:
    """The passphrase from ``env_var`` if set, else asked on the terminal (twice if ``confirm``)."""
    value = os.environ.get(env_var)
    if value is not None:
        if not value:
            raise PassphraseUnavailable(f"environment variable {env_var} is set but empty",
                                        f"put the passphrase in {env_var} or unset it to be asked")
        return value
    if not sys.stdin.isatty():
        raise PassphraseUnavailable("no keystore passphrase: not running on a terminal",
                                    f"set the environment variable {env_var}")
    value = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat passphrase: ") != value:
        raise InputError("the two passphrases differ", "run the command again")
    if not value:
        raise InputError("empty passphrase")
    return value
