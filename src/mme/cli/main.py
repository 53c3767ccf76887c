"""Entry point of the ``mme`` command.

Sub-commands are discovered, not listed: every module ``mme.cli.<name>`` (not starting with
``_``) that defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` is one
sub-command. Modules must stay cheap to import (import torch etc. inside ``run``) so that
``mme --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

import mme
import mme.cli
from mme.errors import MMEError


def _command_modules() -> list[ModuleType]:
    modules = []
    for info in pkgutil.iter_modules(mme.cli.__path__):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"mme.cli.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            modules.append(module)
    return sorted(modules, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mme",
        description="Masked Motion Encoding: self-supervised video representation learning.",
    )
    parser.add_argument("--version", action="version", version=f"mme {mme.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        doc = (module.__doc__ or module.HELP).strip()
        command = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args._run(args)
    except MMEError as error:
        if os.environ.get("MME_DEBUG"):
            raise
        print(f"mme {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mme {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
