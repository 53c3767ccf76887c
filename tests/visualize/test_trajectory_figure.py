"""The trajectory picture (mme.visualize.trajectories, mme visualize) on a tiny model and a short video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from picture_helpers import assert_real_png

from mme.cli.main import main
from mme.data.synthetic import SynthConfig, render_video
from mme.io.video import write_video
from mme.models import create_model, save_model
from mme.motion.tracking import grid_seeds
from mme.objectives import TargetConfig, build_targets, grid_to_tokens, head_specs, masked_loss
from mme.visualize import canvas, trajectories
from mme.visualize.trajectories import (
    ClipInputs,
    PictureSettings,
    TrajectorySample,
    clip_inputs,
    compare,
    load_traj_model,
    normalised_scale,
    paths,
    predict_trajectories,
    prediction_losses,
    seed_positions,
    settings_from_run,
    trajectory_figure,
)

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
    return create_model(
        "mme_vit_tiny_patch16_224", depth=1, num_frames=4, img_size=32, heads=head_specs(heads)
    )


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


def _inputs(batch: dict[str, torch.Tensor], mask: torch.Tensor, config: TargetConfig) -> ClipInputs:
    """ClipInputs of a (1, 3, 4, 32, 32) clip batch: 2 tubelets of 2 x 2 patches."""
    return ClipInputs(
        batch=batch,
        mask=mask,
        targets=config,
        dense_frames=np.zeros((2, 5, 32, 32, 3), np.uint8),
        frame_indices=np.zeros((2, 5), int),
        grid=(2, 2, 2),
    )


MASK = torch.tensor([[True, False, True, True, False, True, True, False]])


@pytest.mark.parametrize("norm", ["patch_std", "none"])
def test_sample_reads_the_targets_in_the_heads_layout(norm):
    """The (N, 2, L, P) reading of the built targets matches mme.objectives and the grid."""
    config = TargetConfig(traj_norm=norm)
    batch = _random_batch(torch.Generator().manual_seed(1))
    sample = compare(_inputs(batch, MASK, config), torch.zeros(int(MASK.sum()), 32))
    normalised = build_targets(["traj"], batch, config)["traj"][0][0]
    np.testing.assert_array_equal(sample.target_norm.reshape(8, 32), normalised.numpy())
    # Point p of token n is grid cell (2i + p // 2, 2j + p % 2) and step t, coordinate c; the
    # pixel target is the displacement itself, whatever the normalisation.
    grid = batch["traj_disp"][0].permute(0, 2, 3, 1, 4)  # (K, Gh, Gw, L, 2)
    direct = grid_to_tokens(grid[None], 2)[0].permute(0, 3, 2, 1)  # (N, 2, L, P)
    np.testing.assert_allclose(sample.target, direct.numpy(), rtol=1e-6, atol=1e-5)
    assert np.isnan(sample.predicted[~MASK[0].numpy()]).all()


def test_stated_losses_are_the_pretraining_loss_of_the_prediction_and_of_zeros():
    """The figure's numbers: masked_loss of the prediction and of zeros in the normalised space;
    a prediction equal to the target costs 0, a zero prediction costs exactly the baseline."""
    config = TargetConfig()
    batch = _random_batch(torch.Generator().manual_seed(2))
    values, weight = build_targets(["traj"], batch, config)["traj"]
    masked = int(MASK.sum())
    exact = values[MASK].reshape(masked, 32)
    perfect = prediction_losses(compare(_inputs(batch, MASK, config), exact))
    blind = prediction_losses(compare(_inputs(batch, MASK, config), torch.zeros(masked, 32)))
    zeros = masked_loss({"traj": torch.zeros(1, masked, 32)}, {"traj": (values, weight)}, MASK)[1]["traj"]
    assert perfect["model"] == 0.0
    assert perfect["zeros"] == blind["zeros"] == blind["model"] == pytest.approx(float(zeros))
    assert blind["zeros"] > 1.0 and perfect["masked_tokens"] == masked


def test_seed_positions_are_the_tracking_grid_in_token_order():
    sample = TrajectorySample(
        dense_frames=np.zeros((2, 5, 32, 48, 3), np.uint8),
        mask=np.zeros(12, bool),
        target=np.zeros((12, 2, 4, 4)),
        target_norm=np.zeros((12, 2, 4, 4)),
        valid=np.ones((12, 4, 4), bool),
        weight=np.ones(12),
        predicted=np.zeros((12, 2, 4, 4)),
        grid=(2, 2, 3),
        patch=16,
        points_per_side=2,
        traj_stride=8,
        frame_indices=np.zeros((2, 5), int),
        normalisation="patch_std",
        max_displacement=20.0,
    )
    seeds = grid_seeds(32, 48, 8)  # (Gh, Gw, 2) (x, y)
    tiled = np.broadcast_to(seeds, (2, *seeds.shape))
    expected = grid_to_tokens(torch.from_numpy(np.ascontiguousarray(tiled))[None], 2)[0].numpy()
    np.testing.assert_allclose(seed_positions(sample), expected)
    assert tuple(seed_positions(sample)[0, 0]) == (3.5, 3.5)


def _per_patch_affine(disp: torch.Tensor) -> torch.Tensor:
    """``disp`` (K, L, Gh, Gw, 2) with each patch's points scaled by one factor and shifted by one
    vector per step: the patch-std target keeps its shape, its per-patch mean and std change."""
    generator = torch.Generator().manual_seed(0)
    tubelets, steps, rows, cols = disp.shape[0], disp.shape[1], disp.shape[2] // 2, disp.shape[3] // 2
    scale = torch.rand(tubelets, 1, rows, cols, 1, generator=generator) * 1.5 + 0.5
    shift = torch.randn(tubelets, steps, rows, cols, 2, generator=generator)

    def per_point(per_patch: torch.Tensor) -> torch.Tensor:
        return per_patch.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    return disp * per_point(scale) + per_point(shift)


def test_drawn_prediction_ignores_the_targets_per_patch_statistics(checkpoint, video, monkeypatch):
    """Moving and scaling every patch's target trajectories leaves the drawn prediction as it is:
    it is drawn from the model's output alone (it once borrowed the target's per-patch mean and
    std, so any decoder drew the target's motion)."""
    model, random = load_traj_model(checkpoint)
    assert random == []
    settings = PictureSettings(stride=2)
    plain = predict_trajectories(model, video, settings, seed=3)
    track = trajectories.dense_clip_trajectories

    def moved_tracks(*args, **kwargs):
        disp, valid = track(*args, **kwargs)
        return _per_patch_affine(disp), valid

    monkeypatch.setattr(trajectories, "dense_clip_trajectories", moved_tracks)
    moved = predict_trajectories(model, video, settings, seed=3)
    masked = plain.mask
    assert masked.sum() == 3 * 2  # round(0.7 * 4) patches per tubelet, 2 tubelets
    assert np.abs(moved.target - plain.target)[masked].mean() > 0.3  # the targets did move
    np.testing.assert_array_equal(moved.predicted, plain.predicted)
    assert np.isnan(plain.predicted[~masked]).all()
    assert np.isfinite(plain.predicted[masked]).all()

    def drawn(sample: TrajectorySample) -> np.ndarray:
        return paths(sample, np.nan_to_num(sample.predicted), normalised_scale(sample, 1.0))

    np.testing.assert_array_equal(drawn(moved), drawn(plain))


