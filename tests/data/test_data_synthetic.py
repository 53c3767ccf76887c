"""The synthetic motion dataset: deterministic, class told by motion only, complete on disk."""

from __future__ import annotations

import json
from itertools import pairwise

import cv2
import numpy as np
import pytest

from mme.cli import main as cli_main
from mme.data.synthetic import MOTIONS, SynthConfig, generate_dataset, pose, render_video, sample_scene
from mme.errors import ConfigError, DataError
from mme.io.lists import read_list
from mme.io.video import open_video

TINY = {"classes": 2, "videos_per_class": 3, "frames": 12, "width": 64, "height": 48}


def test_render_is_deterministic_and_seeded():
    config = SynthConfig(**TINY)
    first = render_video(config, 4, 1)
    np.testing.assert_array_equal(first, render_video(config, 4, 1))
    assert first.shape == (12, 48, 64, 3) and first.dtype == np.uint8
    assert not np.array_equal(first, render_video(SynthConfig(**TINY, seed=1), 4, 1))
    assert not np.array_equal(first, render_video(config, 5, 1))


def test_middle_frame_is_the_same_for_every_class():
    """A scene's appearance does not depend on the class: at the middle frame all poses coincide."""
    config = SynthConfig(classes=10, frames=16, width=96, height=64)
    videos = [render_video(config, 7, label) for label in range(10)]
    for label in range(1, 10):
        np.testing.assert_array_equal(videos[label][8], videos[0][8])
        assert not np.array_equal(videos[label], videos[0])  # but the motion differs


