"""The console script's exit codes: click's Exit codes, FogfedError, usage errors."""

import click
import pytest

from fogfed.cli import cli, main
from fogfed.errors import FogfedError, InputError


@cli.command("x-test-exit", hidden=True)
@click.argument("code", type=int)
def _exit_with(code: int) -> None:
    raise click.exceptions.Exit(code)


@cli.command("x-test-fail", hidden=True)
@click.option("--bad-input", is_flag=True)
def _fail(bad_input: bool) -> None:
    if bad_input:
        raise InputError("the widget is malformed", "pass a better widget")
    raise FogfedError("the widget broke")


@pytest.mark.parametrize("code", [0, 1, 3])
def test_exit_code_of_a_command_reaches_the_shell(code):
    assert main(["x-test-exit", str(code)]) == code


def test_fogfed_error_is_one_line_and_exit_1(capsys):
    assert main(["x-test-fail"]) == 1
    err = capsys.readouterr().err
    assert err == "error: the widget broke\n"


def test_input_error_has_hint_and_exit_2(capsys):
    assert main(["x-test-fail", "--bad-input"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: the widget is malformed", "hint: pass a better widget"]


def test_usage_error_exit_2(capsys):
    assert main(["no-such-command"]) == 2
    assert "Traceback" not in capsys.readouterr().err
