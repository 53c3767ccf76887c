"""Pre-training heads: identity by default, the released sigmoid/tanh one setting away, and a head
that cannot output its target refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mme.errors import ConfigError
from mme.tasks.pretrain import pretrain_model
from mme.train.run_config import PretrainConfig, load_run_config

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "pretrain.yaml"


def _config(*overrides: str) -> PretrainConfig:
    return load_run_config(PretrainConfig, RECIPE, ["runtime.output_dir=unused", *overrides])


def test_heads_are_identity_unless_the_released_activations_are_asked_for() -> None:
    default = pretrain_model(_config())
    assert all(isinstance(head.activation, torch.nn.Identity) for head in default.heads.values())
    released = pretrain_model(_config("head_activations.hog=sigmoid", "head_activations.traj=tanh"))
    assert isinstance(released.heads["hog"].activation, torch.nn.Sigmoid)
    assert isinstance(released.heads["traj"].activation, torch.nn.Tanh)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("head_activations.traj=sigmoid", "sigmoid head cannot predict target 'traj'"),
        ("head_activations.pixel=tanh", "'pixel' is not a predicted target"),
        ("head_activations.hog=relu", "'relu' is not one of sigmoid, tanh, identity"),
    ],
)
def test_heads_that_cannot_serve_their_target_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(override)
