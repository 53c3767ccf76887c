"""Every run-config value is stored once: targets and model read the geometry of data and traj."""

from __future__ import annotations

import pytest
import yaml

from mme.errors import ConfigError
from mme.objectives import TargetConfig
from mme.train.run_config import FinetuneConfig, PretrainConfig, ProbeConfig, load_run_config


def _pretrain(*overrides: str) -> PretrainConfig:
    return load_run_config(PretrainConfig, None, ["runtime.output_dir=unused", *overrides])


def test_targets_take_their_geometry_from_data_and_traj():
    config = _pretrain(
        "data.patch_size=8", "data.input_size=64", "traj.steps=6", "traj.grid_stride=4",
        "traj.max_displacement=12.5", "targets.traj_norm=none", "targets.hog_cell=4",
    )  # fmt: skip
    assert config.target_config() == TargetConfig(
        traj_norm="none", hog_cell=4, patch_size=8, tubelet_size=2, traj_steps=6, traj_stride=4,
        max_displacement=12.5,
    )  # fmt: skip


def test_model_settings_take_heads_from_the_registry_and_the_clip_from_data():
    config = _pretrain("traj.steps=6", "head_activations.hog=sigmoid", "model.overrides.depth=2",
                       "data.num_frames=8", "data.input_size=64")  # fmt: skip
    assert config.model_settings() == {
        "depth": 2,
        "heads": [
            {"name": "hog", "dim": 108, "activation": "sigmoid"},
            {"name": "traj", "dim": 48, "activation": "identity"},
        ],
        "num_frames": 8,
        "img_size": 64,
        "patch_size": 16,
        "tubelet_size": 2,
    }


@pytest.mark.parametrize(
    ("key", "place"),
    [
        ("targets.patch_size", "data.patch_size"),
        ("targets.tubelet_size", "data.tubelet_size"),
        ("targets.traj_steps", "traj.steps"),
        ("targets.traj_stride", "traj.grid_stride"),
        ("targets.max_displacement", "traj.max_displacement"),
        ("model.overrides.num_frames", "data.num_frames"),
        ("model.overrides.img_size", "data.input_size"),
        ("model.overrides.heads", "predict and head_activations"),
    ],
)
def test_a_removed_copy_names_where_the_value_lives(key, place, tmp_path):
    with pytest.raises(ConfigError, match=f"'{key}' is no longer a setting; the value lives in {place}"):
        _pretrain(f"{key}=1")
    recipe = tmp_path / "recipe.yaml"
    nested: object = 1
    for part in reversed(key.split(".")):
        nested = {part: nested}
    recipe.write_text(yaml.safe_dump(nested))
    with pytest.raises(ConfigError, match=f"{recipe}: '{key}' is no longer a setting"):
        load_run_config(PretrainConfig, recipe, ["runtime.output_dir=unused"])


@pytest.mark.parametrize("schema", [FinetuneConfig, ProbeConfig])
def test_classifier_overrides_are_typed_fields(schema):
    base = ["runtime.output_dir=unused", "model.init_from=null"]
    unknown = r"unknown config key 'model.overrides.decoder_depth'; known keys there: depth,"
    with pytest.raises(ConfigError, match=unknown):
        load_run_config(schema, None, [*base, "model.overrides.decoder_depth=2"])
    with pytest.raises(ConfigError, match=r"invalid value for key 'model.overrides.depth'"):
        load_run_config(schema, None, [*base, "model.overrides.depth=two"])
    moved = r"'model.overrides.num_classes' is no longer a setting; the value lives in data.num_classes"
    with pytest.raises(ConfigError, match=moved):
        load_run_config(schema, None, [*base, "model.overrides.num_classes=5"])


def test_geometry_errors_name_the_keys_that_hold_it():
    with pytest.raises(ConfigError, match=r"traj.grid_stride=6 must divide data.patch_size=16"):
        _pretrain("traj.grid_stride=6")
    with pytest.raises(ConfigError, match=r"targets.hog_cell=6 must divide data.patch_size=16"):
        _pretrain("targets.hog_cell=6")
    with pytest.raises(ConfigError, match=r"data.tubelet_size must be >= 2 for pre-training"):
        _pretrain("data.tubelet_size=1")
