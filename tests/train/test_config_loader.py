"""Config loading: defaults <- YAML (with includes) <- --set; clear errors naming key and file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from omegaconf import MISSING

from mme.errors import ConfigError
from mme.train.config_loader import from_dict, load_config, to_dict, to_yaml


@dataclass
class _Optim:
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    clip: float | None = None

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")


@dataclass
class _Run:
    optim: _Optim = field(default_factory=_Optim)
    out: str = MISSING
    epochs: int = 3


def test_defaults_then_yaml_chain_then_overrides(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "common.yaml").write_text("epochs: 10\noptim:\n  lr: 0.5\n  clip: 1.0\n")
    (tmp_path / "recipe.yaml").write_text("_base_: base/common.yaml\nout: runs/x\noptim:\n  lr: 2e-3\n")
    config = load_config(_Run, tmp_path / "recipe.yaml", ["optim.clip=null", "optim.betas=[0.9,0.999]"])
    assert config == _Run(optim=_Optim(lr=2e-3, betas=[0.9, 0.999], clip=None), out="runs/x", epochs=10)
    assert from_dict(_Run, to_dict(config), "checkpoint") == config
    assert "lr: 0.002" in to_yaml(config)


def test_defaults_list_form(tmp_path):
    (tmp_path / "a.yaml").write_text("epochs: 1\n")
    (tmp_path / "b.yaml").write_text("epochs: 2\nout: o\n")
    (tmp_path / "c.yaml").write_text("defaults: [a.yaml, b.yaml]\n")
    assert load_config(_Run, tmp_path / "c.yaml").epochs == 2


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "message"),
    [
        ("out: o\noptim:\n  lrr: 1\n", [], r"recipe.yaml: unknown config key 'optim.lrr'"),
        ("out: o\nepochs: many\n", [], r"recipe.yaml: invalid value for key 'epochs'"),
        ("out: o\n", ["optim.lr=fast"], r"--set optim.lr=fast: invalid value for key 'optim.lr'"),
        ("out: o\n", ["nope=1"], r"--set nope=1: unknown config key 'nope'"),
        ("out: o\n", ["epochs"], r"--set expects key=value"),
        ("epochs: 2\n", [], r"config key 'out' must be set"),
        ("out: o\n", ["optim.lr=-1"], r"optim.lr must be > 0"),
        ("- a\n- b\n", [], r"must hold a mapping"),
        ("out: [unclosed\n", [], r"not valid YAML"),
        ("_base_: missing.yaml\n", [], r"missing.yaml does not exist"),
        ("_base_: recipe.yaml\n", [], r"include cycle"),
    ],
)
def test_errors_name_the_key_and_the_source(tmp_path, yaml_text, overrides, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(_Run, path, overrides)


@dataclass
class _Moved(_Run):
    MOVED_KEYS: ClassVar[dict[str, str]] = {"optim.steps": "epochs"}


@pytest.mark.parametrize("source", ["yaml", "set"])
def test_a_moved_key_names_where_its_value_lives(tmp_path, source):
    path = tmp_path / "recipe.yaml"
    path.write_text("out: o\n" + ("optim:\n  steps: 3\n" if source == "yaml" else ""))
    overrides = ["optim.steps=3"] if source == "set" else []
    where = "recipe.yaml" if source == "yaml" else "--set optim.steps=3"
    moved = rf"{where}: 'optim.steps' is no longer a setting; the value lives in epochs"
    with pytest.raises(ConfigError, match=moved):
        load_config(_Moved, path, overrides)
    unknown = r"unknown config key 'optim.lrr'; known keys there: betas, clip, lr$"
    with pytest.raises(ConfigError, match=unknown):
        load_config(_Moved, None, ["out=o", "optim.lrr=1"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere\.yaml does not exist"):
        load_config(_Run, tmp_path / "nothere.yaml")
