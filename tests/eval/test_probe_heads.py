"""Attentive and kNN probes: their maths on small tensors, and `mme probe` end to end on videos
whose features separate the classes, each tested on multiple views like `mme eval`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import read_jsonl, run_mme, tiny_eval, tiny_probe

from mme.eval.probe import AttentiveProbe, knn_scores

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]  # class = dominant colour


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory) -> Path:
    """3 classes x (4 train, 2 val, 2 test) videos of 16 frames at 40x32: noise around one
    colour per class, so even a random encoder's features tell the classes apart."""
    from mme.io.lists import write_list
    from mme.io.video import write_video

    out = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    for label, colour in enumerate(COLOURS):
        for number, split in enumerate(["train"] * 4 + ["val"] * 2 + ["test"] * 2):
            frames = np.clip(np.array(colour) + rng.normal(0, 40, (16, 32, 40, 3)), 0, 255).astype(np.uint8)
            name = f"videos/c{label}_{number}.mp4"
            write_video(out / name, frames, fps=25)
            splits[split].append((name, label))
    for split, entries in splits.items():
        write_list(out / f"{split}.csv", entries)
    (out / "classes.json").write_text(json.dumps(["red", "green", "blue"]))
    return out


def clusters(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well separated Gaussian clusters in 16 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 16, generator=torch.Generator().manual_seed(7)) * 3
    labels = torch.arange(3).repeat_interleave(per_class)
    return centres[labels] + torch.randn(labels.shape[0], 16, generator=generator), labels


def test_knn_votes_of_the_nearest_neighbours():
    bank, labels = clusters(10, seed=0)
    query, truth = clusters(5, seed=1)
    scores = knn_scores(query, bank, labels, num_classes=4, k=5, temperature=0.07)
    assert torch.allclose(scores.sum(dim=1), torch.ones(15)) and (scores[:, 3] == 0).all()
    assert (scores.argmax(dim=1) == truth).float().mean() == 1.0  # chance: 1/3
    # k=1: the label of the most similar bank row, by cosine (scale does not matter)
    one = knn_scores(bank[[3, 17]] * 5.0, bank, labels, num_classes=3, k=1, temperature=0.07)
    assert one.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    # weights exp(cos / T): two equidistant neighbours of different classes share the vote evenly
    bank2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    half = knn_scores(torch.tensor([[1.0, 1.0]]), bank2, torch.tensor([0, 1]), 2, k=2, temperature=0.01)
    assert torch.allclose(half, torch.tensor([[0.5, 0.5]]))


def test_attentive_probe_shapes_and_heads():
    probe = AttentiveProbe(16, 3, num_heads=4)
    tokens = torch.randn(5, 8, 16)
    assert probe(tokens).shape == (5, 3)
    assert torch.allclose(probe(tokens.half()), probe(tokens), atol=1e-2)  # cached as float16
    with pytest.raises(ValueError, match=r"probe\.num_heads=5 must divide the encoder width 16"):
        AttentiveProbe(16, 3, num_heads=5)


def probe_args(data: Path, checkpoint: Path, out: Path, head: str, *extra: str) -> list[str]:
    sets = [
        f"probe.head={head}",
        f"data.test_list={data / 'test.csv'}",
        "data.test_clips=2",
        "data.test_crops=3",
    ]
    args = tiny_probe(data, checkpoint, out, *sets, *extra)
    return args


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    from mme.models import create_model, save_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("encoder") / "model"
    save_model(create_model("mme_vit_tiny_patch16_224", depth=2, num_frames=4, img_size=32), out)
    return out


@pytest.mark.parametrize(
    ("head", "extra"),
    [
        ("knn", ("probe.k=3",)),
        ("attentive", ("probe.epochs=4", "probe.lr=1e-2", "probe.batch_size=12", "probe.num_heads=3")),
    ],
)
def test_attentive_and_knn_probes_beat_chance_on_separable_videos(
    colour_data, encoder, tmp_path, head, extra
):
    out = tmp_path / head
    assert run_mme(probe_args(colour_data, encoder, out, head, *extra)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_videos"] == 12 and summary["val_videos"] == 6
    assert summary["val_top1"] > 100 / 3 + 30, summary  # chance is 33 %
    test = json.loads((out / "eval" / "eval.json").read_text())  # mme eval's files and numbers
    assert test["videos"] == 6 and test["views"] == 36 and test["top1"] > 100 / 3 + 30, test
    assert summary["test"]["top1"] == test["top1"]
    assert set(test["per_class_accuracy"]) == {"red", "green", "blue"}
    assert len(read_jsonl(out / "eval" / "predictions.jsonl")) == 6
    log = (out / "probe.log").read_text()
    assert f"{head} probe: val top-1 " in log and "test top-1" in log
    if head == "attentive":
        assert (out / "attentive_probe.safetensors").is_file()


def test_linear_probe_test_is_mme_eval_of_its_saved_classifier(colour_data, encoder, tmp_path):
    out, ev = tmp_path / "linear", tmp_path / "eval"
    assert run_mme(probe_args(colour_data, encoder, out, "linear", "probe.epochs=20")) == 0
    assert (
        run_mme(tiny_eval(colour_data, out / "model", ev, f"data.test_list={colour_data / 'test.csv'}")) == 0
    )
    probe_test = json.loads((out / "eval" / "eval.json").read_text())
    assert probe_test == json.loads((ev / "eval.json").read_text())
    assert read_jsonl(out / "eval" / "predictions.jsonl") == read_jsonl(ev / "predictions.jsonl")


def test_probe_head_is_checked(colour_data, encoder, tmp_path, capsys):
    capsys.readouterr()
    assert run_mme(probe_args(colour_data, encoder, tmp_path / "x", "nearest")) == 1
    assert "probe.head must be one of linear, attentive, knn, got 'nearest'" in capsys.readouterr().err
    assert run_mme(probe_args(colour_data, encoder, tmp_path / "x", "knn", "probe.k=0")) == 1
    assert "probe.k must be > 0, got 0" in capsys.readouterr().err
