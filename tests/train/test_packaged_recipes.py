"""The recipes of configs/ ship in the wheel, and `--config configs/...` finds them from any folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mme.errors import ConfigError
from mme.train.config_loader import RECIPES, load_config, recipe_path
from mme.train.run_config import PretrainConfig

REPO = Path(__file__).resolve().parents[2]
RECIPE_FILES = sorted(str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml"))


def test_a_built_wheel_holds_every_recipe_and_an_install_reads_them(tmp_path):
    source = tmp_path / "source"  # what a checkout holds for a build: configs/ and the src/ link
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "configs"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, str(source), "-w", str(tmp_path / "wheels")], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheels").glob("mme-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(
            name.removeprefix("mme/configs/") for name in archive.namelist() if name.endswith(".yaml")
        )
        archive.extractall(tmp_path / "site")
    assert RECIPE_FILES and shipped == RECIPE_FILES
    # The unpacked wheel (first on sys.path), run from a folder without configs/.
    (tmp_path / "elsewhere").mkdir()
    script = (
        "import json, mme; from mme.train.run_config import PretrainConfig; "
        "from mme.train.config_loader import RECIPES, load_config; "
        "c = load_config(PretrainConfig, 'configs/pretrain/k400_vitb_800ep.yaml'); "
        "print(json.dumps([mme.__file__, str(RECIPES), c.schedule.epochs, c.model.name]))"
    )
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}
    here = tmp_path / "elsewhere"
    run = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=here, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    module, recipes, epochs, model = json.loads(run.stdout)
    assert (
        Path(module).is_relative_to(tmp_path / "site")
        and Path(recipes) == tmp_path / "site" / "mme" / "configs"
    )
    assert (epochs, model) == (800, "mme_vit_base_patch16_224")  # the recipe and its _base_ were read


def test_a_configs_path_names_the_installed_recipe_unless_a_local_file_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert recipe_path("configs/synthetic/pretrain.yaml") == RECIPES / "synthetic" / "pretrain.yaml"
    assert (
        load_config(PretrainConfig, "configs/synthetic/pretrain.yaml").model.name
        == "mme_vit_tiny_patch16_224"
    )
    local = tmp_path / "configs" / "synthetic" / "pretrain.yaml"
    local.parent.mkdir(parents=True)
    local.write_text("schedule:\n  epochs: 3\nruntime:\n  output_dir: run\n")
    assert recipe_path("configs/synthetic/pretrain.yaml") == Path("configs/synthetic/pretrain.yaml")
    assert load_config(PretrainConfig, "configs/synthetic/pretrain.yaml").schedule.epochs == 3
    with pytest.raises(
        ConfigError, match=r"configs/pretrain/nope\.yaml does not exist, neither here nor among"
    ):
        load_config(PretrainConfig, "configs/pretrain/nope.yaml")
    with pytest.raises(ConfigError, match=r"config file mine\.yaml does not exist"):  # not a recipe path
        load_config(PretrainConfig, "mine.yaml")
