"""`mme embed`: stored vectors equal the model's, shards resume after a kill and split across
processes, broken videos are listed, a folder of other settings is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import run_mme

import mme
import mme.eval.embed as embed_module
from mme.errors import ConfigError

# The synthetic videos at the tiny model's clip size: 4 frames at 32x32, stride 2.
VIEWS = {"stride": 2, "short_side": 32, "workers": 0}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A (random) two-block ViT-tiny pre-training checkpoint: encoder, decoder and heads."""
    from mme.models import create_model, save_model

    torch.manual_seed(1)
    out = tmp_path_factory.mktemp("pretrained") / "model"
    save_model(create_model("mme_vit_tiny_patch16_224", depth=2, num_frames=4, img_size=32), out)
    return out


@pytest.fixture(scope="module")
def videos(synthetic_data) -> list[Path]:
    return sorted((synthetic_data / "videos").rglob("*.mp4"))[:5]


def model_views(checkpoint: Path, videos: list[Path], clips: int, crops: int, tmp: Path) -> list[dict]:
    """Each video's views through the model, computed here clip by clip: ``features``
    (``forward_features``) and ``tokens`` (the last block's output), (views, ...) each."""
    from mme.data.config import ClassificationDataConfig
    from mme.data.datasets import VideoClassificationDataset
    from mme.data.transforms import normalize_clip
    from mme.io.lists import VideoEntry
    from mme.models import load_classifier

    model = load_classifier(checkpoint).eval()
    data = ClassificationDataConfig(
        num_frames=4, input_size=32, stride=2, short_side_size=32, test_clips=clips, test_crops=crops
    )
    entries = [VideoEntry(path, 0) for path in videos]
    dataset = VideoClassificationDataset(data, "test", entries=entries, bad_video_dir=tmp)
    out = []
    with torch.no_grad():
        for video in range(len(videos)):
            clip = normalize_clip(
                torch.stack([dataset[video * dataset.views + v]["clip"] for v in range(dataset.views)])
            )
            out.append(
                {"features": model.forward_features(clip), "tokens": model.forward_blocks(model.embed(clip))}
            )
    return out


def test_stored_vectors_are_the_models_features_of_the_same_clips(pretrained, videos, tmp_path):
    expected = model_views(pretrained, videos[:3], clips=2, crops=3, tmp=tmp_path)
    mean = tmp_path / "mean"
    summary = mme.embed(
        pretrained, videos[:3], mean, settings={"clips": 2, "crops": 3, **VIEWS}, shard_size=2
    )
    assert (summary.embedded, summary.failed, summary.exit_code) == (3, 0, 0)
    stored, entries = mme.read_embeddings(mean)
    assert stored.shape == (3, 192) and [e["path"] for e in entries] == [str(v) for v in videos[:3]]
    want = torch.stack([views["features"].double().mean(0) for views in expected]).float()
    assert torch.allclose(stored, want, atol=1e-5), (stored - want).abs().max()
    index = json.loads((mean / "index.json").read_text())
    assert [(e["video"], e["shard"], e["row"]) for e in index["entries"]] == [
        (0, "shard-00000.safetensors", 0),
        (1, "shard-00000.safetensors", 1),
        (2, "shard-00001.safetensors", 0),
    ]

    free = tmp_path / "free"
    mme.embed(pretrained, videos[:2], free, pool="cls-free", settings={"clips": 2, "crops": 3, **VIEWS})
    want = torch.stack([views["tokens"].double().mean(1).mean(0) for views in expected[:2]]).float()
    assert torch.allclose(mme.read_embeddings(free)[0], want, atol=1e-5)

    tokens = tmp_path / "tokens"
    settings = {"clips": 2, "crops": 3, **VIEWS}
    mme.embed(pretrained, videos[:2], tokens, pool="tokens", per_view=True, settings=settings)
    stored, entries = mme.read_embeddings(tokens)
    assert stored.shape == (12, 8, 192) and [(e["start"], e["rows"]) for e in entries] == [(0, 6), (6, 6)]
    want = torch.cat([views["tokens"] for views in expected[:2]])
    assert torch.allclose(stored, want, atol=1e-5)
    shard = load_file(str(tokens / "shard-00000.safetensors"))
    assert shard["video"].tolist() == [0] * 6 + [1] * 6 and shard["view"].tolist() == list(range(6)) * 2


