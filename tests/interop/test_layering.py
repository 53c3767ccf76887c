"""The packages import downwards only: mme.interop builds on mme.models, never the reverse (the names
that moved still resolve from mme.models); tasks run on train and eval, eval builds on train,
data knows nothing of training, and only cli and demo use visualize."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mme.interop
import mme.models

_IMPORT_ALL_OF_MODELS = """
import importlib, pkgutil, sys
import mme.models
names = [m.name for m in pkgutil.walk_packages(mme.models.__path__, "mme.models.")]
for name in names:
    importlib.import_module(name)
print(len(names), sorted(m for m in sys.modules if m.startswith("mme.interop")))
"""


def test_importing_every_models_module_leaves_interop_unimported():
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL_OF_MODELS], capture_output=True, text=True, check=True
    ).stdout.split(maxsplit=1)
    assert int(out[0]) >= 10  # the walk found the package's modules (vit, pretrain, layers, ...)
    assert out[1].strip() == "[]"


@pytest.mark.parametrize("name", mme.interop.__all__)
def test_moved_names_resolve_from_models_to_the_same_objects(name):
    assert name in mme.models.__all__ and name in dir(mme.models)
    assert getattr(mme.models, name) is getattr(mme.interop, name)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no_such_name"):
        mme.models.no_such_name  # noqa: B018


_SRC = Path(mme.models.__file__).resolve().parents[1]
# package -> the packages it must never import, even inside a function
_NEVER = {
    "data": ("train", "eval", "tasks", "cli", "demo"),
    "train": ("eval", "tasks", "cli", "demo"),
    "eval": ("tasks", "cli", "demo"),
    "tasks": ("cli", "demo"),
    "visualize": ("tasks", "cli", "demo"),
}


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(_NEVER))
def test_packages_never_import_the_layers_above_them(package):
    above = tuple(f"mme.{name}" for name in _NEVER[package])
    wrong = sorted(
        f"{path.relative_to(_SRC)}: {name}"
        for path in (_SRC / package).rglob("*.py")
        for name in _imported(path)
        if name in above or name.startswith(tuple(f"{a}." for a in above))
    )
    assert not wrong


def test_only_cli_and_demo_import_visualize():
    wrong = sorted(
        f"{path.relative_to(_SRC)}: {name}"
        for path in _SRC.rglob("*.py")
        if path.relative_to(_SRC).parts[0] not in ("cli", "demo", "visualize")
        for name in _imported(path)
        if name == "mme.visualize" or name.startswith("mme.visualize.")
    )
    assert not wrong
