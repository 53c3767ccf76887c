from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mme.errors import ConfigError
from mme.motion import DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW, TrajectoryConfig
from mme.objectives import TargetConfig


def test_defaults_are_the_measured_choices():
    config = TrajectoryConfig()
    assert (config.flow, config.steps, config.grid_stride, config.median_filter, config.max_displacement) == (
        DEFAULT_ONLINE_FLOW, 4, 8, True, 20.0
    )  # fmt: skip
    # docs/motion.md: dis_halfres keeps the motion inside a patch (online within 10 % of offline)
    assert DEFAULT_ONLINE_FLOW == "dis_halfres" and DEFAULT_OFFLINE_FLOW == "dis_fine"


@pytest.mark.parametrize("config_class", [TrajectoryConfig, TargetConfig])
def test_configs_are_omegaconf_structured_configs(config_class):
    schema = OmegaConf.structured(config_class)
    override = {"flow": "dis_medium"} if config_class is TrajectoryConfig else {"traj_norm": "none"}
    merged = OmegaConf.merge(schema, OmegaConf.create(override))
    built = OmegaConf.to_object(merged)
    assert isinstance(built, config_class)
    assert getattr(built, next(iter(override))) == next(iter(override.values()))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("flow", "raft", "unknown flow backend"), ("steps", 0, "steps"), ("grid_stride", 2.5, "grid_stride"),
     ("max_displacement", 0.0, "max_displacement")],
)  # fmt: skip
def test_bad_values_are_config_errors_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrajectoryConfig(**{field: value})
