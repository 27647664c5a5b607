"""Options and output helpers shared by ``fogfed tas`` and ``fogfed node``.

Defaults: every role keeps its files in its own ``--home``; all roles on one
machine share the persistent embedded chain (``$FOGFED_HOME/chain``) and the
embedded content store (``$FOGFED_HOME/store``) unless ``--rpc`` / ``--ipfs``
name real nodes. ``$FOGFED_HOME`` defaults to ``~/.fogfed``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from fogfed.errors import FogfedError, InputError

F = TypeVar("F", bound=Callable[..., Any])

RPC_HELP = ("Ethereum JSON-RPC URL (Anvil, Ganache, ...), or embedded:DIR. "
            "Default: $FOGFED_RPC, else the persistent embedded chain in $FOGFED_HOME/chain.")
IPFS_HELP = ("IPFS HTTP RPC address (e.g. http://127.0.0.1:5001). "
             "Default: $FOGFED_IPFS, else the embedded store in $FOGFED_HOME/store.")


def fogfed_home() -> Path:
    """``$FOGFED_HOME`` or ``~/.fogfed``: where shared embedded chain and store live."""
    env = os.environ.get("FOGFED_HOME")
    return Path(env).expanduser() if env else Path.home() / ".fogfed"


def resolve_rpc(rpc: str | None) -> str:
    """The RPC string to connect to: the option, $FOGFED_RPC, or the persistent embedded chain."""
    rpc = rpc or os.environ.get("FOGFED_RPC") or None
    return rpc if rpc else f"embedded:{fogfed_home() / 'chain'}"


def resolve_ipfs(ipfs: str | None) -> str | None:
    """The IPFS API address (option or $FOGFED_IPFS), or None for the embedded store."""
    return ipfs or os.environ.get("FOGFED_IPFS") or None


def role_home(home: Path | None, role: str) -> Path:
    """The role's home directory: the option or ``$FOGFED_HOME/<role>``."""
    return (home or fogfed_home() / role).expanduser()


def common_options(role: str) -> Callable[[F], F]:
    """``--home``, ``--rpc``, ``--ipfs`` and ``--json`` for a ``fogfed <role>`` command."""
    def wrap(fn: F) -> F:
        for opt in reversed([
            click.option("--home", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                         help=f"This {role}'s files. Default: $FOGFED_HOME/{role}."),
            click.option("--rpc", metavar="URL", help=RPC_HELP),
            click.option("--ipfs", metavar="URL", help=IPFS_HELP),
            click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text."),
        ]):
            fn = opt(fn)
        return fn
    return wrap


def connect_chain(rpc: str | None) -> Any:
    """A chain client for ``rpc`` (see :func:`resolve_rpc`)."""
    from fogfed.chain.connection import connect

    return connect(resolve_rpc(rpc))


def open_content_store(ipfs: str | None) -> Any:
    """The IPFS node at ``ipfs`` or the shared embedded store."""
    from fogfed.storage import open_store

    addr = resolve_ipfs(ipfs)
    return open_store(addr) if addr else open_store(root=fogfed_home() / "store")


def passphrase(confirm: bool = False) -> str:
    """From $FOGFED_PASSPHRASE, else asked on the terminal; PassphraseUnavailable otherwise."""
    from fogfed.keys.keystore import passphrase_from_env_or_prompt

    return passphrase_from_env_or_prompt(confirm=confirm)


def to_plain(value: Any) -> Any:
    """Results (dataclasses, bytes, paths, tuples) as JSON-ready values."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    return value


def emit(as_json: bool, data: Any, text: str | Callable[[], str]) -> None:
    """Print ``data`` as JSON on stdout, or the human text."""
    if as_json:
        click.echo(json.dumps(to_plain(data), indent=1, sort_keys=True))
    else:
        click.echo(text() if callable(text) else text)


@contextlib.contextmanager
def transfer_progress(label: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr fed with bytes-so-far; None when disabled or not a TTY."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def guarded(fn: F) -> F:
    """Turn stray low-level failures into one-line FogfedErrors (no traceback).

    The layers raise FogfedError themselves; this is the net for what slips
    through (an OS error on a user's path, an unexpected library exception).
    FOGFED_DEBUG=1 lets the original exception through for a traceback.
    """
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (FogfedError, click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        except Exception as exc:
            if os.environ.get("FOGFED_DEBUG"):
                raise
            if isinstance(exc, OSError) and exc.filename:
                raise FogfedError(f"{exc.filename}: {exc.strerror or exc}",
                                  "check the path and its permissions") from None
            raise FogfedError(f"unexpected {type(exc).__name__}: {str(exc)[:300] or 'no details'}",
                              "run again with FOGFED_DEBUG=1 for the traceback and report it") from None
    return run  # type: ignore[return-value]


def read_input_file(path: Path, what: str, limit: int = 1 << 20) -> bytes:
    """Read a small user-supplied file, with a clear InputError on failure."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}", "check the path") from None
    if len(data) > limit:
        raise InputError(f"{what} {path} is larger than {limit} bytes", f"is it really a {what}?")
    return data


def ether_to_wei(amount: str) -> int:
    """``"0.5"`` ether as wei, with an InputError for anything else."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(amount)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value > 10**9:
        raise InputError(f"{amount!r:.40} is not an amount of ether", "write e.g. 0.1")
    return int(value * 10**18)
