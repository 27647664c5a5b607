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


#: The settings a home remembers, and the environment variable that overrides each.
SETTINGS_FILE = "settings.toml"
SETTINGS_ENV = {"rpc": "FOGFED_RPC", "ipfs": "FOGFED_IPFS", "contract": "FOGFED_CONTRACT",
                "mobility": "FOGFED_MOBILITY", "label": "FOGFED_LABEL",
                "confirmations": "FOGFED_CONFIRMATIONS", "tx_journal": "FOGFED_TX_JOURNAL",
                "stuck_after": "FOGFED_STUCK_AFTER", "ipfs_replicas": "FOGFED_IPFS_REPLICAS"}
#: Settings a hand-written settings.toml may give as a TOML number (``confirmations = 12``).
NUMERIC_SETTINGS = {"confirmations", "stuck_after", "ipfs_replicas"}
#: The network settings every tas/node command takes as a flag (see network_options()).
NETWORK_SETTINGS = ("confirmations", "tx_journal", "stuck_after", "ipfs_replicas")
TX_JOURNAL_DIR = "tx-journal"
_OFF = ("off", "none", "no", "0")  # a tx_journal value meaning "no journal" (as fogfed.chain.connection.JOURNAL_OFF)
DEFAULT_STUCK_AFTER = "60"
DEFAULT_IPFS_REPLICAS = 2


def read_settings(home: Path) -> dict[str, str]:
    """``<home>/settings.toml`` as a dict (empty when absent); InputError naming the file if damaged."""
    path = home / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", "check its permissions") from None
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is damaged: {exc}", f"fix it by hand, or delete it and pass the options "
                         "again (it only remembers --rpc/--ipfs/...)") from None
    def fits(k: str, v: Any) -> bool:
        number = isinstance(v, (int, float)) and not isinstance(v, bool) and k in NUMERIC_SETTINGS
        return k in SETTINGS_ENV and (isinstance(v, str) or number)
    bad = [k for k, v in data.items() if not fits(k, v)]
    if bad:
        raise InputError(f"{path} is damaged: unknown or non-text setting(s) {', '.join(sorted(bad))}",
                         f"known settings (text; {', '.join(sorted(NUMERIC_SETTINGS))} may be numbers): "
                         f"{', '.join(SETTINGS_ENV)}")
    return {k: str(v) for k, v in data.items()}


def write_settings(home: Path, values: dict[str, str | None]) -> Path:
    """Merge ``values`` (None: leave out) into ``<home>/settings.toml``; returns its path."""
    data = read_settings(home)
    data.update({k: v for k, v in values.items() if v is not None})
    lines = ["# fogfed settings of this home, written by `init`; flags and FOGFED_* variables override them.",
             "# Show the effective values: fogfed tas config / fogfed node config"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in sorted(data.items())]  # a JSON string is a TOML basic string
    home.mkdir(parents=True, exist_ok=True)
    path = home / SETTINGS_FILE
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def setting(name: str, flag: str | None, home: Path | None) -> tuple[str | None, str]:
    """One setting by the rule flag > environment > the home's settings.toml > default (None).

    Returns (value, where it came from: "flag", "env FOGFED_...", "<home>/settings.toml" or "default").
    """
    if flag:
        return flag, "flag"
    env = SETTINGS_ENV[name]
    if os.environ.get(env):
        return os.environ[env], f"env {env}"
    if home is not None:
        value = read_settings(home).get(name)
        if value:
            return value, str(home / SETTINGS_FILE)
    return None, "default"


#: The network flags given in this run (--confirmations, ...); filled by their option callbacks.
_NETWORK_FLAGS: dict[str, str] = {}


