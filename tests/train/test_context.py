"""Pre-training learns from the visible tokens: a context test of the whole pre-training system.

Tiny H.264 videos (written here, listed as ``mme synth`` lists them, read by the real loader with
online trajectories) in which each masked token's target is predictable from the visible tokens
while the dataset mean is a poor prediction. Each video is split into a top and a bottom half:

- ``hog`` + ``traj``: each half is a fine isotropic grey texture, one half of high contrast and
  the other of low contrast (HOG energy), turning rigidly about the half's own centre, the two
  halves in opposite directions (a rotation moves the 2x2 points of every patch alike relative to
  the patch, so every token of a half has the same patch-standardised trajectory; cw and ccw
  differ in sign). Each half also has a colour tint (opposite hues) that tells videos apart.
- ``pixel``: static grey stripes with a whole number of cycles per patch, so every patch of a half
  is the same; the other half shows the negative.

So every token of a half has the same expected target, the halves differ, and a clip's mean
target over all its tokens is the same in every clip. The public ``mme pretrain`` job with the
synthetic recipe as shipped (model, optimiser, lr schedule; only the data, the number of epochs
and the output change) must close most of the gap between the context-free floor (the loss of
the dataset-mean target, :mod:`mme.eval.target_floors`) and the minimum (the mean target of the same
half of the same video). A control run whose targets are permuted across the tokens of each clip
must stay at the floor: with the clip's mean target the dataset's, permuted targets leave
nothing to learn, so what the real run learns is token-level context.

Measured on the training videos with new clip starts and masks ("held-out masked tokens of the
same videos"): in ~100 steps the model learns to read, from the visible tokens, which of the four
videos it sees and which half of it a masked token is in; generalising to unseen videos takes
far more steps than a test can afford. Halves are top/bottom only: with left/right halves too,
nothing beyond the floor was learned in 80 steps (measured; plausibly because the 1-D sin-cos
position table cannot tell columns 0-1 from 2-3 of a 4-wide grid, a period of 4 tokens, while
rows 0-1 and 2-3 are a period of 16).

Measured: 68 s for the three tests on 2 CPU cores shared with other jobs (load average ~6), one
intra-op thread (the motion runs ~20-25 s each, the pixel run ~10 s).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from train_helpers import CONFIGS, run_mme

from mme.io.lists import write_list
from mme.io.video import write_video

WAVES = ((1, 0), (0, 1), (1, 1), (1, -1), (2, 1), (1, 2))  # stripe wave vectors, cycles per patch
SIZE = 64  # video side = the tiny recipe's input size: no resize, half borders stay patch-aligned
FRAMES = 20  # a clip spans 17 raw frames (8 frames at stride 2, plus 4 trajectory steps)
PATCH = 16
FINE = 2  # render at 2x and average, like a sensor: smooth sub-pixel motion
SPIN = 0.06  # rad / frame: points 8 px apart move ~0.28 px / step relative to each other
CONTRASTS = (20.0, 70.0)  # grey levels per unit of texture: the weak and the strong half
TINT = 60.0  # colour offset of each half (opposite hues): tells the videos and halves apart


# -- videos ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """What the two halves of one video show (half 0 is the top one).

    Motion videos: ``strong`` is the half whose texture has the high contrast, ``spin`` half 0's
    rotation in rad / frame (half 1 turns the other way), ``hue`` the strong half's tint (the
    other's is opposite). Stripe videos: ``wave`` (cycles per patch in x and y) and ``phase`` of
    half 0's stripes (half 1 shows the negative).
    """

    strong: int
    spin: float
    hue: float
    wave: tuple[int, int]
    phase: float


def half_of_tokens(tubelets: int, side: int = SIZE // PATCH) -> np.ndarray:
    """Half (0/1) of each token ``n = (k * Hp + i) * Wp + j``, shape (tubelets * side**2,)."""
    rows = np.repeat(np.arange(side), side)
    return np.tile(rows >= side // 2, tubelets).astype(np.int64)


def draw_layout(rng: np.random.Generator) -> Layout:
    return Layout(
        strong=int(rng.integers(2)),
        spin=SPIN * float(rng.choice([-1.0, 1.0])),
        hue=float(rng.uniform(0, 2 * math.pi)),
        wave=WAVES[int(rng.integers(len(WAVES)))],
        phase=float(rng.uniform(0, 2 * math.pi)),
    )


def _fine_grid() -> tuple[np.ndarray, np.ndarray]:
    """Output-pixel coordinates (x, y) of the FINE x FINE samples of every pixel."""
    ys, xs = np.mgrid[0 : SIZE * FINE, 0 : SIZE * FINE].astype(np.float32)
    return (xs + 0.5) / FINE - 0.5, (ys + 0.5) / FINE - 0.5


def _halves() -> list[tuple[np.ndarray, tuple[float, float]]]:
    """Per half (top, bottom): its fine-sample mask and its centre (x, y) in pixels."""
    _, ys = _fine_grid()
    second = ys >= SIZE / 2 - 0.5
    middle, low, high = (SIZE - 1) / 2, (SIZE / 2 - 1) / 2, SIZE * 3 / 4 - 0.5
    return [(~second, (middle, low)), (second, (middle, high))]


def render_motion(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Frames (FRAMES, SIZE, SIZE, 3) uint8: the two rotating, tinted textures."""
    xs, ys = _fine_grid()
    margin = SIZE  # the textures cover every point a half shows while it turns
    textures = []
    for _ in range(2):
        noise = rng.standard_normal((3 * SIZE * FINE, 3 * SIZE * FINE)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), 1.2 * FINE)
        textures.append(smooth / smooth.std())
    # Fine detail survives H.264's 4:2:0 chroma only as luma: the halves differ in grey contrast.
    contrasts = [CONTRASTS[half == layout.strong] for half in range(2)]
    hues = [layout.hue + math.pi * (half != layout.strong) for half in range(2)]
    frames = np.empty((FRAMES, SIZE, SIZE, 3), np.uint8)
    for t in range(FRAMES):
        fine = np.empty((SIZE * FINE, SIZE * FINE, 3), np.float32)
        for (inside, (cx, cy)), texture, contrast, hue, spin in zip(
            _halves(), textures, contrasts, hues, (layout.spin, -layout.spin), strict=True
        ):
            # Sample the texture where the point now at (x, y) was at frame 0: rotate back by spin*t.
            angle = -spin * t
            u = math.cos(angle) * (xs - cx) - math.sin(angle) * (ys - cy) + cx + margin
            v = math.sin(angle) * (xs - cx) + math.cos(angle) * (ys - cy) + cy + margin
            grey = cv2.remap(texture, u * FINE, v * FINE, cv2.INTER_LINEAR)
            tint = TINT * np.cos(hue + 2 * math.pi * np.arange(3) / 3)
            fine[inside] = 128.0 + tint + contrast * grey[inside, None]
        frames[t] = _to_pixels(fine)
    return frames


