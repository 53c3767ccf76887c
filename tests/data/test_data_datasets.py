"""mme.data.datasets on real encoded videos: the sample contract, offline/online trajectories,
bad videos (replaced, counted across workers, fraction limit), classification views, loaders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mme.data.config import ClassificationDataConfig, PretrainDataConfig
from mme.data.datasets import (
    PretrainDataset,
    VideoClassificationDataset,
    collate_repeated,
    worker_init_fn,
)
from mme.data.synthetic import SynthConfig, generate_dataset
from mme.errors import ConfigError, DataError
from mme.io.lists import list_root, read_list, write_list
from mme.io.video import write_video
from mme.motion import TrajectoryConfig

SMALL = {"num_frames": 4, "stride": 2, "input_size": 32}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(
        SynthConfig(classes=2, videos_per_class=4, frames=24, width=64, height=48), out, workers=1
    )
    return out


def pretrain_config(synth: Path, **overrides) -> PretrainDataConfig:
    fields = {"train_list": str(synth / "train.csv"), "mask_ratio": 0.5, **SMALL, **overrides}
    return PretrainDataConfig(**fields)


def test_pretrain_sample_contract(synth, tmp_path):
    dataset = PretrainDataset(pretrain_config(synth), TrajectoryConfig(), bad_video_dir=tmp_path)
    assert len(dataset) == 4
    np.random.seed(0)
    sample = dataset[1]
    assert sample["clip"].dtype == torch.uint8 and sample["clip"].shape == (3, 4, 32, 32)
    assert sample["mask"].dtype == torch.bool and sample["mask"].shape == (8,)  # (2, 2, 2) tokens
    assert int(sample["mask"].sum()) == 4 and bool((sample["mask"][:4] == sample["mask"][4:]).all())
    assert sample["traj_disp"].dtype == torch.float32 and sample["traj_disp"].shape == (2, 4, 4, 4, 2)
    assert sample["traj_valid"].dtype == torch.bool and sample["traj_valid"].shape == (2, 4, 4, 4)
    assert sample["index"] == 1
    assert bool(sample["traj_valid"][:, 0].any())
    np.random.seed(0)
    again = dataset[1]
    assert all(torch.equal(sample[key], again[key]) for key in ("clip", "mask", "traj_disp", "traj_valid"))
    np.random.seed(1)
    assert not torch.equal(dataset[1]["clip"], sample["clip"])
    assert dataset.bad_video_count == 0


def test_pretrain_without_trajectories(synth, tmp_path):
    dataset = PretrainDataset(pretrain_config(synth, trajectories="none"), bad_video_dir=tmp_path)
    assert set(dataset[0]) == {"clip", "mask", "index"}


def test_offline_trajectories_and_a_missing_file(synth, tmp_path):
    from mme.motion.extract import ExtractSettings, extract_video, output_path

    config = pretrain_config(synth, trajectories="offline", traj_root=str(tmp_path / "traj"))
    entries = read_list(config.train_list)
    settings = ExtractSettings(flow="dis_ultrafast")
    root = list_root(config.train_list)  # what `mme extract --list` keys files on without --root
    for entry in entries[:-1]:
        extract_video(entry.path, output_path(entry.path, config.traj_root, root), settings)
    dataset = PretrainDataset(config, TrajectoryConfig(), bad_video_dir=tmp_path / "bad")
    np.random.seed(0)
    sample = dataset[0]
    assert sample["traj_disp"].shape == (2, 4, 4, 4, 2) and sample["traj_valid"].shape == (2, 4, 4, 4)
    assert bool(torch.isfinite(sample["traj_disp"]).all()) and bool(sample["traj_valid"][:, 0].any())
    # network px per stored px, for patch_std_int's whole-pixel truncation: a square crop of
    # 48 x scale (scales 1 .. 0.66) of the 64x48 video, stored at full size, resized to 32x32
    scale_x, scale_y = sample["traj_flow_scale"].tolist()
    assert scale_x == pytest.approx(scale_y) and 32 / 48 - 1e-6 <= scale_x <= 32 / (48 * 0.66) + 1e-6
    missing = output_path(entries[-1].path, config.traj_root, root)
    with pytest.raises(DataError, match=f"trajectory file not found: {missing}"):
        dataset[len(entries) - 1]
    assert dataset.bad_video_count == 0  # a missing trajectory file is an error, not a bad video


def _with_bad_videos(synth: Path, folder: Path) -> Path:
    """The train list plus a corrupt video and one too short for a clip."""
    folder.mkdir(parents=True, exist_ok=True)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    short = folder / "short.mp4"
    write_video(short, np.zeros((3, 48, 64, 3), np.uint8))  # 3 frames, a clip needs 4
    entries = [(entry.path, entry.label) for entry in read_list(synth / "train.csv")]
    listing = folder / "with_bad.csv"
    write_list(listing, [(corrupt, 0), *entries, (short, 1)])
    return listing


def test_bad_videos_are_replaced_and_counted(synth, tmp_path):
    listing = _with_bad_videos(synth, tmp_path / "data")
    config = pretrain_config(synth, train_list=str(listing), max_bad_fraction=0.5)
    dataset = PretrainDataset(config, TrajectoryConfig(), bad_video_dir=tmp_path / "run")
    first, last = dataset[0], dataset[len(dataset) - 1]
    assert first["index"] not in (0, len(dataset) - 1) and last["index"] not in (0, len(dataset) - 1)
    assert first["clip"].shape == (3, 4, 32, 32)
    assert dataset.bad_video_count == 2
    reasons = dataset.bad.bad_videos()
    assert "decodable frames" in reasons[str(tmp_path / "data" / "short.mp4")]
    assert "corrupt.mp4" in reasons[str(tmp_path / "data" / "corrupt.mp4")]
    # Deterministic replacement: the same index picks the same stand-in.
    assert dataset[0]["index"] == first["index"]


def test_too_many_bad_videos_stop_the_run(synth, tmp_path):
    listing = _with_bad_videos(synth, tmp_path / "data")
    config = pretrain_config(synth, train_list=str(listing), max_bad_fraction=0.1)  # 6 videos: 0 tolerated
    dataset = PretrainDataset(config, TrajectoryConfig(), bad_video_dir=tmp_path / "run")
    with pytest.raises(DataError, match=r"(?s)1 of 6 videos are bad.*corrupt\.mp4"):
        dataset[0]


def test_dataloader_with_two_workers(synth, tmp_path):
    """Online trajectories computed in 2 worker processes; bad videos counted across them."""
    listing = _with_bad_videos(synth, tmp_path / "data")
    config = pretrain_config(synth, train_list=str(listing), max_bad_fraction=0.5)
    dataset = PretrainDataset(config, TrajectoryConfig(), bad_video_dir=tmp_path / "run")
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=3,
        num_workers=2,
        worker_init_fn=worker_init_fn,
        generator=torch.Generator().manual_seed(0),
    )
    batches = list(loader)
    assert [batch["clip"].shape for batch in batches] == [(3, 3, 4, 32, 32)] * 2
    assert batches[0]["traj_disp"].shape == (3, 2, 4, 4, 4, 2) and batches[0]["mask"].shape == (3, 8)
    indices = torch.cat([batch["index"] for batch in batches])
    assert 0 not in indices and 5 not in indices  # both bad videos were replaced
    assert len(list((tmp_path / "run").glob("bad_videos-*.jsonl"))) == 2  # one record per worker
    assert dataset.bad_video_count == 2
    second = list(
        torch.utils.data.DataLoader(
            dataset,
            batch_size=3,
            num_workers=2,
            worker_init_fn=worker_init_fn,
            generator=torch.Generator().manual_seed(0),
        )
    )
    assert torch.equal(second[1]["clip"], batches[1]["clip"])  # a seeded loader repeats


def classification_config(synth: Path, **overrides) -> ClassificationDataConfig:
    lists = {split: str(synth / f"{split}.csv") for split in ("train", "val", "test")}
    fields = {
        "train_list": lists["train"],
        "val_list": lists["val"],
        "test_list": lists["test"],
        "short_side_size": 32,
        "test_clips": 2,
        "test_crops": 3,
        **SMALL,
        **overrides,
    }
    return ClassificationDataConfig(**fields)


def test_classification_train_items(synth, tmp_path):
    dataset = VideoClassificationDataset(classification_config(synth), "train", bad_video_dir=tmp_path)
    assert dataset.num_classes == 2 and len(dataset) == 4
    np.random.seed(0)
    items = [dataset[i] for i in range(3)]
    assert items[0]["clip"].shape == (2, 3, 4, 32, 32) and items[0]["label"].shape == (2,)
    assert not torch.equal(items[0]["clip"][0], items[0]["clip"][1])  # two independent augmentations
    batch = collate_repeated(items)
    assert batch["clip"].shape == (6, 3, 4, 32, 32)
    assert batch["label"].tolist() == [e.label for e in dataset.entries[:3] for _ in range(2)]
    assert batch["index"].tolist() == [0, 0, 1, 1, 2, 2]


def test_classification_val_and_test_views_are_deterministic(synth, tmp_path):
    config = classification_config(synth)
    val = VideoClassificationDataset(config, "val", bad_video_dir=tmp_path)
    np.random.seed(0)
    first = val[1]
    np.random.seed(5)
    assert torch.equal(val[1]["clip"], first["clip"]) and first["clip"].shape == (3, 4, 32, 32)
    test = VideoClassificationDataset(config, "test", bad_video_dir=tmp_path)
    assert len(test) == 2 * 6
    views = [test[i] for i in range(6)]
    assert [v["view"] for v in views] == list(range(6)) and {v["index"] for v in views} == {0}
    assert all(v["label"] == test.entries[0].label for v in views)
    # Crops of one clip differ (left / centre / right of a 64x48 video), clips differ in time.
    assert not torch.equal(views[0]["clip"], views[2]["clip"])
    assert not torch.equal(views[0]["clip"], views[3]["clip"])
    assert torch.equal(test[4]["clip"], views[4]["clip"])


def test_labels_must_fit_num_classes(synth, tmp_path):
    # the first label >= 1: line 3 of train.csv (line 1 is the header)
    expected = (
        r"train\.csv:3: label 1 of \S+\.mp4 is not below 1, the number of classes \(data\.num_classes\)"
    )
    with pytest.raises(DataError, match=expected):
        VideoClassificationDataset(
            classification_config(synth, num_classes=1), "train", bad_video_dir=tmp_path
        )


def test_check_labels_names_the_list_line_and_the_class_count(synth, tmp_path):
    listing = tmp_path / "val.csv"
    entries = read_list(synth / "val.csv")
    write_list(listing, [(entries[0].path, 0), (entries[1].path, 5)])
    val = VideoClassificationDataset(
        classification_config(synth, val_list=str(listing)), "val", bad_video_dir=tmp_path
    )
    train = VideoClassificationDataset(classification_config(synth), "train", bad_video_dir=tmp_path)
    assert train.num_classes == 2
    with pytest.raises(DataError) as caught:
        val.check_labels(train.num_classes, train.num_classes_source)
    assert str(caught.value) == (
        f"{listing}:3: label 5 of {entries[1].path} is not below 2, the number of classes "
        f"(the largest label of {synth / 'train.csv'} + 1)"
    )
    val.check_labels(6, "data.num_classes")  # in range: no error


def test_eval_items_of_a_bad_video_are_marked_never_replaced(synth, tmp_path):
    """val/test items of an undecodable video come back as themselves with ok=False and the reason,
    in a batch from worker processes; training items keep the replace-and-count policy."""
    listing = _with_bad_videos(synth, tmp_path / "data")  # corrupt (0), 4 good (1..4), short (5)
    config = classification_config(synth, test_list=str(listing), max_bad_fraction=0.0)
    test = VideoClassificationDataset(config, "test", bad_video_dir=tmp_path / "run")
    loader = torch.utils.data.DataLoader(test, batch_size=4, num_workers=2, worker_init_fn=worker_init_fn)
    batches = list(loader)
    ok = torch.cat([batch["ok"] for batch in batches])
    index = torch.cat([batch["index"] for batch in batches])
    labels = torch.cat([batch["label"] for batch in batches])
    reasons = [reason for batch in batches for reason in batch["reason"]]
    assert index.tolist() == [item // 6 for item in range(36)]  # every view is its own video's
    assert labels.tolist() == [test.entries[item // 6].label for item in range(36)]
    assert ok.tolist() == [0 < item // 6 < 5 for item in range(36)]
    assert all("corrupt.mp4" in reason for reason in reasons[:6])
    assert all("decodable frames" in reason for reason in reasons[30:])
    assert all(reason == "" for reason in reasons[6:30])
    clips = torch.cat([batch["clip"] for batch in batches])
    assert clips.shape == (36, 3, 4, 32, 32) and not bool(clips[~ok].any())
    assert test.bad_video_count == 0  # not recorded as replaced, and no DataError at fraction 0
    val = VideoClassificationDataset(config, "val", bad_video_dir=tmp_path / "run", list_from="test")
    assert (val[0]["ok"], val[0]["index"]) == (False, 0) and (val[1]["ok"], val[1]["index"]) == (True, 1)
    train_config = classification_config(synth, train_list=str(listing), max_bad_fraction=0.5)
    train = VideoClassificationDataset(train_config, "train", bad_video_dir=tmp_path / "train")
    np.random.seed(0)
    assert int(train[0]["index"][0]) != 0 and train.bad_video_count == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mask_ratio": 1.5}, "data.mask_ratio"),
        ({"trajectories": "offline"}, "data.traj_root"),
        ({"num_frames": 5}, "data.num_frames=5 must be a multiple"),
        ({"sampling": "dense"}, "data.sampling"),
        ({"decode_backend": "opencv"}, "data.decode_backend"),
    ],
)
def test_config_errors_name_the_key(fields, message):
    with pytest.raises(ConfigError, match=message):
        PretrainDataConfig(**fields)


def test_config_needs_a_list(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.train_list is not set"):
        PretrainDataset(PretrainDataConfig(trajectories="none"), bad_video_dir=tmp_path)
    with pytest.raises(ConfigError, match="RandAugment"):
        ClassificationDataConfig(rand_augment="rand-q3")


def test_worker_init_seeds_from_torch(monkeypatch):
    monkeypatch.setattr(torch, "initial_seed", lambda: 1234 + 2**40)
    threads = torch.get_num_threads()
    try:
        worker_init_fn(0)
        first = np.random.random()
        worker_init_fn(0)
        assert np.random.random() == first
    finally:
        torch.set_num_threads(threads)


def test_relative_root(synth, tmp_path):
    copy = tmp_path / "moved"
    shutil.copytree(synth, copy)
    dataset = PretrainDataset(
        pretrain_config(copy, trajectories="none", train_list=str(copy / "train.csv")), bad_video_dir=tmp_path
    )
    assert dataset.entries[0].path.is_relative_to(copy) and dataset[0]["clip"].shape == (3, 4, 32, 32)


def _samples(dataset, indices, keys):
    out = []
    for index in indices:
        np.random.seed(index)
        sample = dataset[index]
        out.append({key: sample[key] for key in keys})
    return out


def test_cached_videos_give_the_same_items_and_are_decoded_once(synth, tmp_path):
    """data.cache_mb: every item as without the cache, the file decoded only the first time."""
    copy = tmp_path / "data"
    shutil.copytree(synth, copy)
    plain = PretrainDataset(pretrain_config(copy, train_list=str(copy / "train.csv")), TrajectoryConfig())
    cached = PretrainDataset(
        pretrain_config(copy, train_list=str(copy / "train.csv"), cache_mb=16), TrajectoryConfig()
    )
    keys = ("clip", "mask", "traj_disp", "traj_valid")
    expected = _samples(plain, range(4), keys)
    first = _samples(cached, range(4), keys)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first, expected, strict=True) for k in keys)
    assert len(cached._frames) == 4 and cached._frames.used == 4 * 24 * 48 * 64 * 3
    for video in (copy / "videos").rglob("*.mp4"):
        video.unlink()  # from now on only the cache can give frames
    again = _samples(cached, range(4), keys)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(again, expected, strict=True) for k in keys)
    assert cached.bad_video_count == 0

    test_plain = VideoClassificationDataset(classification_config(synth), "test")
    test_cached = VideoClassificationDataset(classification_config(synth, cache_mb=16), "test")
    for item in range(len(test_plain)):
        assert torch.equal(test_cached[item]["clip"], test_plain[item]["clip"])
    assert len(test_cached._frames) == 2  # 2 test videos x 6 views: each decoded once


def test_cache_budget_and_bad_videos(synth, tmp_path):
    """Videos past the budget are decoded per item; bad videos stay bad (replaced, recorded)."""
    small = PretrainDataset(pretrain_config(synth, cache_mb=0.2), TrajectoryConfig())  # < 1 video
    np.random.seed(0)
    assert small[0]["clip"].shape == (3, 4, 32, 32) and len(small._frames) == 0
    listing = _with_bad_videos(synth, tmp_path / "data")
    config = pretrain_config(synth, train_list=str(listing), max_bad_fraction=0.5, cache_mb=16)
    dataset = PretrainDataset(config, TrajectoryConfig(), bad_video_dir=tmp_path / "run")
    for index in (0, len(dataset) - 1):
        assert dataset[index]["index"] not in (0, len(dataset) - 1)
    assert dataset.bad_video_count == 2
    assert "decodable frames" in dataset.bad.bad_videos()[str(tmp_path / "data" / "short.mp4")]
    with pytest.raises(ConfigError, match=r"data\.cache_mb must be >= 0"):
        PretrainDataConfig(cache_mb=-1)
