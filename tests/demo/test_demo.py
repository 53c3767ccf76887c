"""``mme demo --quick`` end to end: every output exists, the numbers are the jobs' own, the
figures are real pictures, and a rerun skips every finished stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from picture_helpers import assert_real_png

from mme.cli.main import main
from mme.demo.layout import DemoLayout
from mme.demo.settings import METHODS
from mme.eval.metrics import wilson_interval
from mme.utils.logging import format_duration, job_seconds


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """One quick demo for the module: its folder and what it printed."""
    out = tmp_path_factory.mktemp("demo") / "out"
    capture = tmp_path_factory.mktemp("stdout") / "stdout.txt"
    import contextlib

    with open(capture, "w") as handle, contextlib.redirect_stdout(handle):
        code = main(["demo", "--quick", "--out", str(out), "--seed", "0"])
    assert code == 0
    return out, capture.read_text()


def _json(path: Path) -> dict:
    assert path.is_file(), f"{path} is missing"
    return json.loads(path.read_text())


def test_every_output_exists(demo):
    out, _ = demo
    layout = DemoLayout(out)
    for path in (layout.state, layout.results, layout.table, out / "demo.log", out / "demo.jsonl"):
        assert path.is_file(), path
    assert (layout.data / "dataset.json").is_file() and (layout.data / "test.csv").is_file()
    for method in METHODS:
        assert (layout.encoder(method) / "model.safetensors").is_file()
        assert (layout.finetune(method) / "config.yaml").is_file()
        assert (layout.finetune_eval(method)).is_file()
        assert (layout.probe(method) / "model" / "model.safetensors").is_file()
        assert (layout.probe_eval(method) / "eval.json").is_file()
        if method.pretrains:
            summary = _json(layout.pretrain(method) / "summary.json")
            assert summary["finished"] is True


def test_numbers_are_the_evaluation_files(demo):
    """results.json and the printed table hold exactly the top-1 of the jobs' eval.json files."""
    out, printed = demo
    layout = DemoLayout(out)
    results = _json(layout.results)
    assert results["format"] == "mme-demo-results-1" and results["preset"] == "quick"
    assert set(results["methods"]) == {method.key for method in METHODS}
    table = layout.table.read_text()
    for method in METHODS:
        entry = results["methods"][method.key]
        finetune = _json(layout.finetune_eval(method))
        probe = _json(layout.probe_eval(method) / "eval.json")
        assert entry["finetune"]["eval_file"] == str(layout.finetune_eval(method))
        assert entry["linear_probe"]["eval_file"] == str(layout.probe_eval(method) / "eval.json")
        assert entry["finetune"]["top1"] == finetune["top1"]
        assert entry["linear_probe"]["top1"] == probe["top1"]
        for value in (finetune["top1"], probe["top1"]):
            assert 0.0 <= value <= 100.0
            # An accuracy over the test videos: a multiple of 100 / videos.
            videos = finetune["videos"]
            assert abs(value * videos / 100 - round(value * videos / 100)) < 1e-6
        if method.pretrains:
            seconds = job_seconds(layout.pretrain(method) / "pretrain.jsonl")
            assert entry["pretrain"]["seconds"] == pytest.approx(seconds, abs=0.01) and seconds > 0
            time_text = format_duration(entry["pretrain"]["seconds"])
        else:
            assert entry["pretrain"] is None
            time_text = "—"
        cells = []
        for numbers in (finetune, probe):
            low, high = wilson_interval(numbers["top1"], numbers["videos"])
            cells.append(f"{numbers['top1']:.1f} ({low:.0f}–{high:.0f})")
        row = f"| {method.label} | {cells[0]} | {cells[1]} | {time_text} |"
        assert row in table
        assert row in printed
    assert results["dataset"]["classes"] == 4 and results["dataset"]["chance_top1"] == 25.0


def test_target_floors_are_measured(demo):
    """results.json holds each target's floors, measured on the run's own samples."""
    out, _ = demo
    floors = _json(DemoLayout(out).results)["target_floors"]
    assert floors["samples"] == 8 and floors["masked_tokens"] > 0
    for name in ("traj", "hog", "pixel"):
        values = floors["floors"][name]
        assert 0 < values["dataset_mean"] <= values["zeros"] + 1e-9
    # Per-patch normalised pixels (unbiased std): each token's 3 x 512 values have a sum of
    # squares of exactly 3 x 511, so predicting zeros costs 1533 per masked token.
    assert floors["floors"]["pixel"]["zeros"] == pytest.approx(3 * 511, rel=1e-4)
    spread = floors["within_patch_spread_px"]["percentiles_10_25_50_75_90"]
    assert spread == sorted(spread) and spread[0] >= 0


