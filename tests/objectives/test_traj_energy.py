"""The trajectory target is ~0 where nothing moves relative to a patch and carries in-patch motion.

Measured on rendered videos of known motion with a little sensor noise, the way the loader
computes trajectories online and offline (mme.objectives.energy; table in docs/motion.md).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mme.objectives import TargetConfig, build_targets
from mme.objectives.energy import measure_energies


@pytest.fixture(scope="module")
def energies() -> dict[str, dict[str, float]]:
    norms = {"default": TargetConfig(), "no floor": TargetConfig(traj_std_floor=0.0)}
    return measure_energies(112, norms, seeds=3)  # boundary scenes vary: one seed is ~10% off


def test_default_target_is_quiet_on_rigid_motion_and_carries_rotation(energies) -> None:
    rotation = energies["rotating/online"]["default"]
    assert rotation > 10.0
    assert energies["static/online"]["default"] <= 0.01 * rotation
    assert energies["translating/online"]["default"] <= 0.10 * rotation


def test_online_and_offline_agree_on_the_same_clips(energies) -> None:
    for kind in ("rotating", "zooming", "boundary"):
        online, offline = energies[f"{kind}/online"]["default"], energies[f"{kind}/offline"]["default"]
        assert abs(online - offline) <= 0.10 * offline, (kind, online, offline)


def test_without_the_floor_flow_noise_is_standardised_into_a_full_target(energies) -> None:
    # The released normalisation on float displacements (eps only): rigid motion looks like rotation.
    rotation = energies["rotating/online"]["no floor"]
    assert energies["translating/online"]["no floor"] >= 0.5 * rotation


def _batch(disp: torch.Tensor, scale: float | None = None) -> dict[str, torch.Tensor]:
    """One 16x16 token (one tubelet, 2x2 points, 4 steps) with the given (2, 2, 2) step."""
    grid = disp.reshape(1, 1, 1, 2, 2, 2).expand(1, 1, 4, 2, 2, 2).contiguous()
    batch = {
        "clip": torch.zeros(1, 3, 2, 16, 16),
        "traj_disp": grid,
        "traj_valid": torch.ones(1, 1, 4, 2, 2, dtype=torch.bool),
    }
    if scale is not None:
        batch["traj_flow_scale"] = torch.full((1, 2), scale)
    return batch


def _traj(batch: dict[str, torch.Tensor], config: TargetConfig) -> torch.Tensor:
    values, _ = build_targets(["traj"], batch, config)["traj"]
    return values.reshape(2, 4, 4)  # (coordinate, step, point)


def test_floor_divides_small_spreads_and_standardises_large_ones() -> None:
    config = TargetConfig(traj_std_floor=0.15, eps=0.0)
    small = torch.tensor([[1.0, 1.0], [1.0, 1.02]]).unsqueeze(-1).expand(2, 2, 2)  # spread 0.01 px
    x = _traj(_batch(small), config)[0, 0]
    expected = (torch.tensor([1.0, 1.0, 1.0, 1.02]) - 1.005) / 0.15
    torch.testing.assert_close(x, expected)
    large = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).unsqueeze(-1).expand(2, 2, 2)
    x = _traj(_batch(large), config)[0, 0]
    torch.testing.assert_close(x.std(), torch.tensor(1.0))


def test_patch_std_int_truncates_steps_at_the_flow_resolution() -> None:
    config = TargetConfig(traj_norm="patch_std_int")
    # Online (flow at input size): 1.7 and 1.2 px both truncate to 1 -> no relative motion.
    steps = torch.tensor([[1.7, 1.2], [1.7, 1.2]]).unsqueeze(-1).expand(2, 2, 2)
    assert _traj(_batch(steps), config).abs().max() == 0
    # Offline flow at twice the input size: 3.4 and 2.4 flow px -> 3 and 2 -> 1.5 vs 1.0 input px.
    x = _traj(_batch(steps, scale=0.5), config)[0, 0]
    values = torch.tensor([1.5, 1.0, 1.5, 1.0])
    torch.testing.assert_close(x, (values - values.mean()) / (values.std() + config.eps))


def test_floor_is_validated() -> None:
    from mme.errors import ConfigError

    with pytest.raises(ConfigError, match="traj_std_floor"):
        dataclasses.replace(TargetConfig(), traj_std_floor=-1.0)
