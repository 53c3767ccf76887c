"""What the decoder predicts (HOG, trajectories, pixels) and the masked loss: tensor functions."""

from mme.objectives.config import TargetConfig, TargetSettings
from mme.objectives.loss import masked_loss
from mme.objectives.targets import (
    TARGETS,
    TargetSpec,
    build_targets,
    get_target,
    grid_to_tokens,
    head_specs,
    target_dim,
)

__all__ = [
    "TARGETS",
    "TargetConfig",
    "TargetSettings",
    "TargetSpec",
    "build_targets",
    "get_target",
    "grid_to_tokens",
    "head_specs",
    "masked_loss",
    "target_dim",
]