def test_a_killed_run_resumes_without_a_duplicate_or_missing_row(pretrained, videos, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    mme.embed(pretrained, videos, clean, shard_size=2, settings=VIEWS)
    out = tmp_path / "out"
    real = embed_module.write_shard
    calls = []

    def killed_after_the_first_shard(*args, **kwargs):
        calls.append(args[0].name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies while working on the second shard
        return real(*args, **kwargs)

    monkeypatch.setattr(embed_module, "write_shard", killed_after_the_first_shard)
    with pytest.raises(KeyboardInterrupt):
        mme.embed(pretrained, videos, out, shard_size=2, settings=VIEWS)
    monkeypatch.setattr(embed_module, "write_shard", real)
    assert sorted(path.name for path in out.glob("shard-*")) == ["shard-00000.safetensors"]
    assert not (out / "index.json").exists()
    first = (out / "shard-00000.safetensors").stat()
    stale = out / "shard-00001.safetensors.tmp-abc123"  # what a kill in the middle of a write leaves
    stale.write_bytes(b"half a shard")

    summary = mme.embed(pretrained, videos, out, shard_size=2, settings=VIEWS)
    assert (summary.skipped, summary.embedded) == (2, 3)
    assert not stale.exists()
    again = (out / "shard-00000.safetensors").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # not redone
    stored, entries = mme.read_embeddings(out)
    assert [e["video"] for e in entries] == [0, 1, 2, 3, 4]
    assert torch.equal(stored, mme.read_embeddings(clean)[0])
    log = (out / "embed.log").read_text()
    assert "removed 1 temporary file(s) left by an interrupted run" in log


def test_processes_share_the_shards_and_the_last_one_writes_the_index(
    pretrained, videos, tmp_path, monkeypatch
):
    single = tmp_path / "single"
    mme.embed(pretrained, videos[:3], single, shard_size=1, settings=VIEWS)
    split = tmp_path / "split"
    first = mme.embed(pretrained, videos[:3], split, shard_size=1, shard=0, num_shards=2, settings=VIEWS)
    assert first.index is None and first.mine == 2  # shards 0 and 2
    assert sorted(p.name for p in split.glob("shard-*")) == [
        "shard-00000.safetensors",
        "shard-00002.safetensors",
    ]
    monkeypatch.setenv("RANK", "1")  # as torchrun starts the second process
    monkeypatch.setenv("WORLD_SIZE", "2")
    second = mme.embed(pretrained, videos[:3], split, shard_size=1, settings=VIEWS)
    assert second.index == split / "index.json" and second.mine == 1
    assert (split / "embed.shard-1-of-2.log").is_file() and (split / "embed.shard-0-of-2.log").is_file()
    assert torch.equal(mme.read_embeddings(split)[0], mme.read_embeddings(single)[0])


def test_broken_videos_are_listed_and_the_rest_embedded(pretrained, videos, tmp_path, capsys):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    out = tmp_path / "out"
    args = ["embed", "--checkpoint", str(pretrained), str(videos[0]), str(notes), str(tmp_path / "gone.mp4")]
    assert run_mme([*args, str(videos[1]), "--out", str(out), "--stride", "2", "--workers", "0"]) == 1
    index = json.loads((out / "index.json").read_text())
    assert [e["path"] for e in index["entries"]] == [str(videos[0]), str(videos[1])]
    assert [(f["video"], f["path"]) for f in index["failed"]] == [
        (1, str(notes)),
        (2, str(tmp_path / "gone.mp4")),
    ]
    assert "cannot open video" in index["failed"][0]["reason"] and index["failed_videos"] == 2
    # a rerun finds everything done and still reports the failures
    assert run_mme([*args, str(videos[1]), "--out", str(out), "--stride", "2", "--workers", "0"]) == 1


def test_a_folder_of_other_settings_is_refused(pretrained, videos, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MME_DEBUG", raising=False)
    out = tmp_path / "out"
    mme.embed(pretrained, videos[:1], out, settings=VIEWS)
    before = sorted(os.listdir(out))
    with pytest.raises(ConfigError, match=r"pool: 'mean' then, 'tokens' now"):
        mme.embed(pretrained, videos[:1], out, pool="tokens", settings=VIEWS)
    with pytest.raises(ConfigError, match="inputs_sha256"):
        mme.embed(pretrained, videos[:2], out, settings=VIEWS)
    assert sorted(os.listdir(out)) == before
    capsys.readouterr()
    assert run_mme(["embed", "--checkpoint", str(pretrained), "--out", str(tmp_path / "x")]) == 1
    assert "name the videos either with --list LIST or as INPUTs" in capsys.readouterr().err