def _note_network_flag(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    assert param.name is not None
    if value is None:
        _NETWORK_FLAGS.pop(param.name, None)
    else:
        _NETWORK_FLAGS[param.name] = str(value)


def network_options() -> list[Callable[[F], F]]:
    """``--confirmations``, ``--tx-journal``, ``--stuck-after``, ``--ipfs-replicas`` (part of common_options).

    The command does not see them: connect_chain() and open_content_store() read them (flag > env >
    settings.toml > default, like --rpc), and `config` shows them.
    """
    def opt(flag: str, name: str, metavar: str, help: str) -> Callable[[F], F]:
        return click.option(flag, name, metavar=metavar, expose_value=False, callback=_note_network_flag,
                            help=help)
    return [
        opt("--confirmations", "confirmations", "N|safe|finalized",
            "Blocks on top of a block before it counts (writes wait, reads stop there): 0 on devnets and "
            "QBFT chains, e.g. 12 or 'finalized' on Ethereum. Default: $FOGFED_CONFIRMATIONS, settings.toml, 0."),
        opt("--tx-journal", "tx_journal", "DIR|off",
            "Journal of sent, not yet mined transactions (nonces survive a restart; processes sharing an "
            "account never collide). Default with --rpc: <home>/tx-journal; off for the embedded chain."),
        opt("--stuck-after", "stuck_after", "SECONDS",
            "Re-send a transaction with fees raised by 12.5% after this long in the mempool. "
            "Default: $FOGFED_STUCK_AFTER, settings.toml, 60."),
        opt("--ipfs-replicas", "ipfs_replicas", "N",
            "With several --ipfs URLs: pin every file on N of them. Default: $FOGFED_IPFS_REPLICAS, "
            "settings.toml, 2 (at most the number of URLs)."),
    ]


def _checked(name: str, value: str, source: str, check: Callable[[str], Any]) -> Any:
    try:
        return check(value)
    except InputError as exc:
        where = {"flag": f"--{name.replace('_', '-')}", "default": "the default"}.get(source, source)
        raise InputError(f"{exc.message} (from {where})", exc.hint) from None


def _positive(kind: Any, what: str) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value != value or value == float("inf"):
            raise InputError(f"{what} must be a positive {'whole ' if kind is int else ''}number, got {text!r}")
        return value
    return check


def network_settings(home: Path | None, rpc_target: str | None = None) -> dict[str, dict[str, Any]]:
    """The effective confirmations, tx_journal, stuck_after and ipfs_replicas with their sources.

    Each entry: ``{"value": ..., "source": ...}``, values checked (InputError naming the source).
    ``tx_journal`` is a Path or None (off); its default is ``<home>/tx-journal`` on a JSON-RPC chain
    (``rpc_target`` not ``embedded:``) and off on the embedded chain, whose own lock orders senders.
    """
    from fogfed.chain.finality import parse_confirmations

    out: dict[str, dict[str, Any]] = {}
    for name in NETWORK_SETTINGS:
        value, source = setting(name, _NETWORK_FLAGS.get(name), home)
        out[name] = {"value": value, "source": source}
    c = out["confirmations"]
    c["value"] = _checked("confirmations", c["value"] or "0", c["source"], parse_confirmations)
    s = out["stuck_after"]
    s["value"] = _checked("stuck_after", s["value"] or DEFAULT_STUCK_AFTER, s["source"],
                          _positive(float, "stuck-after (seconds)"))
    r = out["ipfs_replicas"]
    r["value"] = (None if r["value"] is None else
                  _checked("ipfs_replicas", r["value"], r["source"], _positive(int, "ipfs-replicas")))
    j = out["tx_journal"]
    embedded = rpc_target is None or rpc_target.startswith("embedded:")
    if j["value"] is None:
        j["value"] = None if embedded or home is None else home / TX_JOURNAL_DIR
    elif j["value"].strip().lower() in _OFF:
        j["value"] = None
    else:
        path = Path(j["value"]).expanduser()
        if not path.is_absolute() and home is not None and j["source"] == str(home / SETTINGS_FILE):
            path = home / path  # a relative path in settings.toml is relative to the home
        j["value"] = None if embedded else path.absolute()
    return out


def network_settings_to_remember() -> dict[str, str]:
    """What `init` writes to settings.toml of the network settings: those given by flag or variable."""
    out = {}
    for name in NETWORK_SETTINGS:
        value, source = setting(name, _NETWORK_FLAGS.get(name), None)
        if value is not None and source != "default":
            if name == "tx_journal" and value.strip().lower() not in _OFF:
                value = str(Path(value).expanduser().absolute())
            out[name] = value
    if out:
        network_settings(None, "http://check")  # refuse a bad value before it is remembered
    return out


def read_labels_file(path: Path, missing_ok: bool = True) -> dict[str, str]:
    """A labels file (``{"0xAddress": "label"}``, as `fogfed tas label` writes it); InputError if damaged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise InputError(f"no labels file at {path}", "give the TAS's labels.json (written by `fogfed tas label`)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is damaged: {exc}", "fix it by hand or delete it (it only holds labels)") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InputError(f"{path} is damaged: not an object of address -> label", "fix it by hand or delete it")
    return data


def show_settings(home: Path, flags: dict[str, str | None], as_json: bool) -> None:
    """Print every setting with its effective value and source (the ``config`` commands)."""
    rows: dict[str, dict[str, Any]] = {}
    for name in SETTINGS_ENV:
        if name in NETWORK_SETTINGS:
            continue
        value, source = setting(name, flags.get(name), home)
        if name == "rpc" and value is None:
            value = f"embedded:{fogfed_home() / 'chain'}"
        if name == "ipfs" and value is None:
            value = f"embedded:{fogfed_home() / 'store'}"
        rows[name] = {"value": value, "source": source}
    rows.update(network_settings(home, rows["rpc"]["value"]))
    urls = [u for u in (resolve_ipfs(flags.get("ipfs"), home) or "").split(",") if u.strip()]
    replicas = rows["ipfs_replicas"]
    if len(urls) < 2:
        replicas["note"] = "not used: one IPFS node" if urls else "not used: the embedded store"
    elif replicas["value"] is None:
        replicas["value"] = min(DEFAULT_IPFS_REPLICAS, len(urls))
    if rows["tx_journal"]["value"] is None:
        rows["tx_journal"]["note"] = ("off" if not str(rows["rpc"]["value"]).startswith("embedded:")
                                      else "not used: the embedded chain orders senders itself")
    if str(rows["rpc"]["value"]).startswith("embedded:"):
        rows["stuck_after"]["note"] = "not used: the embedded chain mines at once"
    emit(as_json, {"home": home, "file": home / SETTINGS_FILE, "settings": rows}, lambda: "\n".join(
        [f"settings of {home} (flag > env > {home / SETTINGS_FILE} > default)"]
        + [f"  {name:<15}{r['value'] if r['value'] is not None else '-'}   [{r['source']}]"
           + (f"  ({r['note']})" if r.get("note") else "") for name, r in rows.items()]))


def resolve_rpc(rpc: str | None, home: Path | None = None) -> str:
    """The RPC string to connect to: see :func:`setting`; default the persistent embedded chain."""
    value, _ = setting("rpc", rpc, home)
    return value if value else f"embedded:{fogfed_home() / 'chain'}"


def resolve_ipfs(ipfs: str | None, home: Path | None = None) -> str | None:
    """The IPFS API address (see :func:`setting`), or None for the embedded store."""
    return setting("ipfs", ipfs, home)[0]


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
            *network_options(),
            json_option(),
            passphrase_file_option(),
        ]):
            fn = opt(fn)
        return fn
    return wrap


#: Set (non-empty) once a command's --json flag is parsed; main() then reports errors as JSON.
JSON_MODE: set[bool] = set()


def _note_json(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        JSON_MODE.add(True)
    return value


def json_option(help: str = "Print one JSON document on stdout instead of text (errors too).") -> Callable[[F], F]:
    """The ``--json`` flag every command has: one JSON document on stdout, errors as JSON.

    Eager, so a usage error in a later option is already reported as JSON. The
    command receives it as ``as_json``.
    """
    return click.option("--json", "as_json", is_flag=True, is_eager=True, callback=_note_json, help=help)


def json_mode(argv: list[str]) -> bool:
    """True when errors of this run must be JSON: --json was parsed, or is among the options."""
    if JSON_MODE:
        return True
    options = argv[:argv.index("--")] if "--" in argv else argv
    return "--json" in options


def examples(*lines: str) -> Callable[[F], F]:
    """Append an ``Examples:`` block (shown verbatim) to a command's --help.

    Goes below ``@group.command(...)`` (on the function) or above it (on the
    command); tests/cli/test_help.py checks that every leaf command has one.
    """
    import inspect

    block = "\n\n\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)

    def wrap(obj: F) -> F:
        # click dedents the whole help text when it prints it, so append to a dedented text
        if isinstance(obj, click.Command):
            obj.help = inspect.cleandoc(obj.help or "") + block
        else:
            obj.__doc__ = inspect.cleandoc(obj.__doc__ or "") + block
        return obj
    return wrap


class ReportedFailure(FogfedError):
    """A failure whose details the command already printed (under --json: in its one document).

    main() adds no second JSON document for it; in text mode it prints the error line as usual.
    """


def json_file_option(what: str) -> Callable[[F], F]:
    """``--json-file PATH``: also write the command's full JSON report to a file (``-``: stdout)."""
    return click.option("--json-file", "json_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                        metavar="PATH", help=f"Also write {what} as JSON to PATH (- for stdout).")


def check_writable(path: Path) -> None:
    """InputError unless ``path`` could be created (run before minutes of work, not after)."""
    if str(path) == "-":
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path}: folder {folder} does not exist or is not writable",
                         "choose a path in a writable folder")


