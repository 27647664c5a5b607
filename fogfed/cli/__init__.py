"""The ``fogfed`` console script: a thin layer over the Python API.

Subcommands live in sibling modules and register themselves on ``cli``.
Every :class:`fogfed.errors.FogfedError` becomes a one-line message on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

import click

from fogfed import __version__
from fogfed.errors import FogfedError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fogfed")
def cli() -> None:
    """fogfed: fog federations protected by CP-ABE, Ethereum contracts and IPFS.

    Without --rpc / --ipfs every command runs on an embedded chain and an
    embedded content store: no server needed.
    """


def _load_subcommands() -> None:
    # Imported for their side effect of adding commands to ``cli``.
    from fogfed.cli import audit_cmds, chain_cmds  # noqa: F401
    from fogfed.cli import demo, node_cmds, tas_cmds  # noqa: F401
    from fogfed.cli import mobility_cmds  # noqa: F401
    from fogfed.cli import funding_cmds  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    _load_subcommands()
    try:
        rc = cli.main(args=argv, prog_name="fogfed", standalone_mode=False)
    except FogfedError as exc:
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    # Without standalone mode click returns what the command returned, or the
    # code of an Exit raised inside it.
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
