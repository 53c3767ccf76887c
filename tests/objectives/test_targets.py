from __future__ import annotations

import pytest
import torch

from mme.errors import ConfigError
from mme.models.config import MMEPretrainConfig
from mme.motion.hog import hog_cells
from mme.objectives import (
    TARGETS,
    TargetConfig,
    TargetSettings,
    build_targets,
    get_target,
    grid_to_tokens,
    head_specs,
    target_dim,
)

B, T, H, W = 2, 4, 32, 48  # K = 2 tubelets, 2 x 3 patches -> N = 12 tokens
K, HP, WP, L = 2, 2, 3, 4


def make_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "clip": torch.randn(B, 3, T, H, W, generator=generator),
        "traj_disp": torch.randn(B, K, L, 2 * HP, 2 * WP, 2, generator=generator) * 5,
        "traj_valid": torch.ones(B, K, L, 2 * HP, 2 * WP, dtype=torch.bool),
        "traj_frames": torch.randn(B, K, L + 1, 3, H, W, generator=generator),
    }


def token(k: int, i: int, j: int) -> int:
    return (k * HP + i) * WP + j


def test_registry_dims_and_activations():
    assert {name: target_dim(name) for name in TARGETS} == {
        "hog": 108,
        "traj": 32,
        "traj_hog": 432,
        "pixel": 1536,
    }
    assert {name: spec.activation for name, spec in TARGETS.items()} == {
        "hog": "identity", "traj": "identity", "traj_hog": "identity", "pixel": "identity"
    }  # fmt: skip
    assert target_dim("traj", TargetConfig(traj_steps=6)) == 48
    with pytest.raises(ConfigError, match="unknown target 'flow'"):
        get_target("flow")


def test_head_widths_come_from_the_registry():
    assert head_specs(["traj", "pixel"], TargetConfig(traj_steps=6), {"traj": "tanh"}) == [
        {"name": "traj", "dim": 48, "activation": "tanh"},
        {"name": "pixel", "dim": 1536, "activation": "identity"},
    ]
    # the model's default heads are the registry's at the default settings
    defaults = [vars(head) for head in MMEPretrainConfig().heads]
    assert defaults == head_specs(["hog", "traj"])
    with pytest.raises(ConfigError, match="unknown target 'flow'"):
        head_specs(["flow"])


def test_target_config_is_the_settings_plus_their_geometry():
    settings = {"traj_norm", "traj_std_floor", "hog_cell", "hog_bins", "eps"}
    geometry = {"patch_size", "tubelet_size", "traj_steps", "traj_stride", "max_displacement"}
    assert set(vars(TargetSettings())) == settings
    assert set(vars(TargetConfig())) == settings | geometry
    with pytest.raises(ConfigError, match="hog_cell=6 must divide patch_size=16"):
        TargetConfig(hog_cell=6)