def write_json_file(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` (``-``: stdout), with a clear error."""
    text = json.dumps(to_plain(data), indent=2, sort_keys=True) + "\n"
    if str(path) == "-":
        click.echo(text, nl=False)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}", "choose a path in a writable folder") from None


def next_hint(command: str, home: Path | None) -> str:
    """A ``next:`` line for a command of the same role, with the --home the user gave (quoted if needed)."""
    import shlex

    head, _, rest = command.partition(" --")
    parts = [head] + ([f"--home {shlex.quote(str(home))}"] if home is not None else []) + ([f"--{rest}"] if rest else [])
    return "next: " + " ".join(parts)


def connect_chain(rpc: str | None, home: Path | None = None, create: bool = False) -> Any:
    """A chain client for ``rpc`` (see :func:`resolve_rpc`).

    Only ``init`` (create=True) may bring a new default embedded chain into being: anywhere
    else a missing one means a forgotten --rpc, which must not leave an empty chain behind.
    """
    from fogfed.chain.connection import connect

    target = resolve_rpc(rpc, home)
    net = network_settings(home, target)
    _refuse_new_default(target.removeprefix("embedded:"), "chain", "--rpc", create,
                        target == f"embedded:{fogfed_home() / 'chain'}")
    journal = net["tx_journal"]["value"]
    return connect(target, confirmations=net["confirmations"]["value"], stuck_after=net["stuck_after"]["value"],
                   tx_journal=journal if journal is not None else "off")


def open_content_store(ipfs: str | None, home: Path | None = None, create: bool = False) -> Any:
    """The IPFS node at ``ipfs`` (see :func:`resolve_ipfs`) or the shared embedded store."""
    from fogfed.storage import open_store

    addr = resolve_ipfs(ipfs, home)
    if addr:
        return open_store(addr, replicas=network_settings(home)["ipfs_replicas"]["value"])
    _refuse_new_default(str(fogfed_home() / "store"), "content store", "--ipfs", create, True)
    return open_store(root=fogfed_home() / "store")


def optional_content_store(ipfs: str | None, home: Path | None = None) -> Any:
    """:func:`open_content_store`, or None where no IPFS node is configured and no embedded store exists
    (for commands that work without one); a configured store that cannot be opened is still an error."""
    if not resolve_ipfs(ipfs, home) and not (fogfed_home() / "store").exists():
        return None
    return open_content_store(ipfs, home)


def _refuse_new_default(path: str, what: str, option: str, create: bool, is_default: bool) -> None:
    if create or not is_default or Path(path).exists():
        return
    raise InputError(f"no embedded {what} at {path}, and this command does not create one",
                     f"pass {option} (or set it in the home's settings.toml), or run `init` first")


#: The passphrase read from --passphrase-file in this run (it wins over $FOGFED_PASSPHRASE).
_PASSPHRASE_FROM_FILE: list[str] = []


def read_passphrase_file(path: Path, what: str = "--passphrase-file") -> str:
    """The first line of ``path`` (``-``: stdin), without its line ending; InputError if missing or empty."""
    try:
        if str(path) == "-":
            text = click.get_text_stream("stdin").readline()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}",
                         "give a readable text file whose first line is the passphrase") from None
    value = text.rstrip("\r\n")
    if not value:
        raise InputError(f"{what} {path} is empty", "put the passphrase on its first line")
    return value


def _note_passphrase_file(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    _PASSPHRASE_FROM_FILE.clear()
    if value is not None:
        _PASSPHRASE_FROM_FILE.append(read_passphrase_file(value))


def passphrase_file_option() -> Callable[[F], F]:
    """``--passphrase-file FILE``: the home's passphrase from a file's first line (- for stdin).

    Beats $FOGFED_PASSPHRASE and the prompt (flag > env > prompt); the command does not see it.
    """
    return click.option("--passphrase-file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                        metavar="FILE", expose_value=False, callback=_note_passphrase_file,
                        help="Read the passphrase from FILE's first line (- for stdin) instead of "
                             "$FOGFED_PASSPHRASE or the prompt.")


def passphrase(confirm: bool = False) -> str:
    """From --passphrase-file, else $FOGFED_PASSPHRASE, else asked on the terminal.

    ``confirm`` (the ``init`` commands) also checks the keystore's rules at once, so a
    passphrase the keystore would refuse never costs a deployment or a transaction.
    """
    from fogfed.keys.keystore import MIN_PASSPHRASE_CHARS, passphrase_from_env_or_prompt

    value = _PASSPHRASE_FROM_FILE[0] if _PASSPHRASE_FROM_FILE else passphrase_from_env_or_prompt(confirm=confirm)
    if confirm and len(value) < MIN_PASSPHRASE_CHARS:
        raise InputError(f"keystore passphrase must be at least {MIN_PASSPHRASE_CHARS} characters",
                         "choose a longer one; nothing was created")
    return value


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
        yield PhasedBar(bar, bar.add_task(label, total=total), label)


@contextlib.contextmanager
def count_progress(label: str, enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr fed with (phase, done, total) counts; None when disabled or not a TTY."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task, current = bar.add_task(label, total=None), [None]

        def update(phase: str, done: int, total: int) -> None:
            if phase != current[0]:
                current[0] = phase
                bar.reset(task, total=total, description=f"{label}: {phase}")
            bar.update(task, completed=done, total=total)

        yield update


class PhasedBar:
    """A progress callback (bytes done) over one rich task; ``phase`` starts a named phase with its total
    (node fetch: fetching, verifying, decrypting; see fogfed.node.datapath.phase)."""

    def __init__(self, bar: Any, task: Any, label: str) -> None:
        self._bar, self._task, self._label = bar, task, label

    def __call__(self, done: int) -> None:
        self._bar.update(self._task, completed=done)

    def phase(self, name: str, total: int | None) -> None:
        self._bar.reset(self._task, total=total, description=f"{self._label}: {name}")


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


def add_config_command(group: click.Group, role: str, *example_lines: str) -> click.Command:
    """``fogfed <role> config``: the settings in effect for the role's home and where each comes from."""
    def config(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
        show_settings(role_home(home, role), {"rpc": rpc, "ipfs": ipfs}, as_json)

    config.__doc__ = (f"Show the settings in effect for this {role.upper() if role == 'tas' else role} home and "
                      "where each comes from.\n\n"
                      "Rule: a flag beats its FOGFED_* variable, which beats <home>/settings.toml\n"
                      f"(written by `fogfed {role} init`), which beats the default.")
    return group.command("config", short_help="The settings in effect and where each comes from")(
        common_options(role)(examples(*example_lines)(guarded(config))))
