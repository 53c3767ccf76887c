"""The trajectory picture (mme.demo.trajectories, mme visualize) on a tiny model and a short video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from demo_helpers import assert_real_png

from mme.cli.main import main
from mme.data.synthetic import SynthConfig, render_video
from mme.demo.trajectories import (
    PictureSettings,
    TrajectorySample,
    endpoint_errors,
    predict_trajectories,
    seed_positions,
    settings_from_run,
    trajectory_figure,
    unnormalise,
)
from mme.io.video import write_video
from mme.models import create_model, save_model
from mme.motion.tracking import grid_seeds
from mme.objectives import TargetConfig, build_targets, grid_to_tokens

ROTATE_CLOCKWISE = 4  # label of rotate_clockwise in the synthetic class catalogue


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A short synthetic video (rotation: points inside a patch move differently)."""
    config = SynthConfig(classes=8, videos_per_class=3, frames=24, width=64, height=48)
    path = tmp_path_factory.mktemp("video") / "rotate.mp4"
    write_video(path, render_video(config, ROTATE_CLOCKWISE, ROTATE_CLOCKWISE))
    return path


def _tiny(heads: list[str]) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("mme_vit_tiny_patch16_224", depth=1, num_frames=4, img_size=32, heads=heads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_model(_tiny(["hog", "traj"]), tmp_path_factory.mktemp("ckpt") / "model")


def _random_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
    disp = torch.randn(1, 2, 4, 4, 4, 2, generator=generator) * 3
    return {
        "clip": torch.zeros(1, 3, 4, 32, 32),
        "traj_disp": disp,
        "traj_valid": torch.ones(1, 2, 4, 4, 4, dtype=torch.bool),
    }


@pytest.mark.parametrize("norm", ["patch_std", "none"])
def test_unnormalise_inverts_the_target_normalisation(norm):
    """Un-normalising the normalised target with the raw target's statistics gives the raw
    target back: the (N, 2, L, P) reading of the head's layout matches mme.objectives."""
    config = TargetConfig(traj_norm=norm)
    batch = _random_batch(torch.Generator().manual_seed(1))
    normalised = build_targets(["traj"], batch, config)["traj"][0][0]
    raw_config = TargetConfig(traj_norm="none")
    raw = build_targets(["traj"], batch, raw_config)["traj"][0][0] * raw_config.max_displacement
    raw = raw.reshape(-1, 2, 4, 4)
    torch.testing.assert_close(unnormalise(normalised, raw, config), raw, atol=1e-4, rtol=1e-4)
    # The same tokens, read straight from the displacement grid: point p of token n is grid cell
    # (2i + p // 2, 2j + p % 2) and step t, coordinate c.
    grid = batch["traj_disp"][0].permute(0, 2, 3, 1, 4)  # (K, Gh, Gw, L, 2)
    direct = grid_to_tokens(grid[None], 2)[0].permute(0, 3, 2, 1)  # (N, 2, L, P)
    torch.testing.assert_close(raw, direct)


def test_zero_prediction_is_the_patch_mean_motion():
    """With patch-std targets, a zero prediction un-normalises to every point moving with the
    patch's mean: the baseline the figure's caption compares the model with."""
    batch = _random_batch(torch.Generator().manual_seed(2))
    raw_config = TargetConfig(traj_norm="none")
    raw = build_targets(["traj"], batch, raw_config)["traj"][0][0].reshape(-1, 2, 4, 4) * 20
    drawn = unnormalise(torch.zeros(raw.shape[0], 32), raw, TargetConfig())
    torch.testing.assert_close(drawn, raw.mean(dim=-1, keepdim=True).expand_as(raw))


def test_seed_positions_are_the_tracking_grid_in_token_order():
    sample = TrajectorySample(
        dense_frames=np.zeros((2, 5, 32, 48, 3), np.uint8),
        mask=np.zeros(12, bool),
        target=np.zeros((12, 2, 4, 4)),
        valid=np.ones((12, 4, 4), bool),
        predicted=np.zeros((12, 2, 4, 4)),
        grid=(2, 2, 3),
        patch=16,
        points_per_side=2,
        traj_stride=8,
        frame_indices=np.zeros((2, 5), int),
        normalisation="patch_std",
    )
    seeds = grid_seeds(32, 48, 8)  # (Gh, Gw, 2) (x, y)
    tiled = np.broadcast_to(seeds, (2, *seeds.shape))
    expected = grid_to_tokens(torch.from_numpy(np.ascontiguousarray(tiled))[None], 2)[0].numpy()
    np.testing.assert_allclose(seed_positions(sample), expected)
    assert tuple(seed_positions(sample)[0, 0]) == (3.5, 3.5)


def test_predictions_are_unnormalised_with_the_target_statistics(checkpoint, video):
    from mme.demo.trajectories import load_traj_model

    model = load_traj_model(checkpoint)
    sample = predict_trajectories(model, video, PictureSettings(stride=2), seed=3)
    masked = sample.mask
    assert masked.sum() == 3 * 2  # round(0.7 * 4) patches per tubelet, 2 tubelets
    assert np.isnan(sample.predicted[~masked]).all() and np.isfinite(sample.predicted[masked]).all()
    # patch-std un-normalisation: the target's mean and std over the patch's points, applied to
    # the tanh head's output, so (drawn - mean) / std is back in [-1, 1] and not the target.
    target = sample.target[masked]
    mean, std = target.mean(axis=-1, keepdims=True), target.std(axis=-1, ddof=1, keepdims=True)
    normalised = (sample.predicted[masked] - mean) / (std + 1e-6)
    assert np.abs(normalised).max() <= 1.0 + 1e-3
    assert np.abs(normalised - (target - mean) / (std + 1e-6)).max() > 0.1
    # The video rotates: the target moves.
    assert np.abs(sample.target).max() > 0.05
    errors = endpoint_errors(sample)
    assert errors["points"] > 0 and np.isfinite(errors["model"]) and np.isfinite(errors["patch_mean"])


def test_trajectory_figure_writes_a_picture(checkpoint, video, tmp_path):
    out = tmp_path / "traj.png"
    info = trajectory_figure(checkpoint, video, out, settings=PictureSettings(stride=2), seed=1)
    assert_real_png(out)
    assert info["path"] == str(out) and 0 <= info["tubelet"] < 2
    assert 1 <= info["magnify"] <= 10
    assert info["endpoint_error"]["points"] > 0


def test_settings_come_from_the_pretraining_run(tmp_path):
    from mme.train.config import PretrainConfig, load_run_config
    from mme.train.config_loader import write_config

    run = tmp_path / "run"
    config = load_run_config(
        PretrainConfig,
        None,
        [
            f"runtime.output_dir={run}",
            "model.name=mme_vit_tiny_patch16_224",
            "data.stride=3",
            "data.mask_ratio=0.5",
            "traj.flow=farneback",
        ],
    )
    write_config(config, run / "config.yaml")
    save_model(_tiny(["hog", "traj"]), run / "model")
    settings = settings_from_run(run / "model")
    assert settings is not None
    assert (settings.stride, settings.mask_ratio, settings.traj.flow) == (3, 0.5, "farneback")
    assert settings_from_run(tmp_path / "elsewhere") is None


def test_visualize_command(checkpoint, video, tmp_path, capsys):
    out = tmp_path / "cli.png"
    code = main(
        [
            "visualize",
            "--checkpoint",
            str(checkpoint),
            "--video",
            str(video),
            "--out",
            str(out),
            "--stride",
            "2",
        ]
    )
    assert code == 0
    assert_real_png(out)
    assert f"wrote {out}" in capsys.readouterr().out


def test_visualize_refuses_a_checkpoint_without_trajectories(video, tmp_path, capsys):
    pixel = save_model(_tiny(["pixel"]), tmp_path / "pixel")
    code = main(
        ["visualize", "--checkpoint", str(pixel), "--video", str(video), "--out", str(tmp_path / "x.png")]
    )
    assert code == 1
    assert "no 'traj' head" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_visualize_names_a_missing_video(checkpoint, tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    code = main(
        [
            "visualize",
            "--checkpoint",
            str(checkpoint),
            "--video",
            str(missing),
            "--out",
            str(tmp_path / "x.png"),
        ]
    )
    assert code == 1
    assert str(missing) in capsys.readouterr().err
