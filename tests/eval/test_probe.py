"""Linear probe: the folded head equals BatchNorm + Linear, and `mme probe` writes a usable classifier."""

from __future__ import annotations

import json

import torch
from train_helpers import run_mme, tiny_eval, tiny_probe

from mme.eval.probe import LinearProbe


def test_folded_head_equals_batchnorm_then_linear():
    torch.manual_seed(0)
    probe = LinearProbe(6, 4)
    features = torch.randn(32, 6) * 3 + 2
    probe.train()
    for _ in range(5):  # fill the running statistics
        probe(features)
    probe.eval()
    weight, bias = probe.folded()
    assert torch.allclose(features @ weight.T + bias, probe(features), atol=1e-5)


def test_probe_command_end_to_end(synthetic_data, pretrain_run, tmp_path):
    pt, probe_dir, ev = pretrain_run, tmp_path / "probe", tmp_path / "ev"
    assert run_mme(tiny_probe(synthetic_data, pt / "model", probe_dir, "probe.epochs=30")) == 0
    summary = json.loads((probe_dir / "summary.json").read_text())
    assert summary["train_videos"] == 9 and summary["val_videos"] == 3
    assert summary["train_top1"] > 100 / 3  # better than chance on its own training features
    epochs = [json.loads(line) for line in (probe_dir / "probe.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in epochs if e["kind"] == "probe"]
    assert len(losses) == 30 and losses[-1] < losses[0]
    log = (probe_dir / "probe.log").read_text()
    assert "[probe] epoch=29 loss=" in log  # a probe epoch, labelled as one
    assert f"linear probe: val top-1 {summary['val_top1']:.4g}\n" in log
    # the saved probe is an ordinary classifier that mme eval tests with multiple views
    assert run_mme(tiny_eval(synthetic_data, probe_dir / "model", ev)) == 0
    assert json.loads((ev / "eval.json").read_text())["views"] == 18
