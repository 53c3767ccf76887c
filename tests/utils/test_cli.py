"""The `mme` dispatcher: sub-commands are discovered, and user errors exit 1 without a traceback."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

import mme.cli
from mme.cli import main as cli_main
from mme.errors import ConfigError


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["--help"])
    assert exit_info.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_user_error_is_one_line_and_exit_code_1(monkeypatch, capsys):
    fake = types.ModuleType("mme.cli.fake_fail")
    fake.NAME, fake.HELP = "fake-fail", "always fails"
    fake.add_arguments = lambda parser: parser.add_argument("--value", default="x")

    def run(args: argparse.Namespace) -> int:
        raise ConfigError(f"bad value {args.value!r} for key 'optim.lr'")

    fake.run = run
    monkeypatch.setattr(cli_main, "_command_modules", lambda: [fake])
    monkeypatch.setitem(sys.modules, "mme.cli.fake_fail", fake)
    monkeypatch.delenv("MME_DEBUG", raising=False)
    assert cli_main.main(["fake-fail", "--value", "-1"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "mme fake-fail: error: bad value '-1' for key 'optim.lr'"
    assert "Traceback" not in err
    assert mme.cli.__doc__
