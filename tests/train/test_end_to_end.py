"""`mme pretrain` -> `mme finetune` from its checkpoint -> `mme eval`, through the CLI entry point."""

from __future__ import annotations

import json

import torch
from train_helpers import read_jsonl, run_mme, tiny_eval, tiny_finetune


def test_pretrain_then_finetune_then_eval(synthetic_data, pretrain_run, tmp_path):
    """`pretrain_run` (conftest) ran `mme pretrain` for 5 epochs of 4 steps."""
    pt, ft, ev = pretrain_run, tmp_path / "ft", tmp_path / "ev"
    for name in ("config.yaml", "pretrain.log", "pretrain.jsonl", "summary.json",
                 "model/config.json", "model/model.safetensors"):  # fmt: skip
        assert (pt / name).is_file(), name
    assert list((pt / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (pt / "checkpoints").iterdir()) == [
        "step-00000012.pt",
        "step-00000016.pt",
        "step-00000020.pt",
    ]
    epochs = read_jsonl(pt / "pretrain.jsonl", "epoch")
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3, 4]
    assert {"loss", "loss_hog", "loss_traj"} <= set(epochs[0])
    assert epochs[-1]["loss"] < 0.8 * epochs[0]["loss"], [e["loss"] for e in epochs]
    summary = json.loads((pt / "summary.json").read_text())
    assert summary["finished"] and summary["steps"] == 20
    # save_model_epochs=[1,3]: the model after epoch 3 (step 16) is kept beside the final one
    from mme.models import load_pretrain_model

    kept = load_pretrain_model(pt / "model-epoch3").state_dict()
    at_step_16 = torch.load(pt / "checkpoints" / "step-00000016.pt", weights_only=False)["model"]
    assert (pt / "model-epoch1" / "model.safetensors").is_file() and not (pt / "model-epoch2").exists()
    assert all(torch.equal(kept[name], at_step_16[name]) for name in kept)

    checkpoint = pt / "checkpoints" / "step-00000020.pt"
    assert run_mme(tiny_finetune(synthetic_data, ft, f"model.init_from={checkpoint}")) == 0
    log = (ft / "finetune.log").read_text()
    assert f"from {checkpoint} (mme-train) into a classifier" in log
    for name in ("checkpoints/best.pt", "model/model.safetensors", "eval/eval.json",
                 "eval/predictions.jsonl", "eval/confusion.csv", "summary.json"):  # fmt: skip
        assert (ft / name).is_file(), name
    ft_summary = json.loads((ft / "summary.json").read_text())
    assert ft_summary["finished"] and ft_summary["best_val_top1"] is not None
    # people read rounded numbers (e.g. 33.33, never 33.333333333333336); JSON keeps them whole
    best, test_top1 = ft_summary["best_val_top1"], ft_summary["test"]["top1"]
    assert f"steps, best val top-1 {best:.4g}, test top-1 {test_top1:.2f}\n" in log
    predictions = read_jsonl(ft / "eval" / "predictions.jsonl")
    assert len(predictions) == 3 and all(0 <= p["prediction"] < 3 for p in predictions)

    # eval of the final weights reproduces the test the fine-tuning job ran at its end
    assert run_mme(tiny_eval(synthetic_data, ft / "model", ev)) == 0
    result = json.loads((ev / "eval.json").read_text())
    assert result["videos"] == 3 and result["views"] == 18 and result["views_per_video"] == 6
    assert result["top1"] == ft_summary["test"]["top1"]
    assert result["view_top1"] == ft_summary["test"]["view_top1"]
    assert (ev / "eval.json").read_text() == (ft / "eval" / "eval.json").read_text()
    rows = (ev / "confusion.csv").read_text().splitlines()
    assert len(rows) == 4 and sum(int(v) for row in rows[1:] for v in row.split(",")[1:]) == 3
