"""The ``fogfed`` console script: a thin layer over the Python API.

Subcommands live in sibling modules and register themselves on ``cli``; the
group imports a module only when one of its commands runs (or help lists it),
so ``fogfed --help`` and quick local commands start without web3 or py-evm.
Every :class:`fogfed.errors.FogfedError` becomes a one-line message on stderr
(a JSON document on stdout under ``--json``) and a non-zero exit code, never a
traceback. Conventions every command follows: docs/cli.md.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from fogfed import __version__
from fogfed.errors import FogfedError

#: Top-level command -> the modules that define it (the first) and extend it (the rest).
#: A new top-level command gets a line here; a new subcommand of an existing group
#: only needs its module listed for that group.
LAZY_COMMANDS: dict[str, tuple[str, ...]] = {
    "tas": ("fogfed.cli.tas_cmds", "fogfed.cli.mobility_cmds", "fogfed.cli.keys_cmds",
            "fogfed.cli.funding_cmds"),
    "node": ("fogfed.cli.node_cmds", "fogfed.cli.mobility_cmds", "fogfed.cli.keys_cmds"),
    "audit": ("fogfed.cli.audit_cmds",),
    "deploy": ("fogfed.cli.chain_cmds",),
    "gas-report": ("fogfed.cli.chain_cmds",),
    "demo": ("fogfed.cli.demo",),
    "completion": ("fogfed.cli.meta_cmds",),
}


class LazyGroup(click.Group):
    """A click group whose top-level commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module in LAZY_COMMANDS.get(cmd_name, ()):
            importlib.import_module(module)
        return self.commands.get(cmd_name)


def _version_text() -> str:
    """``--version``: the package version, the git commit it runs from, the contract artifact's hashes."""
    import hashlib
    import json
    import subprocess
    from pathlib import Path

    from fogfed.chain.artifacts import ARTIFACTS_DIR

    root = Path(__file__).resolve().parents[2]
    commit = "unknown (not a git checkout)"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=5)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            commit = head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    lines = [f"fogfed {__version__}", f"commit: {commit}"]
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        raw = path.read_bytes()
        artifact = json.loads(raw)
        line = (f"{artifact['contractName']} artifact: sha256 {hashlib.sha256(raw).hexdigest()}, "
                f"solc {artifact['compiler']['version'].split('+')[0]}")
        if artifact["contractName"] == "FogFed":  # no immutables: its runtime code is what the chain holds
            from eth_utils import keccak

            code = bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x"))
            line += f", codehash 0x{keccak(code).hex()} (compare: keccak256 of eth_getCode at the contract)"
        lines.append(line)
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version, the commit and the contract artifact's hashes, then exit.")
def cli() -> None:
    """fogfed: fog federations protected by CP-ABE, Ethereum contracts and IPFS.

    Without --rpc / --ipfs every command runs on an embedded chain and an
    embedded content store: no server needed.

    \b
    Examples:
      fogfed demo                     # the paper's whole scenario, embedded
      fogfed tas init --help          # start here as an operator
      fogfed node status              # what this node's home holds
      fogfed completion bash > ~/.local/share/bash-completion/completions/fogfed
    """


def _report_error(exc: FogfedError | click.ClickException, code: int, as_json: bool) -> None:
    from fogfed.cli.common import ReportedFailure

    if as_json and isinstance(exc, ReportedFailure):
        return  # its details are in the document the command printed
    if as_json:
        import json

        hint = getattr(exc, "hint", None)
        message = exc.message if isinstance(exc, FogfedError) else exc.format_message()
        click.echo(json.dumps({"error": {"message": message, "hint": hint, "exit_code": code}}))
    elif isinstance(exc, FogfedError):
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
    else:
        exc.show()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    from fogfed.cli import common

    args = list(sys.argv[1:] if argv is None else argv)
    common.JSON_MODE.clear()
    common._PASSPHRASE_FROM_FILE.clear()
    common._NETWORK_FLAGS.clear()
    try:
        rc: Any = cli.main(args=args, prog_name="fogfed", standalone_mode=False)
    except FogfedError as exc:
        _report_error(exc, exc.exit_code, common.json_mode(args))
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        _report_error(exc, exc.exit_code, common.json_mode(args))
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    # Without standalone mode click returns what the command returned, or the
    # code of an Exit raised inside it.
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
