"""``fogfed completion``: commands about the CLI itself."""

from __future__ import annotations

import click

from fogfed.cli import cli
from fogfed.cli.common import examples

SHELLS = ("bash", "zsh", "fish")


@cli.command("completion", short_help="Print the shell completion script")
@click.argument("shell", type=click.Choice(SHELLS))
@examples(
    "fogfed completion bash > ~/.local/share/bash-completion/completions/fogfed",
    "fogfed completion zsh > \"${fpath[1]}/_fogfed\"",
    "fogfed completion fish > ~/.config/fish/completions/fogfed.fish",
    'eval "$(fogfed completion bash)"          # this shell only',
)
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    Completes commands, options and choices. The script calls fogfed itself
    (with _FOGFED_COMPLETE set) each time you press TAB.
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # every SHELLS entry is one click knows
    click.echo(cls(cli, {}, "fogfed", "_FOGFED_COMPLETE").source())
