"""Every leaf command documents itself the same way: examples in --help, a --json flag; every group
lists its commands with a whole one-line description each."""

from __future__ import annotations

import importlib
import re

import click
import pytest

from fogfed.cli import LAZY_COMMANDS, cli

#: Leaf commands that print something other than a document (a shell script).
NO_JSON = {"fogfed completion"}


def _leaves() -> list[tuple[str, click.Command]]:
    for modules in LAZY_COMMANDS.values():
        for module in modules:
            importlib.import_module(module)
    out = []

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(click.Context(cmd)):
                sub = cmd.get_command(click.Context(cmd), name)
                if sub is not None and not sub.hidden:
                    walk(sub, f"{path} {name}")
        else:
            out.append((path, cmd))

    walk(cli, "fogfed")
    return out


LEAVES = _leaves()


def test_there_are_many_leaves() -> None:
    assert len(LEAVES) >= 30


@pytest.mark.parametrize("path, cmd", LEAVES, ids=[p for p, _ in LEAVES])
def test_leaf_has_examples(path: str, cmd: click.Command) -> None:
    ctx = click.Context(cmd, info_name=path)
    text = cmd.get_help(ctx)
    match = re.search(r"^  Examples?:\n((?:    .*\n?)+)", text, re.MULTILINE)
    assert match, f"{path} --help has no Examples: block"
    lines = [ln.strip() for ln in match.group(1).splitlines()]
    name = path.split(" ", 1)[1]
    assert any(name in ln for ln in lines), f"{path}: no example runs `{path}`"


@pytest.mark.parametrize("path, cmd", LEAVES, ids=[p for p, _ in LEAVES])
def test_leaf_has_a_json_flag(path: str, cmd: click.Command) -> None:
    if path in NO_JSON:
        pytest.skip("prints a shell script")
    flags = {opt: p for p in cmd.params if isinstance(p, click.Option) for opt in p.opts}
    assert "--json" in flags and flags["--json"].is_flag, f"{path} has no --json flag"


def _groups() -> list[tuple[str, click.Group]]:
    out = []

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            out.append((path, cmd))
            for name in cmd.list_commands(click.Context(cmd)):
                sub = cmd.get_command(click.Context(cmd), name)
                if sub is not None and not sub.hidden:
                    walk(sub, f"{path} {name}")

    walk(cli, "fogfed")
    return out


GROUPS = _groups()


@pytest.mark.parametrize("path, group", GROUPS, ids=[p for p, _ in GROUPS])
def test_group_lists_one_whole_line_per_command(path: str, group: click.Group) -> None:
    """At the 80 columns help is formatted to, no description is cut short ("...") or wrapped."""
    text = group.get_help(click.Context(group, info_name=path, terminal_width=80))
    listing = text.split("\nCommands:\n", 1)[1].splitlines()
    names = [n for n in group.list_commands(click.Context(group))
             if not group.get_command(click.Context(group), n).hidden]  # tests add hidden ones (test_main)
    assert len(listing) == len(names), f"{path}: a description wraps:\n{text}"
    for line, name in zip(listing, names):
        described = line.split(None, 1)
        assert described[0] == name and len(described) == 2, f"{path} {name}: no description"
        assert not described[1].endswith("..."), f"{path} {name}: description cut short: {described[1]}"
