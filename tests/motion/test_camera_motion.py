"""Camera-motion compensation (traj.camera_motion = homography): accuracy on a known pan with an
object moving on its own, counted fallbacks on bad input, the trajectory file's header, extraction,
the loaders' per-sample counts and the pre-training log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mme.cli.main import main as mme_main
from mme.errors import ConfigError, DataError
from mme.io.video import write_video
from mme.motion import (
    TrajectoryConfig,
    clip_trajectories,
    create_flow,
    dense_clip_trajectories,
    track_tubelets,
)
from mme.motion.camera import CameraStats, estimate_homography, pair_flow, plausible_homography
from mme.motion.extract import ExtractSettings, extract_video, run_extraction
from mme.motion.flow import to_gray
from mme.motion.known_motion import (
    Motion,
    MovingSquare,
    camera_residuals,
    render_frames,
    render_layered,
    true_positions,
)
from mme.motion.store import read_trajectories, read_trajectory_meta
from mme.motion.tracking import grid_seeds

SIZE = 128
INDEX = np.array([[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]])  # two grids, seeded in frames 0 and 4
PAN = Motion("pan", dx=2.5, dy=-1.5)  # the camera: the whole background translates
OWN = (-1.5, 1.0)  # the square's own motion, relative to the background, px/frame
SQUARE = MovingSquare(Motion("square", dx=PAN.dx + OWN[0], dy=PAN.dy + OWN[1]), (51.0, 58.0), 48.0)
ZOOM = Motion("zoom", dx=1.0, zoom=1.02)  # a camera motion that is no translation
ZOOM_SQUARE = MovingSquare(Motion("square", dx=2.0, dy=1.0, zoom=1.02), (51.0, 58.0), 48.0)


@pytest.fixture(scope="module")
def scenes() -> dict[str, tuple[Motion, MovingSquare, np.ndarray]]:
    return {
        "pan": (PAN, SQUARE, render_layered(PAN, SQUARE, 9, SIZE, SIZE, seed=7)),
        "zoom": (ZOOM, ZOOM_SQUARE, render_layered(ZOOM, ZOOM_SQUARE, 9, SIZE, SIZE, seed=7)),
    }


def track(frames: np.ndarray, flow: str, camera_motion: str, stats: CameraStats | None = None):
    config = TrajectoryConfig(flow=flow, camera_motion=camera_motion)
    return track_tubelets(to_gray(frames), INDEX, config, create_flow(flow), stats)


def endpoint_errors(
    disp: np.ndarray, camera: Motion, square: MovingSquare, relative: bool
) -> dict[str, np.ndarray]:
    """4-step endpoint errors (px) of background and square points against the exact motion:
    relative to the camera when ``relative``, else the image motion.

    Background points count when their whole true path stays 12 px away from the square (the
    square covers what it moves over) and 12 px inside the frame; square points 6 px inside it."""
    seeds = grid_seeds(SIZE, SIZE, 8).astype(np.float64)
    errors: dict[str, list[np.ndarray]] = {"background": [], "square": []}
    for k, start in enumerate(INDEX[:, 0]):
        for layer, motion in (("background", camera), ("square", square.motion)):
            path = true_positions(motion, seeds, int(start), 4, SIZE, SIZE)
            keep = ((path >= 12) & (path <= SIZE - 13)).all(axis=(0, -1))
            if layer == "background":
                near = [square.contains(path[t], int(start) + t, SIZE, SIZE, margin=-12) for t in range(5)]
                keep &= ~np.any(near, axis=0)
            else:
                keep &= square.contains(path[0], int(start), SIZE, SIZE, margin=6)
            truth = (
                camera_residuals(camera, path, int(start), SIZE, SIZE) if relative else np.diff(path, axis=0)
            )
            errors[layer].append(np.linalg.norm((disp[k] - truth).sum(axis=0), axis=-1)[keep])
    return {layer: np.concatenate(values) for layer, values in errors.items()}


# --- the known-motion scene itself ---


def test_the_layered_scene_is_the_background_outside_the_square():
    back = render_frames(PAN, 3, 64, 64, seed=3)
    square = MovingSquare(Motion("s", dx=1.0), (30.0, 30.0), 20.0)
    layered = render_layered(PAN, square, 3, 64, 64, seed=3)
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float64)
    for t in range(3):
        # pixels whose whole area is 1 px or more from the square are pure background
        away = ~square.contains(np.stack([xs, ys], axis=-1), t, 64, 64, margin=-1.0)
        np.testing.assert_array_equal(layered[t][away], back[t][away])
        assert np.abs(layered[t][~away].astype(int) - back[t][~away]).mean() > 10  # another texture


def test_camera_residuals_are_zero_on_the_background_and_the_own_motion_on_the_square():
    points = np.array([[20.0, 30.0], [60.0, 50.0]])
    rotate = Motion("rotate", dx=1.0, angle=math.radians(2.0))
    background = true_positions(rotate, points, 2, 3, 96, 96)
    np.testing.assert_allclose(camera_residuals(rotate, background, 2, 96, 96), 0.0, atol=1e-9)
    square = true_positions(SQUARE.motion, points, 2, 3, 96, 96)
    np.testing.assert_allclose(camera_residuals(PAN, square, 2, 96, 96), np.broadcast_to(OWN, (3, 2, 2)))


# --- accuracy ---


@pytest.mark.parametrize("scene", ["pan", "zoom"])
def test_compensation_stills_the_background_and_keeps_the_squares_own_motion(scenes, scene):
    camera, square, frames = scenes[scene]
    stats = CameraStats()
    disp, valid = track(frames, "dis_fine", "homography", stats)
    assert (stats.pairs, stats.fallbacks) == (8, 0)
    errors = endpoint_errors(disp, camera, square, relative=True)
    assert len(errors["background"]) > 60 and len(errors["square"]) > 30
    # The background is still: 4 steps within 0.3 px of zero (measured: at most 0.19 px over
    # pans, a zoom, a fast pan, two textures and 128/224 px frames; docs/motion.md).
    assert errors["background"].max() <= 0.3
    # The square keeps its own motion. Uncompensated dis_fine measures it to 0.05-0.08 px
    # (median); compensation adds the homography's error where the square hides the background
    # and the bilinear warp's blur: measured at most 0.15 px median, 0.55 px worst point.
    uncompensated = endpoint_errors(track(frames, "dis_fine", "none")[0], camera, square, relative=False)
    assert np.median(errors["square"]) <= np.median(uncompensated["square"]) + 0.15
    assert np.median(errors["square"]) <= 0.2 and errors["square"].max() <= 0.6
    assert valid[:, -1].mean() > 0.8


def test_without_compensation_the_background_moves_with_the_pan(scenes):
    camera, square, frames = scenes["pan"]
    disp, _ = track(frames, "dis_fine", "none")
    errors = endpoint_errors(disp, camera, square, relative=False)
    assert errors["background"].max() <= 0.3  # it follows the pan, 4 x (2.5, -1.5) px ...
    stilled = endpoint_errors(disp, camera, square, relative=True)["background"]
    assert stilled.min() > 11.0  # ... so it is nowhere near "still"


def test_online_default_flow_is_stilled_too(scenes):
    # The online path's flow is coarser (its object error is the flow's, compensated or not).
    camera, square, frames = scenes["pan"]
    stats = CameraStats()
    disp, _ = clip_trajectories(frames[INDEX], TrajectoryConfig(camera_motion="homography"), stats)
    errors = endpoint_errors(disp.numpy(), camera, square, relative=True)
    assert np.median(errors["background"]) <= 0.1 and errors["background"].max() <= 0.3
    assert stats.pairs == 8 and stats.fallbacks == 0


# --- bad input: counted fallbacks or clear errors ---


def test_blank_frames_fall_back_to_plain_flow_and_are_counted(scenes):
    frames = scenes["pan"][2].copy()
    frames[2] = 128  # a blank frame: no corners in it, nothing to follow into it
    stats = CameraStats()
    track(frames, "dis_ultrafast", "homography", stats)
    assert (stats.pairs, stats.fallbacks, stats.fallback_pairs) == (8, 2, [1, 2])
    assert stats.reasons == {"too_few_matches": 1, "too_few_corners": 1}
    assert stats.summary() == "2 of 8 frame pairs fell back (too_few_corners: 1, too_few_matches: 1)"
    # A clip of blank frames only: every pair falls back, to exactly the uncompensated result.
    blank = np.full((9, 96, 96, 3), 77, np.uint8)
    stats = CameraStats()
    compensated = track(blank, "dis_ultrafast", "homography", stats)
    assert (stats.pairs, stats.fallbacks) == (8, 8)
    for got, expected in zip(compensated, track(blank, "dis_ultrafast", "none"), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_frames_smaller_than_the_fit_needs_fall_back_and_are_counted(scenes):
    tiny = scenes["pan"][2][:, :40, :48]
    stats = CameraStats()
    compensated = track(tiny, "dis_ultrafast", "homography", stats)
    assert stats.reasons == {"frame_too_small": 8}
    for got, expected in zip(compensated, track(tiny, "dis_ultrafast", "none"), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_clip_of_one_frame_has_no_pair_to_fit():
    # A video shorter than a clip is padded by repeating its last frame: here, the only one.
    frame = render_frames(PAN, 1, 96, 96, seed=1)
    stats = CameraStats()
    config = TrajectoryConfig(camera_motion="homography")
    disp, valid = dense_clip_trajectories(frame, np.zeros((2, 5), np.int64), config, stats)
    assert stats.pairs == 0  # a frame against itself is exactly still: no flow, no fit
    assert not disp.any() and bool(valid.all())


class _NaNFlow:
    """A backend whose flow is NaN on the first ``bad_calls`` calls, then zero."""

    name = "nan_flow"

    def __init__(self, bad_calls: int) -> None:
        self.calls, self.bad_calls = 0, bad_calls

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        self.calls += 1
        value = np.nan if self.calls <= self.bad_calls else 0.0
        return np.full((*prev.shape, 2), value, np.float32)


def test_nan_in_the_residual_flow_falls_back_and_nan_in_the_plain_flow_is_an_error(scenes):
    gray = to_gray(scenes["pan"][2][:2])
    stats = CameraStats()
    flow, homography = pair_flow(_NaNFlow(bad_calls=1), gray[0], gray[1], "homography", stats, first_frame=5)
    assert homography is None and not flow.any()  # the plain flow of the pair
    assert (stats.fallbacks, stats.reasons, stats.fallback_pairs) == (1, {"nonfinite_flow": 1}, [5])
    for camera_motion in ("homography", "none"):
        with pytest.raises(
            DataError, match="'nan_flow' gave non-finite values for the frame pair starting at frame 5"
        ):
            pair_flow(_NaNFlow(bad_calls=2), gray[0], gray[1], camera_motion, CameraStats(), first_frame=5)


@pytest.mark.parametrize(
    ("homography", "accepted"),
    [(np.eye(3), True), ([[1.01, 0.01, 2.5], [-0.01, 1.01, -1.5], [1e-5, 0, 1]], True),
     ([[-1, 0, 99], [0, 1, 0], [0, 0, 1]], False),  # mirrored
     ([[3, 0, 0], [0, 3, 0], [0, 0, 1]], False),  # 9x the area between two frames
     ([[1, 0, 0], [0, 1, 0], [-0.02, 0, 1]], False),  # a corner maps through infinity
     ([[1, 0, 0], [0, 1, 0], [np.nan, 0, 1]], False)],
)  # fmt: skip
def test_implausible_homographies_are_rejected(homography, accepted):
    fitted, reason = plausible_homography(np.asarray(homography, np.float64), 100, 80)
    assert (fitted is not None, reason) == (accepted, None if accepted else "degenerate_homography")


def test_an_unrelated_next_frame_is_no_fit():
    frames = to_gray(render_frames(PAN, 2, 96, 96, seed=1))
    noise = np.random.default_rng(0).integers(0, 256, (96, 96), dtype=np.uint8)
    assert estimate_homography(frames[0], noise) == (None, "too_few_matches")


def test_unknown_camera_motion_is_a_config_error():
    with pytest.raises(ConfigError, match=r"traj\.camera_motion: unknown value 'affine'"):
        TrajectoryConfig(camera_motion="affine")


# --- trajectory files ---


def _as_version_1(path: Path) -> None:
    """Rewrite a trajectory file as version 1 wrote it: no camera fields, format_version 1."""
    data = path.read_bytes()
    length = int.from_bytes(data[8:12], "little")
    header = json.loads(data[12 : 12 + length])
    blocks = data[12 + length :]
    del header["camera_motion"], header["camera_fallbacks"]
    header["format_version"] = 1
    encoded = b""
    for _ in range(8):  # offsets depend on the header's length: iterate to the fixpoint
        offset = 12 + len(encoded)
        for entry in header["blocks"]:
            entry[0], offset = offset, offset + entry[1]
        header["file_size"] = offset
        new = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if new == encoded:
            break
        encoded = new
    path.write_bytes(data[:8] + len(encoded).to_bytes(4, "little") + encoded + blocks)


def _rewrite_header(path: Path, **changes) -> None:
    """Change header fields of the same serialised length in place (for corrupt-header tests)."""
    data = path.read_bytes()
    length = int.from_bytes(data[8:12], "little")
    header = json.loads(data[12 : 12 + length])
    header.update(changes)
    header = {key: value for key, value in header.items() if value is not ...}
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(data[:8] + len(encoded).to_bytes(4, "little") + encoded + data[12 + length :])


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """A panning video, one with a blank frame in the middle, one of a single frame, and a list."""
    root = tmp_path_factory.mktemp("camera_videos")
    pan = render_layered(PAN, SQUARE, 10, 96, 128, seed=2)
    write_video(root / "pan.mp4", pan)
    blanked = pan.copy()
    blanked[4] = 128
    write_video(root / "blank_frame.mp4", blanked)
    write_video(root / "one_frame.mp4", pan[:1])
    (root / "list.csv").write_text("pan.mp4 0\nblank_frame.mp4 1\none_frame.mp4 0\n")
    return {"root": root, "list": root / "list.csv"}


HOMOGRAPHY = ExtractSettings(flow="dis_ultrafast", camera_motion="homography")
NONE = ExtractSettings(flow="dis_ultrafast")


def test_extraction_stores_camera_motion_and_counts_fallbacks(tmp_path, videos):
    summary = run_extraction(videos["list"], tmp_path, root=videos["root"], settings=HOMOGRAPHY)
    assert (summary.extracted, summary.failed) == (3, 0)
    # 9 + 9 + 0 pairs; the pairs into and out of the blank frame 4 fell back
    assert (summary.camera_pairs, summary.camera_fallbacks) == (18, 2)
    meta = read_trajectory_meta(tmp_path / "blank_frame.mp4.traj")
    assert (meta.camera_motion, meta.camera_fallbacks, meta.format_version) == ("homography", [3, 4], 2)
    assert read_trajectory_meta(tmp_path / "pan.mp4.traj").camera_fallbacks == []
    events = [json.loads(line) for line in (tmp_path / "extract.jsonl").read_text().splitlines()]
    assert (events[-1]["camera_pairs"], events[-1]["camera_fallbacks"]) == (18, 2)
    log = (tmp_path / "extract.log").read_text()
    # (which reason depends on the codec's noise in the blank frame: a few corners, no good fit)
    assert "blank_frame.mp4: 2 of 9 frame pairs fell back (too_few_" in log
    assert "camera motion: 2 of 18 frame pairs fell back to uncompensated flow" in log
    # The pan is gone from the background (codec noise included), not from the plain flow.
    disp, valid, _ = read_trajectories(tmp_path / "pan.mp4.traj")
    plain, _, _ = read_trajectories(_extract(videos["root"] / "pan.mp4", tmp_path / "plain.traj", NONE))
    background = valid & (np.abs(plain - (PAN.dx, PAN.dy)).max(axis=-1) < 0.5)
    assert background[:5].sum() > 200
    assert np.median(np.abs(disp[background])) < 0.2 and np.median(np.abs(plain[background])) > 1.4
    # A one-frame video: a file whose only trajectory has no valid step, and no pair to count.
    one_disp, one_valid, one_meta = read_trajectories(tmp_path / "one_frame.mp4.traj")
    assert one_meta.num_frames == 1 and not one_valid.any() and not one_disp.any()


def _extract(video: Path, out: Path, settings: ExtractSettings) -> Path:
    extract_video(video, out, settings)
    return out


def test_rerun_skips_only_files_of_the_same_camera_motion(tmp_path, videos):
    run_extraction(videos["list"], tmp_path, root=videos["root"], settings=HOMOGRAPHY)
    assert run_extraction(videos["list"], tmp_path, root=videos["root"], settings=HOMOGRAPHY).skipped == 3
    again = run_extraction(videos["list"], tmp_path, root=videos["root"], settings=NONE)
    assert (again.skipped, again.extracted) == (0, 3)
    assert read_trajectory_meta(tmp_path / "pan.mp4.traj").camera_motion == "none"


def test_version_1_files_read_as_camera_motion_none_and_count_as_done(tmp_path, videos):
    run_extraction(videos["list"], tmp_path, root=videos["root"], settings=NONE)
    path = tmp_path / "pan.mp4.traj"
    disp, valid, _ = read_trajectories(path)
    for file in tmp_path.glob("*.traj"):
        _as_version_1(file)
    old_disp, old_valid, meta = read_trajectories(path)
    assert (meta.format_version, meta.camera_motion, meta.camera_fallbacks) == (1, "none", [])
    np.testing.assert_array_equal(old_disp, disp)
    np.testing.assert_array_equal(old_valid, valid)
    # Same content as a version-2 file with camera_motion none: not extracted again ...
    assert (
        run_extraction(videos["list"], tmp_path, root=videos["root"], settings=NONE, verify=True).skipped == 3
    )
    # ... but a homography run needs other content.
    assert run_extraction(videos["list"], tmp_path, root=videos["root"], settings=HOMOGRAPHY).extracted == 3


def test_bad_camera_headers_and_unknown_versions_are_refused(tmp_path, videos):
    path = _extract(videos["root"] / "pan.mp4", tmp_path / "a.traj", HOMOGRAPHY)
    original = path.read_bytes()
    cases = [
        ({"camera_motion": ...}, "a version-2 header without camera_motion"),
        ({"camera_motion": "affine"}, "unknown camera_motion 'affine'"),
        ({"format_version": 1}, "a version-1 header with version-2 fields"),
        ({"format_version": 3}, r"format version 3; mme reads \[1, 2\]"),
    ]
    for changes, message in cases:
        path.write_bytes(original)
        _rewrite_header(path, **changes)
        with pytest.raises(DataError, match=message):
            read_trajectories(path)


def test_the_cli_passes_camera_motion(tmp_path, videos):
    args = ["extract", "--list", str(videos["list"]), "--root", str(videos["root"]), "--out", str(tmp_path)]
    assert mme_main([*args, "--flow", "dis_ultrafast", "--camera-motion", "homography"]) == 0
    assert read_trajectory_meta(tmp_path / "pan.mp4.traj").camera_motion == "homography"
    assert mme_main([*args, "--camera-motion", "affine"]) == 1


# --- the data pipeline and pre-training ---


@pytest.fixture(scope="module")
def blank_list(tmp_path_factory) -> Path:
    """Two 12-frame blank videos (every frame pair falls back) and their list."""
    root = tmp_path_factory.mktemp("blank")
    for name in ("a.mp4", "b.mp4"):
        write_video(root / name, np.full((12, 48, 64, 3), 90, np.uint8))
    (root / "train.csv").write_text("a.mp4 0\nb.mp4 1\n")
    return root / "train.csv"


def _dataset(blank_list: Path, camera_motion: str, **data):
    from mme.data.config import PretrainDataConfig
    from mme.data.datasets import PretrainDataset

    fields = {
        "train_list": str(blank_list),
        "mask_ratio": 0.5,
        "num_frames": 4,
        "stride": 2,
        "input_size": 32,
    }
    config = PretrainDataConfig(**{**fields, **data})
    traj = TrajectoryConfig(flow="dis_ultrafast", camera_motion=camera_motion)
    return PretrainDataset(config, traj, bad_video_dir=blank_list.parent / "bad")


def test_online_samples_count_their_fallbacks(blank_list):
    np.random.seed(0)
    sample = _dataset(blank_list, "homography")[0]
    # 2 tubelets x 4 steps, no shared pair (stride 2): 8 pairs, all fallen back (32 px frames)
    assert sample["traj_camera_fallbacks"] == torch.tensor(8)
    assert "traj_camera_fallbacks" not in _dataset(blank_list, "none")[0]


def test_offline_files_must_match_the_runs_camera_motion(blank_list, tmp_path):
    root = blank_list.parent
    for settings in (HOMOGRAPHY, NONE):
        out = tmp_path / settings.camera_motion
        assert run_extraction(blank_list, out, root=root, settings=settings).exit_code == 0
    np.random.seed(0)
    offline = {"trajectories": "offline", "traj_root": str(tmp_path / "homography")}
    sample = _dataset(blank_list, "homography", **offline)[0]
    assert sample["traj_camera_fallbacks"] == torch.tensor(8)  # the file lists every pair
    with pytest.raises(
        DataError, match=r"extracted with camera_motion=homography, traj\.camera_motion is none"
    ):
        _dataset(blank_list, "none", **offline)[0]
    mismatch = {"trajectories": "offline", "traj_root": str(tmp_path / "none")}
    with pytest.raises(
        DataError, match=r"extracted with camera_motion=none, traj\.camera_motion is homography"
    ):
        _dataset(blank_list, "homography", **mismatch)[0]


def _pretrain_args(data: Path, out: Path, *sets: str) -> list[str]:
    configs = Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "pretrain.yaml"
    values = [
        "data.num_frames=4", "data.stride=2", "data.input_size=32", "runtime.workers=0",
        "runtime.tensorboard=false", "runtime.device=cpu", f"data.train_list={data}",
        "data.mask_ratio=0.5", "model.overrides.depth=2", "batch.per_gpu=2", "schedule.epochs=1",
        "schedule.warmup_epochs=0", "runtime.log_every=1", f"runtime.output_dir={out}", *sets,
    ]  # fmt: skip
    return ["pretrain", "--config", str(configs), *[arg for value in values for arg in ("--set", value)]]


def test_pretraining_logs_the_fallbacks_per_clip(blank_list, tmp_path):
    assert mme_main(_pretrain_args(blank_list, tmp_path / "run", "traj.camera_motion=homography")) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "pretrain.jsonl").read_text().splitlines()]
    train = [line for line in lines if line["kind"] == "train"]
    assert train and all(line["camera_fallbacks"] == 8.0 for line in train)


def test_traj_hog_with_camera_compensation_is_a_config_error(blank_list, tmp_path, capsys):
    args = _pretrain_args(
        blank_list, tmp_path / "run", "traj.camera_motion=homography", "predict=[hog,traj_hog]"
    )
    assert mme_main(args) == 1
    assert "predict=traj_hog needs the points' positions in the frames" in capsys.readouterr().err
