"""Original MME pre-training checkpoints: their heads' per-token layouts become mme's on import.

The original code flattens the HOG target as ``(rgb_channel * 9 + bin) * 4 + cell``, mme as
``cell * 27 + channel * 9 + bin``; an imported ``hog`` head must predict in mme's order. The
"original" side here is written out independently: the head rows are rearranged into the original
order by hand, the original targets are flattened by hand from the same HOG / trajectory values.
"""

from __future__ import annotations

import pytest
import torch
from model_helpers import original_pretrain_state, random_clip, reference_pretrain, tiny_pretrain, tube_mask

from mme.errors import CheckpointError
from mme.interop import load_pretrain_model_with_report
from mme.interop.adapters.videomae import original_head_rows
from mme.models import save_model
from mme.motion.hog import hog_along_trajectories, hog_cells
from mme.objectives import TargetConfig, build_targets, head_specs

CELLS, CHANNELS, BINS, POINTS = 4, 3, 9, 4


def _hog_rows_to_original(rows: torch.Tensor) -> torch.Tensor:
    """mme's (cell, channel, bin) rows -> the original's (channel, bin, cell) rows."""
    return rows.unflatten(0, (CELLS, CHANNELS, BINS)).permute(1, 2, 0, *range(3, rows.ndim + 2)).flatten(0, 2)


def _original_names(state: dict[str, torch.Tensor], heads: list[str]) -> dict[str, torch.Tensor]:
    """Our pre-training state dict under the original release's names (``--decoder_num 1``)."""
    renamed = {}
    for key, value in state.items():
        name = key
        if key.startswith("heads."):
            _, head, rest = key.split(".", 2)
            rest = rest.replace("hidden.0.", "0.").replace("out.", "2.")
            name = f"decoder.0.head.{heads.index(head)}.{rest}"
        elif key.startswith("decoder."):
            name = "decoder.0." + key.removeprefix("decoder.")
        elif key == "encoder_to_decoder.weight":
            name = "encoder_to_decoder.0.weight"
        renamed[name] = value
    return renamed


def _simulated_original_checkpoint(model) -> dict[str, torch.Tensor]:
    """What the original code would have saved for ``model``: original names, HOG rows in its order."""
    state = _original_names(model.state_dict(), model.head_names)
    for kind in ("weight", "bias"):
        key = f"decoder.0.head.0.2.{kind}"
        state[key] = _hog_rows_to_original(state[key])
    return state


def test_hog_permutation_is_the_documented_one():
    rows = original_head_rows("hog", 108)
    for cell in range(CELLS):
        for channel in range(CHANNELS):
            for b in range(BINS):
                assert rows[cell * 27 + channel * 9 + b] == (channel * 9 + b) * 4 + cell
    steps = 4
    rows = original_head_rows("traj_hog", steps * POINTS * CHANNELS * BINS)
    for t in range(steps):
        for p in range(POINTS):
            for channel in range(CHANNELS):
                for b in range(BINS):
                    ours = ((t * POINTS + p) * CHANNELS + channel) * BINS + b
                    assert rows[ours] == ((channel * BINS + b) * steps + t) * POINTS + p
    # Trajectories and pixels are flattened alike in both codes.
    assert original_head_rows("traj", 32) is None and original_head_rows("pixel", 1536) is None