def _nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out nearest-centroid accuracy on standardised features."""
    features = (features - features.mean(0)) / (features.std(0) + 1e-9)
    hits = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        centroids = np.stack([features[keep & (labels == c)].mean(0) for c in np.unique(labels)])
        hits += int(np.argmin(((centroids - features[i]) ** 2).sum(1)) == labels[i])
    return hits / len(labels)


def test_appearance_does_not_tell_the_class_but_motion_does():
    config = SynthConfig(classes=4, videos_per_class=16, frames=16, width=64, height=48)
    labels, looks, motion = [], [], []
    for index in range(config.classes * config.videos_per_class):
        label = index % config.classes
        video = render_video(config, index, label).astype(np.float32)
        labels.append(label)
        # Appearance: colour statistics of the first frame and of the whole clip.
        looks.append(np.concatenate([video[0].mean((0, 1)), video[0].std((0, 1)), video.mean((0, 1, 2))]))
        gray = [cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2GRAY) for frame in video]
        flow = np.stack(
            [cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 3, 5, 1.1, 0) for a, b in pairwise(gray)]
        )
        weight = np.linalg.norm(flow, axis=-1, keepdims=True)
        motion.append((flow * weight).sum((0, 1, 2)) / (weight.sum() + 1e-9))
    labels = np.array(labels)
    chance = 1 / config.classes
    assert _nearest_centroid_accuracy(np.stack(looks), labels) < chance + 0.2
    # Positive control: the four translation classes are told apart by the mean flow.
    assert _nearest_centroid_accuracy(np.stack(motion), labels) > 0.85


def test_generate_writes_lists_videos_and_description(tmp_path):
    config = SynthConfig(**TINY)
    description = generate_dataset(config, tmp_path / "a", workers=1)
    assert description["complete"] and description["videos"] == 6
    assert description["splits"] == {"train": 2, "val": 2, "test": 2}
    assert json.loads((tmp_path / "a" / "classes.json").read_text()) == list(MOTIONS)[:2]
    for split in ("train", "val", "test"):
        entries = read_list(tmp_path / "a" / f"{split}.csv")
        assert sorted(e.label for e in entries) == [0, 1]
        for entry in entries:
            with open_video(entry.path) as reader:
                assert (reader.num_frames, reader.width, reader.height) == (12, 64, 48)
    assert (tmp_path / "a" / "synth.jsonl").is_file() and (tmp_path / "a" / "synth.log").is_file()

    # Same seed with parallel workers: identical frames.
    generate_dataset(config, tmp_path / "b", workers=2)
    for entry in read_list(tmp_path / "a" / "train.csv"):
        twin = tmp_path / "b" / entry.path.relative_to(tmp_path / "a")
        with open_video(entry.path) as one, open_video(twin) as two:
            assert np.array_equal(np.stack(list(one.iter_frames())), np.stack(list(two.iter_frames())))
        # and the decoded video is the rendered one, up to compression
        rendered = render_video(config, int(entry.path.stem.split("_")[-1]) * 2 + entry.label, entry.label)
        with open_video(entry.path) as reader:
            decoded = reader.get_frames([6])[0].astype(float)
        errors = np.abs(decoded - rendered).mean(axis=(1, 2, 3))
        assert errors.argmin() == 6 and errors[6] < 8


def test_rerun_resumes_and_other_parameters_refuse(tmp_path):
    config = SynthConfig(**TINY)
    generate_dataset(config, tmp_path, workers=1)
    videos = sorted((tmp_path / "videos").rglob("*.mp4"))
    stamps = [path.stat().st_mtime_ns for path in videos]
    videos[0].unlink()  # as if interrupted before this one
    generate_dataset(config, tmp_path, workers=1)
    assert videos[0].is_file()
    assert [path.stat().st_mtime_ns for path in videos[1:]] == stamps[1:]
    with pytest.raises(DataError, match="other parameters"):
        generate_dataset(SynthConfig(**{**TINY, "seed": 3}), tmp_path, workers=1)


def test_bad_parameters():
    with pytest.raises(ConfigError, match="classes"):
        SynthConfig(classes=13)
    with pytest.raises(ConfigError, match="even"):
        SynthConfig(width=65)


def test_cli(tmp_path):
    arguments = ["--classes", "2", "--videos-per-class", "3", "--frames", "10", "--size", "64x48"]
    code = cli_main.main(["synth", "--out", str(tmp_path), *arguments, "--workers", "1"])
    assert code == 0
    assert json.loads((tmp_path / "dataset.json").read_text())["parameters"]["frames"] == 10
    assert len(read_list(tmp_path / "train.csv")) == 2


def _in_patch_spread(config: SynthConfig, index: int, kind: str, sign: float, t: float) -> float:
    """True motion of 2x2 points 8 px apart around the plane's fixed point, from frame t to t + 1:
    the std over the points (unbiased, as patch-std), root-mean-square over x and y, in px."""
    scene = sample_scene(config, index)
    shift0, matrix0 = pose(scene, kind, sign, t)
    shift1, matrix1 = pose(scene, kind, sign, t + 1)
    offsets = np.array([[-4.0, -4.0], [4.0, -4.0], [-4.0, 4.0], [4.0, 4.0]])
    # Image point centre + shift0 + o, one frame on (image = centre + matrix (plane - centre) + shift).
    moved = shift1 + offsets @ (matrix1 @ np.linalg.inv(matrix0)).T
    steps = moved - (shift0 + offsets)
    return float(np.sqrt((steps.std(axis=0, ddof=1) ** 2).mean()))


def test_motion_inside_a_patch_is_well_above_the_floor_and_translation_has_none():
    """Every kind but translation moves the points of a 16-px patch relative to each other by more
    than targets.traj_std_floor (0.15 px per step) at the demo's scale (72-px short side seen at
    64 px), at every frame of every scene; translation moves them rigidly."""
    config = SynthConfig(classes=12, frames=16, width=96, height=72)
    scale = 64 / 72
    for name, (kind, sign) in MOTIONS.items():
        spreads = [
            _in_patch_spread(config, index, kind, sign, t) * scale for index in range(40) for t in (-8, 0, 7)
        ]
        if kind.startswith("translate"):
            assert max(spreads) < 1e-9, name
        else:
            assert min(spreads) > 0.2, (name, min(spreads))