def test_grid_to_tokens_follows_the_token_order_and_row_major_points():
    grid_h, grid_w = 2 * HP, 2 * WP
    ks, ys, xs = torch.meshgrid(torch.arange(K), torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    grid = torch.stack([ks, ys, xs], dim=-1)[None]  # (1, K, Gh, Gw, 3)
    tokens = grid_to_tokens(grid, 2)  # (1, N, 4, 3)
    assert tokens.shape == (1, K * HP * WP, 4, 3)
    for k, i, j in [(0, 0, 0), (1, 1, 2), (0, 1, 1)]:
        for p, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            assert tokens[0, token(k, i, j), p].tolist() == [k, 2 * i + row, 2 * j + col]


def test_traj_layout_is_coordinate_step_point():
    batch = make_batch()
    values, weight = build_targets(["traj"], batch, TargetConfig(traj_norm="none"))["traj"]
    assert values.shape == (B, 12, 32) and weight.shape == (B, 12)
    disp = batch["traj_disp"].clamp(-20, 20)
    k, i, j = 1, 1, 2
    for c in range(2):
        for t in range(L):
            for p, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
                expected = disp[1, k, t, 2 * i + row, 2 * j + col, c] / 20
                torch.testing.assert_close(values[1, token(k, i, j), c * L * 4 + t * 4 + p], expected)


def test_displacements_are_clamped_to_twenty_pixels():
    batch = make_batch()
    batch["traj_disp"] = torch.full_like(batch["traj_disp"], 35.0)
    batch["traj_disp"][..., 1] = -80.0
    values, _ = build_targets(["traj"], batch, TargetConfig(traj_norm="none"))["traj"]
    assert torch.all(values[..., :16] == 1.0) and torch.all(values[..., 16:] == -1.0)


def test_patch_std_of_a_pure_translation_is_zero():
    batch = make_batch()
    # Each token's 4 points share one displacement per step (a translation, different per token).
    per_token = torch.randn(B, K, L, HP, 1, WP, 1, 2, generator=torch.Generator().manual_seed(1)) * 6
    batch["traj_disp"] = per_token.expand(B, K, L, HP, 2, WP, 2, 2).reshape(B, K, L, 2 * HP, 2 * WP, 2)
    values, _ = build_targets(["traj"], batch)["traj"]
    assert torch.all(values == 0)


def test_patch_std_standardises_each_coordinate_and_step_over_the_four_points():
    values, _ = build_targets(["traj"], make_batch())["traj"]
    groups = values.reshape(B, 12, 2, L, 4)
    torch.testing.assert_close(groups.mean(-1), torch.zeros(B, 12, 2, L), atol=1e-5, rtol=0)
    torch.testing.assert_close(groups.std(-1, unbiased=True), torch.ones(B, 12, 2, L), atol=1e-4, rtol=0)


def test_token_weight_needs_one_point_valid_at_the_last_step():
    batch = make_batch()
    valid = batch["traj_valid"]
    valid[0, 0, :, 0:2, 0:2] = False  # token (0, 0, 0) of sample 0: every point invalid
    valid[0, 0, 2:, 0:2, 2:4] = False  # token (0, 0, 1): all points die at step 3 -> weight 0
    valid[0, 1, 3:, 2:4, 4:6] = False
    valid[0, 1, 3, 3, 5] = True  # token (1, 1, 2): one point survives -> weight 1
    _, weight = build_targets(["traj"], batch)["traj"]
    assert weight[0, token(0, 0, 0)] == 0 and weight[0, token(0, 0, 1)] == 0
    assert weight[0, token(1, 1, 2)] == 1 and weight[1].sum() == 12


def test_hog_target_is_the_cells_of_each_tubelets_second_frame():
    batch = make_batch()
    values, weight = build_targets(["hog"], batch)["hog"]
    assert values.shape == (B, 12, 108) and weight is None
    k, i, j = 1, 0, 2
    cells = hog_cells(batch["clip"][:, :, 2 * k + 1])  # (B, 3, 9, 4, 6)
    for p, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for c in range(3):
            torch.testing.assert_close(
                values[:, token(k, i, j), p * 27 + c * 9 : p * 27 + c * 9 + 9],
                cells[:, c, :, 2 * i + row, 2 * j + col],
            )


def test_pixel_target_layout_and_per_patch_normalisation():
    batch = make_batch()
    values, _ = build_targets(["pixel"], batch)["pixel"]
    assert values.shape == (B, 12, 1536)
    per_channel = values.reshape(B, 12, 512, 3)
    torch.testing.assert_close(per_channel.mean(2), torch.zeros(B, 12, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(2, unbiased=True), torch.ones(B, 12, 3), atol=1e-4, rtol=0)
    # pixel (dt, dy, dx), channel c of token (k, i, j) sits at ((dt*16 + dy)*16 + dx)*3 + c
    k, i, j, dt, dy, dx, c = 1, 1, 0, 1, 5, 9, 2
    patch = batch["clip"][0, c, 2 * k : 2 * k + 2, 16 * i : 16 * i + 16, 16 * j : 16 * j + 16]
    expected = (patch[dt, dy, dx] - patch.mean()) / (patch.std(unbiased=True) + 1e-6)
    torch.testing.assert_close(values[0, token(k, i, j), ((dt * 16 + dy) * 16 + dx) * 3 + c], expected)


def test_pixel_target_ignores_a_per_channel_affine_normalisation():
    batch = make_batch()
    raw = build_targets(["pixel"], batch)["pixel"][0]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
    batch["clip"] = (batch["clip"] - mean) / std
    torch.testing.assert_close(build_targets(["pixel"], batch)["pixel"][0], raw, atol=1e-4, rtol=1e-4)


def test_traj_hog_of_still_points_is_the_hog_of_each_step_frame_and_zero_when_invalid():
    batch = make_batch()
    batch["traj_disp"] = torch.zeros_like(batch["traj_disp"])
    batch["traj_valid"][1, 0, 2:, 0, 0] = False  # point p=0 of token (0,0,0) in sample 1 leaves at step 3
    values, weight = build_targets(["traj_hog"], batch)["traj_hog"]
    assert values.shape == (B, 12, 432)
    k, i, j, t = 1, 1, 1, 2  # step t=2 looks at frame r_k + 3
    cells = hog_cells(batch["traj_frames"][:, k, t + 1])  # (B, 3, 9, 4, 6)
    for p, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        start = (t * 4 + p) * 27
        expected = cells[:, :, :, 2 * i + row, 2 * j + col].reshape(B, 27)
        torch.testing.assert_close(
            values[:, token(k, i, j), start : start + 27], expected, atol=1e-5, rtol=1e-5
        )
    assert torch.all(values[1, token(0, 0, 0), (2 * 4 + 0) * 27 : (2 * 4 + 1) * 27] == 0)
    assert weight[1, token(0, 0, 0)] == 1  # three points remain valid


def test_missing_inputs_and_bad_shapes_are_named():
    batch = make_batch()
    del batch["traj_frames"]
    with pytest.raises(ConfigError, match=r"'traj_hog' needs batch\['traj_frames'\]"):
        build_targets(["traj_hog"], batch)
    batch["traj_disp"] = batch["traj_disp"][:, :, :3]
    with pytest.raises(ValueError, match="do not fit the clip"):
        build_targets(["traj"], batch)
    with pytest.raises(ConfigError, match="traj_norm"):
        TargetConfig(traj_norm="zscore")
    with pytest.raises(ConfigError, match="must divide"):
        TargetConfig(traj_stride=6)


def test_targets_carry_no_gradient():
    batch = make_batch()
    batch["clip"].requires_grad_(True)
    values, _ = build_targets(["hog", "pixel"], batch)["pixel"]
    assert not values.requires_grad
