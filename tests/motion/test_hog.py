from __future__ import annotations

import math

import pytest
import torch

from mme.motion import hog as hog_module
from mme.motion.hog import hog_along_trajectories, hog_at_points, hog_cells, sobel_gradients


def edge_image(kind: str, size: int = 32) -> torch.Tensor:
    """(1, 3, size, size) step edge through the centre; 'vertical' has a horizontal gradient."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    if kind == "vertical":
        image = (xs >= size // 2).float()
    elif kind == "horizontal":
        image = (ys >= size // 2).float()
    else:  # "diagonal": bright below the anti-diagonal x + y = size - 1, gradient along (1, 1)
        image = (xs + ys >= size).float()
    return image.expand(1, 3, size, size).clone()


def bin_mass(image: torch.Tensor) -> torch.Tensor:
    """Total HOG mass per bin (9,), summed over channels and the interior cells.

    The outer ring of cells is left out: there the replicate padding bends gradients of edges
    that meet the image border.
    """
    return hog_cells(image)[..., 1:-1, 1:-1].sum(dim=(0, 1, 3, 4))


def test_vertical_edge_lands_in_bin_0():
    mass = bin_mass(edge_image("vertical"))
    assert mass[0] > 0
    torch.testing.assert_close(mass[1:], torch.zeros(8))


def test_horizontal_edge_splits_between_bins_4_and_5():
    # theta = pi/2 sits halfway between the centres of bins 4 (80 deg) and 5 (100 deg).
    mass = bin_mass(edge_image("horizontal"))
    torch.testing.assert_close(mass[4], mass[5])
    assert mass[4] > 0 and mass[[0, 1, 2, 3, 6, 7, 8]].sum() == 0


def test_diagonal_edge_interpolates_between_bins_2_and_3():
    # A 45 degree gradient: position 45 / 20 = 2.25 bins -> 0.75 to bin 2, 0.25 to bin 3.
    mass = bin_mass(edge_image("diagonal"))
    assert mass[2] > 0 and mass[[0, 1, 4, 5, 6, 7, 8]].sum() == 0
    torch.testing.assert_close(mass[2] / mass[3], torch.tensor(3.0), rtol=1e-3, atol=0)


def test_orientation_is_unsigned_and_bins_wrap_around():
    # A gradient at 175 degrees is 8.75 bins: 0.25 into bin 8 and 0.75 into bin 0 (wrapping).
    angle = math.radians(175.0)
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    ramp = (xs * math.cos(angle) + ys * math.sin(angle)).expand(1, 1, 24, 24)
    mass = hog_cells(ramp)[0, 0, :, 1, 1]  # an interior cell: exact ramp gradient
    torch.testing.assert_close(mass[0] / mass[8], torch.tensor(3.0), rtol=1e-4, atol=0)
    torch.testing.assert_close(hog_cells(-ramp), hog_cells(ramp))  # opposite gradient, same histogram


def test_rotating_an_image_180_degrees_rotates_the_cell_layout_only():
    image = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    rotated = torch.flip(image, dims=(-2, -1))
    expected = torch.flip(hog_cells(image), dims=(-2, -1))
    torch.testing.assert_close(hog_cells(rotated), expected, rtol=1e-5, atol=1e-5)


def test_batch_equals_per_sample_calls_and_chunking_changes_nothing(monkeypatch):
    images = torch.randn(5, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    batched = hog_cells(images)
    assert batched.shape == (5, 3, 9, 4, 5)
    single = torch.cat([hog_cells(image[None]) for image in images])
    torch.testing.assert_close(batched, single)
    monkeypatch.setattr(hog_module, "_MAX_VOTE_ELEMENTS", 1)  # one image per chunk
    torch.testing.assert_close(hog_cells(images), batched)


def test_hog_is_the_mean_of_magnitude_votes_per_cell():
    image = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    gx, gy = sobel_gradients(image)
    magnitude = torch.sqrt(gx**2 + gy**2)
    cells = hog_cells(image)[0, 0]  # (9, 2, 2)
    torch.testing.assert_close(cells.sum(dim=0), magnitude[0, 0].reshape(2, 8, 2, 8).mean(dim=(1, 3)))


def test_sobel_uses_replicate_padding():
    image = torch.arange(6.0).repeat(6, 1)[None, None]  # x ramp of slope 1
    gx, gy = sobel_gradients(image)
    assert torch.all(gy == 0)
    assert torch.all(gx[..., 1:-1] == 8.0)  # Sobel of a unit ramp: (1 + 2 + 1) * 2
    assert torch.all(gx[..., 0] == 4.0) and torch.all(gx[..., -1] == 4.0)  # replicated border: one-sided


def test_hog_scales_with_a_per_channel_affine_map():
    # Why the HOG of the normalised clip is the raw HOG rescaled per channel.
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    scale = torch.tensor([2.0, 0.5, 4.0]).view(1, 3, 1, 1)
    normalised = (image - 0.4) * scale
    torch.testing.assert_close(
        hog_cells(normalised), hog_cells(image) * scale[..., None], rtol=1e-4, atol=1e-5
    )


def test_hog_at_cell_centres_equals_the_cell_histograms():
    images = torch.rand(2, 3, 24, 32, generator=torch.Generator().manual_seed(4))
    ys = torch.arange(3) * 8 + 3.5
    xs = torch.arange(4) * 8 + 3.5
    centres = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(1, 12, 2).repeat(2, 1, 1)
    sampled = hog_at_points(images, centres)  # (2, 12, 3, 9)
    expected = hog_cells(images).permute(0, 3, 4, 1, 2).reshape(2, 12, 3, 9)
    torch.testing.assert_close(sampled, expected)


def test_hog_along_a_translated_trajectory_follows_the_content():
    # Frame t is frame 0 shifted right by 2t pixels; points moving with it see the same cells.
    base = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(5))
    frames = torch.stack([torch.roll(base, shifts=2 * t, dims=-1) for t in range(3)])[None]  # (1, 3, C, H, W)
    disp = torch.zeros(1, 2, 4, 6, 2)
    disp[..., 0] = 2.0
    along = hog_along_trajectories(frames, disp)  # (1, 2, 4, 6, 3, 9)
    start = hog_cells(base[None]).permute(0, 3, 4, 1, 2)[0]  # (4, 6, 3, 9)
    # Interior columns only (the roll wraps content around the left/right edges).
    torch.testing.assert_close(along[0, 1, :, 1:-1], start[:, 1:-1], rtol=1e-5, atol=1e-5)


def test_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        hog_cells(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="no 8x8 cell"):
        hog_cells(torch.zeros(1, 1, 4, 16))
    with pytest.raises(ValueError, match="do not match trajectories"):
        hog_along_trajectories(torch.zeros(1, 4, 3, 16, 16), torch.zeros(1, 4, 2, 2, 2))