def test_floors_are_repeatable_and_leave_the_global_rngs_alone(demo):
    import numpy as np
    import torch

    from mme.eval.target_floors import measure_floors
    from mme.train.run_config import PretrainConfig, load_run_config

    out, _ = demo
    config = load_run_config(PretrainConfig, DemoLayout(out).pretrain(METHODS[0]) / "config.yaml")
    np.random.seed(123)
    torch.manual_seed(456)
    first = measure_floors(config, samples=3, batch=2)
    assert np.random.randint(0, 2**31) == np.random.RandomState(123).randint(0, 2**31)
    assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(456)))
    assert measure_floors(config, samples=3, batch=2) == first


def test_figures_are_pictures(demo):
    out, _ = demo
    results = _json(DemoLayout(out).results)
    names = {"pretrain_loss", "finetune", "accuracy", "trajectories"}
    assert set(results["figures"]) == names
    for name in names:
        path = Path(results["figures"][name])
        assert path.parent == out / "figures"
        assert_real_png(path)


def test_rerun_skips_finished_stages_and_refuses_other_settings(demo, capsys):
    out, _ = demo
    results = _json(DemoLayout(out).results)
    before = {path: Path(path).stat().st_mtime_ns for path in _eval_files(out)}
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    rerun = _json(DemoLayout(out).results)
    assert {stage["status"] for stage in rerun["stages"]} == {"skipped"}
    assert len(rerun["stages"]) == len(results["stages"])
    assert {path: Path(path).stat().st_mtime_ns for path in _eval_files(out)} == before
    assert rerun["methods"] == results["methods"]

    # An interrupted fine-tuning (its test and summary never written) is finished from its checkpoint.
    layout = DemoLayout(out)
    none = METHODS[-1]
    layout.finetune_eval(none).unlink()
    (layout.finetune(none) / "summary.json").unlink()
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    again = _json(layout.results)
    ran = [stage["name"] for stage in again["stages"] if stage["status"] == "ran"]
    assert ran == [f"finetune-{none.key}"]
    assert again["methods"][none.key]["finetune"]["top1"] == results["methods"][none.key]["finetune"]["top1"]
    assert "resuming from" in (layout.finetune(none) / "finetune.log").read_text()

    capsys.readouterr()
    assert main(["demo", "--quick", "--out", str(out), "--seed", "1"]) == 1
    error = capsys.readouterr().err
    assert "other settings" in error and "seed" in error


def _eval_files(out: Path) -> list[str]:
    return sorted(str(path) for path in out.rglob("eval.json"))


def _other_motion_dataset(folder: Path) -> None:
    """A motion dataset from another generator (mme.motion.known_motion's smooth noise textures
    under rotation, zoom and translation), in the same list format, another size and length."""
    from mme.io.lists import write_list
    from mme.io.video import write_video
    from mme.motion.known_motion import STANDARD_MOTIONS, render_frames

    motions = [STANDARD_MOTIONS[i] for i in (1, 3, 4)]
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    for label, motion in enumerate(motions):
        for number, split in enumerate(("train", "train", "val", "test")):
            relative = f"clips/{motion.name}/{number}.mp4"
            frames = render_frames(motion, 20, 56, 72, seed=10 * label + number, oversample=1)
            write_video(folder / relative, frames)
            splits[split].append((relative, label))
    for split, entries in splits.items():
        write_list(folder / f"{split}.csv", entries)


def test_commands_run_on_another_motion_dataset(demo, tmp_path):
    """results.json's commands are the demo: with the dataset folder replaced by another motion
    dataset in the same list format, every job after `mme synth` runs and writes its results
    (into another folder; the random initialisation of the `none` method, which depends on the
    architecture only, is the demo's own)."""
    import shlex

    out, _ = demo
    commands = _json(DemoLayout(out).results)["commands"]
    none_encoder = str(DemoLayout(out).encoder(METHODS[-1]))
    other = tmp_path / "other"
    _other_motion_dataset(other / "data")
    ran = []
    for name, command in commands.items():
        if name == "data":  # the synthetic dataset itself: replaced
            continue
        moved = command.replace(none_encoder, "<none>").replace(str(out), str(other))
        arguments = shlex.split(moved.replace("<none>", none_encoder))
        assert arguments[0] == "mme" and f"{out}/data" not in " ".join(arguments)
        assert main(arguments[1:]) == 0, command
        ran.append(arguments[1])
    assert ran[:2] == ["extract", "pretrain"] and ran.count("eval") == 3 and ran.count("finetune") == 3
    layout = DemoLayout(other)
    for method in METHODS:
        for path in (layout.finetune_eval(method), layout.probe_eval(method) / "eval.json"):
            result = _json(path)
            assert result["videos"] == 3 and 0 <= result["top1"] <= 100
        if method.pretrains:
            assert _json(layout.pretrain(method) / "summary.json")["finished"] is True
    assert len(list((other / "traj").rglob("*.traj"))) == 6  # the other dataset's training videos