def _fit_traj_head(model: torch.nn.Module, inputs: ClipInputs, steps: int) -> None:
    """Fit the model's traj head on one clip's masked tokens (decoder features fixed)."""
    clip, mask = inputs.batch["clip"], inputs.mask
    target = {"traj": build_targets(["traj"], inputs.batch, inputs.targets)["traj"]}
    with torch.no_grad():
        features = model.forward_decoder(model.forward_encoder(clip, mask), mask, int(mask.sum()))
    head = model.heads["traj"]
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = masked_loss({"traj": head(features)}, target, mask)[0]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def test_stated_loss_tells_a_fitted_decoder_from_a_random_one(checkpoint, video):
    """The figure states the model's loss beside a baseline that does not see the video: a
    decoder fitted on the clip is far below the baseline, a random one is not; the baseline is
    the same for both."""
    torch.manual_seed(0)
    random_model, _ = load_traj_model(checkpoint)
    fitted, _ = load_traj_model(checkpoint)
    inputs = clip_inputs(video, PictureSettings(stride=2), fitted.config.encoder, seed=3)
    _fit_traj_head(fitted, inputs, steps=60)
    stated = {}
    for name, model in (("random", random_model), ("fitted", fitted)):
        with torch.no_grad():
            prediction = model(inputs.batch["clip"], inputs.mask)["traj"][0]
        stated[name] = prediction_losses(compare(inputs, prediction))  # what the figure states
    assert stated["fitted"]["zeros"] == stated["random"]["zeros"] > 0
    assert stated["fitted"]["model"] < 0.5 * stated["fitted"]["zeros"] < stated["random"]["model"]


def test_trajectory_figure_writes_a_picture_and_its_numbers(checkpoint, video, tmp_path):
    out = tmp_path / "traj.png"
    info = trajectory_figure(checkpoint, video, out, settings=PictureSettings(stride=2), seed=1)
    assert_real_png(out)
    assert info["path"] == str(out) and 0 <= info["tubelet"] < 2
    assert 1 <= info["magnify"] <= 10
    assert info["random_decoder"] is False and info["loss"]["masked_tokens"] == 6
    assert json.loads((tmp_path / "traj.json").read_text()) == info


def test_settings_come_from_the_pretraining_run(tmp_path):
    from mme.train.config_loader import write_config
    from mme.train.run_config import PretrainConfig, load_run_config

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
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    loss = json.loads(out.with_suffix(".json").read_text())["loss"]
    assert f"model {loss['model']:.4g}, zeros baseline {loss['zeros']:.4g}" in printed


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


def test_visualize_refuses_a_classifier_unless_a_random_decoder_is_allowed(
    video, tmp_path, capsys, monkeypatch
):
    """A fine-tuned classifier has no pre-training decoder: refused, unless
    --allow-random-decoder, and then the figure's title and numbers say "random decoder"."""
    torch.manual_seed(0)
    classifier = create_model("vit_tiny_patch16_224", depth=1, num_frames=4, img_size=32, num_classes=8)
    ckpt = save_model(classifier, tmp_path / "classifier")
    out = tmp_path / "random.png"
    command = ["visualize", "--checkpoint", str(ckpt), "--video", str(video), "--out", str(out)]
    command += ["--stride", "2"]
    assert main(command) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]  # the error line, after the load log
    assert "no pre-training decoder" in error and "--allow-random-decoder" in error
    assert "decoder.blocks.0.*" in error and "heads.traj" in error and "heads.hog" not in error
    assert not out.exists()

    titles = []
    save_png = canvas.save_png

    def keep_title(figure, path):
        titles.append(figure.get_suptitle())
        return save_png(figure, path)

    monkeypatch.setattr(canvas, "save_png", keep_title)
    assert main([*command, "--allow-random-decoder"]) == 0
    assert "RANDOM decoder" in capsys.readouterr().out
    assert_real_png(out)
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers["random_decoder"] is True
    assert titles[0].startswith("RANDOM DECODER")
    # The random decoder is drawn from the seed: the same numbers on every run.
    assert main([*command, "--allow-random-decoder"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["loss"] == numbers["loss"]