def render_stripes(layout: Layout) -> np.ndarray:
    """Frames (FRAMES, SIZE, SIZE, 3) uint8: static grey stripes of wave vector ``layout.wave``
    cycles per patch, so every patch of a half is the same; half 1 shows half 0's negative."""
    xs, ys = _fine_grid()
    a, b = layout.wave
    stripes = np.cos(2 * math.pi * (a * xs + b * ys) / PATCH + layout.phase)
    second = _halves()[1][0]
    fine = 128.0 + 90.0 * np.where(second, -stripes, stripes)
    frame = _to_pixels(np.repeat(fine[..., None], 3, axis=2).astype(np.float32))
    return np.repeat(frame[None], FRAMES, axis=0)


def _to_pixels(fine: np.ndarray) -> np.ndarray:
    pixels = cv2.resize(fine, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def write_context_videos(out: Path, content: str, videos: int, repeats: int, seed: int = 0) -> list[Layout]:
    """Write ``videos`` H.264 videos and ``train.csv`` (``mme synth``'s list format) listing each
    ``repeats`` times, so that one epoch is several steps; returns the layouts, by video."""
    layouts, entries = [], []
    for index in range(videos):
        rng = np.random.default_rng([seed, index])
        layout = draw_layout(rng)
        frames = render_motion(layout, rng) if content == "motion" else render_stripes(layout)
        relative = f"videos/{content}_{index}.mp4"
        write_video(out / relative, frames, crf=18, options={"threads": "1"})
        layouts.append(layout)
        entries.append((relative, 0))
    write_list(out / "train.csv", entries * repeats)
    return layouts


# -- measuring ------------------------------------------------------------------------------------
@dataclass
class Masked:
    """One target of the evaluation clips: per batch, the targets of all tokens and which of them
    are masked, each token's part (``2 * video + half``), and the model's predictions."""

    values: list[torch.Tensor]  # (B, N, C)
    weights: list[torch.Tensor]  # (B, N): trajectory validity, 1 for targets without one
    masks: list[torch.Tensor]  # (B, N) bool
    parts: list[torch.Tensor]  # (B, N) int
    predictions: list[torch.Tensor]  # (B, M, C)


def collect(run_dir: Path, layouts: list[Layout], samples: int, seed: int = 1) -> dict[str, Masked]:
    """Draw ``samples`` clips of the run's training list exactly as ``mme pretrain`` does (its
    crops, masks and online trajectories; seeded, so with other clip starts and masks than in
    training), and the predictions of the run's final model for their masked tokens."""
    from mme.data.datasets import PretrainDataset
    from mme.data.transforms import normalize_clip
    from mme.models import load_pretrain_model
    from mme.objectives import build_targets
    from mme.train.run_config import PretrainConfig, load_run_config

    config = load_run_config(PretrainConfig, run_dir / "config.yaml")
    model = load_pretrain_model(run_dir / "model").eval()
    traj = config.traj if config.data.trajectories != "none" else None
    dataset = PretrainDataset(config.data, traj)
    tubelets = config.data.num_frames // config.data.tubelet_size
    half = torch.as_tensor(half_of_tokens(tubelets))
    out = {name: Masked([], [], [], [], []) for name in config.predict}
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            np.random.seed(seed)
            draws = torch.utils.data.Subset(dataset, [i % len(dataset) for i in range(samples)])
            for batch in torch.utils.data.DataLoader(draws, batch_size=8, num_workers=0):
                clip = normalize_clip(batch["clip"])
                predictions = model(clip, batch["mask"])
                built = build_targets(config.predict, {**batch, "clip": clip}, config.target_config())
                video = batch["index"] % len(layouts)  # the list repeats the videos
                parts = 2 * video[:, None] + half
                for name, (values, weight) in built.items():
                    found = out[name]
                    found.values.append(values)
                    found.weights.append(torch.ones(parts.shape) if weight is None else weight)
                    found.masks.append(batch["mask"])
                    found.parts.append(parts)
                    found.predictions.append(predictions[name])
    finally:
        np.random.set_state(numpy_state)
    return out


def group_means(values: torch.Tensor, weight: torch.Tensor, groups: torch.Tensor, count: int) -> torch.Tensor:
    """(..., count, C): the weighted mean of ``values`` (..., N, C) over the tokens of each group
    (``groups`` (..., N) in [0, count)); NaN for a group without weight."""
    index = groups[..., None].expand(*groups.shape, values.shape[-1])
    sums = torch.zeros(*groups.shape[:-1], count, values.shape[-1]).scatter_add_(
        -2, index, values * weight[..., None]
    )
    totals = torch.zeros(*groups.shape[:-1], count).scatter_add_(-1, groups, weight)[..., None]
    return sums / totals


def losses(found: dict[str, Masked]) -> dict[str, dict[str, float]]:
    """Per target, the masked loss (``mme.objectives.masked_loss``, as in training) of

    - ``model``: the trained model;
    - ``floor``: the dataset-mean target, the context-free floor of :mod:`mme.eval.target_floors`;
    - ``clip``: each clip's own mean target over all its tokens: the best a model can learn from
      targets permuted across the tokens of each clip (the control);
    - ``visible``: an oracle that predicts each masked token with the mean target of the visible
      tokens of its half in its clip (the dataset mean where the mask hides that whole half);
    - ``minimum``: the mean target of all tokens of the same half of the same video, i.e. what a
      model that reads from the visible tokens which video and half a masked token is in can
      reach; what is left is noise of the target (texture, flow errors) within a half.

    and ``closed``, the part of the gap floor -> minimum the model closes.
    """
    from mme.objectives import masked_loss

    table = {}
    for name, f in found.items():
        values, weights, masks, parts = (torch.cat(x) for x in (f.values, f.weights, f.masks, f.parts))
        hidden = weights * masks
        floor = (values * hidden[..., None]).sum((0, 1)) / hidden.sum()
        count = int(parts.max()) + 1
        minimum = group_means(values.flatten(0, 1), hidden.flatten(), parts.flatten(), count)
        sums = dict.fromkeys(("model", "floor", "clip", "visible", "minimum"), 0.0)
        for values, weight, mask, part, prediction in zip(
            f.values, f.weights, f.masks, f.parts, f.predictions, strict=True
        ):
            in_clip = part - part.min(dim=1, keepdim=True).values  # the clip's two halves: 0, 1
            seen = group_means(values, weight * ~mask, in_clip, 2)
            seen = torch.where(seen.isnan(), floor, seen)
            whole = weight[..., None]
            clip_mean = (values * whole).sum(1, keepdim=True) / whole.sum(1, keepdim=True)
            guesses = {
                "model": prediction,
                "floor": floor.expand_as(prediction),
                "clip": clip_mean.expand_as(values),
                "visible": seen.gather(1, in_clip[..., None].expand_as(values)),
                "minimum": minimum[part],
            }
            for kind, guess in guesses.items():
                masked = guess if guess.shape == prediction.shape else guess[mask].reshape(prediction.shape)
                sums[kind] += float(masked_loss({name: masked}, {name: (values, weight)}, mask)[1][name])
        row = {kind: total / len(f.values) for kind, total in sums.items()}
        row["closed"] = (row["floor"] - row["model"]) / (row["floor"] - row["minimum"])
        table[name] = row
    return table


# -- the runs -------------------------------------------------------------------------------------
VIDEOS = 4
REPEATS = 8  # the list names each video 8 times: 4 steps of 8 clips per epoch
MOTION_EPOCHS = 30  # 120 steps
PIXEL_EPOCHS = 20  # 80 steps
SAMPLES = 64  # evaluation clips
CLOSED = 0.6  # the part of the gap floor -> minimum a trained model must close
CONTROL = 0.1  # how far from the floor the shuffled control may get, relative to the floor


def pretrain(data: Path, out: Path, epochs: int, *extra: str) -> Path:
    """``mme pretrain`` with the synthetic recipe as shipped; only data, length and output change.

    ``data.scales=[1.0]``: no multi-scale crop, so the halves stay patch-aligned and each token's
    half is known (the oracle needs it); the videos are already the input size.
    """
    sets = [
        f"data.train_list={data / 'train.csv'}",
        "data.scales=[1.0]",
        f"schedule.epochs={epochs}",
        f"runtime.output_dir={out}",
        "runtime.workers=0",
        "runtime.device=cpu",
        "runtime.tensorboard=false",
        "runtime.log_every=20",
        "runtime.checkpoint_every_epochs=1000",  # only the final checkpoint
        *extra,
    ]
    args = ["pretrain", "--config", str(CONFIGS / "synthetic" / "pretrain.yaml")]
    assert run_mme([*args, *(arg for item in sets for arg in ("--set", item))]) == 0
    return out


def permuted_targets(build: Callable, seed: int = 0) -> Callable:
    """``build_targets`` whose targets are permuted across the tokens of each clip, one fresh
    permutation per clip and step from a generator seeded once (the same for every target)."""
    generator = torch.Generator().manual_seed(seed)

    def shuffled(names, batch, config):
        built = build(names, batch, config)
        order = torch.rand(batch["mask"].shape, generator=generator).argsort(dim=1)
        shuffled.calls += 1
        return {
            name: (
                values.gather(1, order[..., None].expand_as(values)),
                None if weight is None else weight.gather(1, order),
            )
            for name, (values, weight) in built.items()
        }

    shuffled.calls = 0
    return shuffled


def describe(table: dict[str, dict[str, float]]) -> str:
    return "; ".join(
        f"{name}: " + ", ".join(f"{kind}={value:.3f}" for kind, value in row.items())
        for name, row in table.items()
    )


def check_design(table: dict[str, dict[str, float]]) -> None:
    """The videos are what the test needs: the dataset mean is a poor prediction (the minimum is
    well below the floor), and a clip's own mean target is no better than the dataset's."""
    for name, row in table.items():
        assert row["minimum"] < 0.7 * row["floor"], (
            f"{name}: the context does not tell much: {describe(table)}"
        )
        assert row["clip"] > (1 - CONTROL / 2) * row["floor"], (
            f"{name}: the clip's mean target tells something, the control could learn it: {describe(table)}"
        )


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One intra-op thread for the runs and the evaluation: on a busy machine two threads on two
    cores make a step many times slower (mme.train.distributed.cpu_threads); here they timed out."""
    import mme.train.run

    monkeypatch.setattr(mme.train.run, "cpu_threads", lambda *args, **kwargs: 1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def motion_videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Layout]]:
    data = tmp_path_factory.mktemp("context_motion")
    return data, write_context_videos(data, "motion", VIDEOS, REPEATS)


def test_hog_and_traj_are_learned_from_the_visible_tokens(motion_videos, tmp_path: Path) -> None:
    data, layouts = motion_videos
    table = losses(collect(pretrain(data, tmp_path / "run", MOTION_EPOCHS), layouts, SAMPLES))
    check_design(table)
    for name in ("hog", "traj"):
        assert table[name]["closed"] >= CLOSED, describe(table)


def test_targets_permuted_within_clips_stay_at_the_floor(
    motion_videos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mme.tasks.pretrain

    data, layouts = motion_videos
    shuffled = permuted_targets(mme.tasks.pretrain.build_targets)
    monkeypatch.setattr(mme.tasks.pretrain, "build_targets", shuffled)
    run = pretrain(data, tmp_path / "run", MOTION_EPOCHS)
    assert shuffled.calls == MOTION_EPOCHS * VIDEOS * REPEATS // 8  # every step used the hook
    table = losses(collect(run, layouts, SAMPLES))  # measured against the true targets
    for name in ("hog", "traj"):
        assert abs(table[name]["model"] / table[name]["floor"] - 1) <= CONTROL, describe(table)


def test_pixels_are_learned_from_the_visible_tokens(tmp_path: Path) -> None:
    layouts = write_context_videos(tmp_path / "data", "stripes", VIDEOS, REPEATS)
    run = pretrain(
        tmp_path / "data", tmp_path / "run", PIXEL_EPOCHS, "predict=[pixel]", "data.trajectories=none"
    )
    table = losses(collect(run, layouts, SAMPLES))
    check_design(table)
    assert table["pixel"]["closed"] >= CLOSED, describe(table)
