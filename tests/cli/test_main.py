"""The CLI shell: lazy loading, help, error handling."""

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from emomusic.cli import COMMANDS, cli, main
from emomusic.errors import EmomusicError


def test_help_lists_every_command():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for name in COMMANDS:
        assert name in res.output
    assert "not a medical device" in res.output


def test_help_does_not_import_torch(cli_imports):
    r = cli_imports(["--help"])
    assert r.codes == [0]
    assert not r.imported & {"torch", "transformers", "music21", "matplotlib"}


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "emomusic", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "emomusic" in res.stdout


def test_every_registered_command_imports():
    for name in COMMANDS:
        cmd = cli.get_command(None, name)
        assert isinstance(cmd, click.Command), name


def test_user_error_is_one_line_exit_2(monkeypatch, capsys):
    @click.command()
    def boom():
        raise EmomusicError("valence must be in [-1, 1], got 2")

    monkeypatch.setitem(cli.commands, "boom", boom)
    with pytest.raises(SystemExit) as exc:
        main(["boom"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == "Error: valence must be in [-1, 1], got 2"


def test_unexpected_error_has_no_traceback(monkeypatch, capsys):
    @click.command()
    def crash():
        raise ZeroDivisionError("oops")

    monkeypatch.delenv("EMOMUSIC_DEBUG", raising=False)
    monkeypatch.setitem(cli.commands, "crash", crash)
    with pytest.raises(SystemExit) as exc:
        main(["crash"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ZeroDivisionError" in err


def test_unknown_command_and_bad_option_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
