"""``fogfed tas|node export-key`` and ``--account-keystore``: Ethereum accounts as V3 keystores.

A V3 keystore (the Web3 Secret Storage format, via eth-keyfile) is what
Foundry's ``cast --keystore``, Ape (``ape accounts import``) and geth read,
so the same account can be used from those tools.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from fogfed.cli.common import (common_options, emit, examples, guarded, passphrase, read_passphrase_file,
                               role_home)
from fogfed.cli.node_cmds import node
from fogfed.cli.tas_cmds import tas
from fogfed.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

KEYSTORE_PASS_HELP = ("Encrypt the V3 keystore with the passphrase on FILE's first line "
                      "(default: this home's passphrase).")


def write_v3_keystore(private_key: bytes, password: str, path: Path, force: bool) -> dict[str, Any]:
    """Write ``private_key`` as a V3 keystore (scrypt, as geth and cast write it); refuses to overwrite."""
    from eth_keyfile import create_keyfile_json

    doc = create_keyfile_json(private_key, password.encode("utf-8"), kdf="scrypt")
    data = json.dumps(doc).encode()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise InputError(f"{path} already exists", "pass --force to overwrite it, or choose another -o PATH") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable path") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return doc


def read_v3_keystore(path: Path, password: str) -> bytes:
    """The private key in the V3 keystore at ``path``; InputError for a damaged file or wrong passphrase."""
    from eth_keyfile import decode_keyfile_json

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the keystore {path}: {exc}", "give a V3 keystore JSON file") from None
    if not isinstance(doc, dict) or doc.get("version") != 3 or "crypto" not in doc:
        raise InputError(f"{path} is not a V3 keystore", "export one with `cast wallet new` or `fogfed ... export-key`")
    try:
        return bytes(decode_keyfile_json(doc, password.encode("utf-8")))
    except ValueError as exc:
        raise InputError(f"cannot open the keystore {path}: {exc}", "check the keystore's passphrase") from None
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path} is a damaged V3 keystore ({type(exc).__name__}: {exc})") from None


def _export(private_key: bytes, output: Path, keystore_pass: Path | None, force: bool, home_pass: str,
            as_json: bool) -> None:
    from eth_account import Account

    password = read_passphrase_file(keystore_pass, "--keystore-passphrase-file") if keystore_pass else home_pass
    doc = write_v3_keystore(private_key, password, output, force)
    address = Account.from_key(private_key).address
    emit(as_json, {"address": address, "keystore": output, "kdf": doc["crypto"]["kdf"]}, lambda: (
        f"wrote {output}: V3 keystore of {address}\n"
        f"use it with: cast wallet address --keystore {output}  (Ape: copy it to ~/.ape/accounts/<alias>.json)"))


def _export_key_command(group: click.Group, role: str, *example_lines: str) -> Callable[[F], click.Command]:
    """``fogfed <role> export-key``: -o PATH, --keystore-passphrase-file, --force and the role's common options."""
    def wrap(fn: F) -> click.Command:
        fn = guarded(fn)
        fn = examples(*example_lines)(fn)
        fn = common_options(role)(fn)
        fn = click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")(fn)
        fn = click.option("--keystore-passphrase-file", metavar="FILE", help=KEYSTORE_PASS_HELP,
                          type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))(fn)
        fn = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
                          metavar="PATH", help="Where to write the V3 keystore (mode 0600).")(fn)
        return group.command("export-key", short_help=f"Write the {'TAS' if role == 'tas' else 'node'}'s "
                             "account as a V3 keystore")(fn)
    return wrap


@_export_key_command(
    node, "node",
    "fogfed node export-key -o node1.keystore.json",
    "fogfed node export-key --home ./node1 -o k.json --passphrase-file pass.txt && cast wallet address --keystore k.json",
)
def node_export_key(output: Path, keystore_passphrase_file: Path | None, force: bool, home: Path | None,
                    rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Write this node's Ethereum account as a V3 keystore (for cast, Ape, geth).

    Only the Ethereum key is exported; the node's X25519 key and CP-ABE keys
    stay in its home. No chain is contacted.
    """
    from fogfed.keys.identity import NodeIdentity

    where = role_home(home, "node")
    if not (where / "identity.json").is_file():
        raise InputError(f"no node in {where}", "create one with `fogfed node init` (or pass --home)")
    secret = passphrase()
    identity = NodeIdentity.load(where / "identity.json", secret)
    _export(bytes(identity.account.key), output, keystore_passphrase_file, force, secret, as_json)


@_export_key_command(
    tas, "tas",
    "fogfed tas export-key -o tas.keystore.json",
    "fogfed tas export-key -o tas.json --keystore-passphrase-file ape-pass.txt",
)
def tas_export_key(output: Path, keystore_passphrase_file: Path | None, force: bool, home: Path | None,
                   rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Write the TAS's Ethereum account as a V3 keystore (for cast, Ape, geth).

    Only the Ethereum key is exported; the CP-ABE master key never leaves
    the TAS home. No chain is contacted.
    """
    from fogfed.keys.keystore import load_keystore
    from fogfed.tas.authority import KEYSTORE, KIND

    where = role_home(home, "tas")
    if not (where / KEYSTORE).is_file():
        raise InputError(f"no TAS in {where}", "run `fogfed tas init` first (or pass --home)")
    secret = passphrase()
    key = load_keystore(where / KEYSTORE, secret, kind=KIND).get("eth_private_key")
    if not isinstance(key, bytes) or len(key) != 32:
        raise InputError(f"{where / KEYSTORE} holds no Ethereum key", "the TAS keystore is damaged")
    _export(key, output, keystore_passphrase_file, force, secret, as_json)