def test_imported_original_checkpoint_predicts_hog_in_mme_order(tmp_path):
    # a model as the original code trains it: sigmoid HOG and tanh trajectory heads
    heads = head_specs(["hog", "traj"], activations={"hog": "sigmoid", "traj": "tanh"})
    model = tiny_pretrain(heads=heads).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    original = _simulated_original_checkpoint(model)
    torch.save({"model": original}, tmp_path / "mme_pretrain.pth")

    imported, report = load_pretrain_model_with_report(
        tmp_path / "mme_pretrain.pth", num_frames=4, img_size=32
    )
    assert imported.head_names == ["hog", "traj"]
    assert any("'hog'" in note and "reordered" in note for note in report.notes)
    assert not any("'traj'" in note and "reordered" in note for note in report.notes)

    clip, mask = random_clip(), tube_mask(2, (2, 2, 2), 3)
    hog_original, traj_original = reference_pretrain(
        original,
        clip,
        mask,
        heads=model.config.encoder.num_heads,
        decoder_heads=model.config.decoder_num_heads,
        activations=[torch.sigmoid, torch.tanh],
    )
    with torch.no_grad():
        out = imported.eval()(clip, mask)
        ours = model(clip, mask)
    rows = original_head_rows("hog", 108)
    torch.testing.assert_close(out["hog"], hog_original[..., rows], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["traj"], traj_original, atol=1e-5, rtol=1e-4)
    # ... which is what the model the checkpoint was made from predicts.
    torch.testing.assert_close(out["hog"], ours["hog"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["traj"], ours["traj"], atol=1e-5, rtol=1e-4)


def test_mme_format_heads_are_not_reordered(tmp_path):
    model = tiny_pretrain().eval()
    save_model(model, tmp_path / "ours")
    loaded, report = load_pretrain_model_with_report(tmp_path / "ours")
    assert torch.equal(loaded.heads["hog"].out.weight, model.heads["hog"].out.weight)
    assert not any("reordered" in note for note in report.notes)


def test_a_named_traj_hog_head_is_reordered_too(tmp_path):
    """The random original-layout state dict of the other checkpoint tests, named traj_hog too."""
    state = original_pretrain_state(head_dims=(108, 432))
    torch.save({"model": state}, tmp_path / "volume.pth")
    heads = [*head_specs(["hog"]), {"name": "traj_hog", "dim": 432, "activation": "sigmoid"}]
    model, report = load_pretrain_model_with_report(tmp_path / "volume.pth", heads=heads)
    assert any("'traj_hog'" in note and "not an equivalent" in note for note in report.notes)
    clip, mask = random_clip(), tube_mask(2, (2, 2, 2), 3)
    expected = reference_pretrain(state, clip, mask, 3, 3, [torch.sigmoid, torch.sigmoid])
    with torch.no_grad():
        out = model.eval()(clip, mask)
    torch.testing.assert_close(
        out["hog"], expected[0][..., original_head_rows("hog", 108)], atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        out["traj_hog"], expected[1][..., original_head_rows("traj_hog", 432)], atol=1e-4, rtol=0
    )


def test_head_width_outside_the_original_layout_is_an_error(tmp_path):
    state = original_pretrain_state(head_dims=(100, 32))
    torch.save({"model": state}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"odd\.pth.*'hog' of width 100"):
        load_pretrain_model_with_report(
            tmp_path / "odd.pth",
            heads=[{"name": "hog", "dim": 100, "activation": "sigmoid"}, *head_specs(["traj"])],
        )


# ----------------------------------------------------------------------------- the targets


def _original_token_layout(grid: torch.Tensor, inner: int) -> torch.Tensor:
    """The original's ``b c (t t2) (h h2) (w w2) -> b (t h w) (c t2 h2 w2)`` with h2 = w2 = 2.

    ``grid`` is (B, C, K * inner, Gh, Gw); written with reshape/permute for this test.
    """
    batch, channels, frames, grid_h, grid_w = grid.shape
    split = grid.reshape(batch, channels, frames // inner, inner, grid_h // 2, 2, grid_w // 2, 2)
    tokens = split.permute(0, 2, 4, 6, 1, 3, 5, 7)  # b t h w c t2 h2 w2
    return tokens.reshape(batch, (frames // inner) * (grid_h // 2) * (grid_w // 2), -1)


def test_hog_target_equals_the_original_ordering_after_the_permutation():
    clip = random_clip(batch=2, frames=4, size=32, seed=3)
    ours, _ = build_targets(["hog"], {"clip": clip})["hog"]
    # Original: the HOG of each tubelet's second frame, channels "(rgb_channel bin)".
    batch, _, frames, height, width = clip.shape
    second = clip[:, :, 1::2].transpose(1, 2).reshape(-1, CHANNELS, height, width)
    cells = hog_cells(second)  # (B K, 3, 9, Gh, Gw)
    grid = cells.reshape(batch, frames // 2, CHANNELS * BINS, *cells.shape[-2:]).transpose(1, 2)
    original = _original_token_layout(grid, inner=1)
    assert not torch.equal(ours, original)
    assert torch.equal(ours, original[..., original_head_rows("hog", 108)])


def _trajectories(batch: int, tubelets: int, steps: int, grid: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    disp = 3.0 * torch.randn(batch, tubelets, steps, grid, grid, 2, generator=gen)
    return disp, torch.ones(batch, tubelets, steps, grid, grid, dtype=torch.bool)


def test_trajectory_target_has_the_original_ordering():
    clip = random_clip(batch=2, frames=4, size=32, seed=4)
    disp, valid = _trajectories(2, 2, 4, 4, seed=5)
    config = TargetConfig(traj_norm="none")
    ours, _ = build_targets(["traj"], {"clip": clip, "traj_disp": disp, "traj_valid": valid}, config)["traj"]
    # Original: trajs (B, c = x/y, (tubelet step), Gh, Gw), divided by 20, "(c t2 h2 w2)".
    grid = disp.permute(0, 5, 1, 2, 3, 4).flatten(2, 3) / 20.0
    torch.testing.assert_close(ours, _original_token_layout(grid, inner=4), atol=1e-6, rtol=0)


def test_traj_hog_target_equals_the_original_volume_hog_ordering_after_the_permutation():
    steps = 4
    clip = random_clip(batch=1, frames=4, size=32, seed=6)
    disp, valid = _trajectories(1, 2, steps, 4, seed=7)
    disp = disp.clamp(-2, 2)
    gen = torch.Generator().manual_seed(8)
    frames = torch.randn(1, 2, steps + 1, 3, 32, 32, generator=gen)
    batch = {"clip": clip, "traj_disp": disp, "traj_valid": valid, "traj_frames": frames}
    ours, _ = build_targets(["traj_hog"], batch)["traj_hog"]
    hog = hog_along_trajectories(frames, disp)  # (B, K, L, Gh, Gw, 3, 9)
    # Original VolumeHOG: "b (t t2) (h h2) (w w2) c -> b (t h w) (c t2 h2 w2)", c = rgb_channel * 9 + bin.
    grid = hog.flatten(-2).permute(0, 5, 1, 2, 3, 4).flatten(2, 3)
    original = _original_token_layout(grid, inner=steps)
    assert torch.equal(ours, original[..., original_head_rows("traj_hog", ours.shape[-1])])
