"""mme.interop builds on mme.models, never the reverse; the names that moved still resolve from mme.models."""

from __future__ import annotations

import subprocess
import sys

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
