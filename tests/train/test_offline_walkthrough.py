"""docs/motion.md's offline walkthrough, run as written: `mme synth`, `mme extract`, then `mme
pretrain` on the extracted trajectories, from a working folder with relative paths only.

The synthetic dataset is made small and the recipe's model and clips tiny (train_helpers), so the
pre-training takes two steps; every other argument is the documented one.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import yaml
from train_helpers import read_jsonl, run_mme, tiny_pretrain

DOC = Path(__file__).resolve().parents[2] / "docs" / "motion.md"
SMALL_SYNTH = shlex.split("--classes 2 --videos-per-class 3 --frames 16 --size 40x32 --workers 1")


def walkthrough() -> list[list[str]]:
    """The commands of the doc's block that pre-trains offline, as ``mme`` argument lists."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    (block,) = [block for block in blocks if "data.trajectories=offline" in block]
    commands = [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    assert all(command[0] == "mme" for command in commands), commands
    return [command[1:] for command in commands]


def test_the_documented_offline_walkthrough_runs(tmp_path, monkeypatch):
    synth, extract, pretrain = walkthrough()
    assert [synth[0], extract[0], pretrain[0]] == ["synth", "extract", "pretrain"]
    work = tmp_path / "work"  # no configs/ here: the recipe is the installed one
    work.mkdir()
    monkeypatch.chdir(work)
    assert run_mme([*synth, *SMALL_SYNTH]) == 0
    assert run_mme(extract) == 0
    # The files mirror the dataset folder (the list's folder, no --root).
    train = (work / "data" / "synthetic" / "train.csv").read_text().splitlines()[1:]
    videos = sorted(line.rsplit(",", 1)[0] for line in train)
    written = sorted(str(p.relative_to(work / "data" / "synthetic_traj")) for p in work.rglob("*.traj"))
    assert written == [f"{video}.traj" for video in videos] and len(videos) == 2

    run = tmp_path / "run"
    tiny = tiny_pretrain(Path("data/synthetic"), run)[3:]  # its --set items, after the doc's
    assert run_mme([*pretrain, *tiny]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["trajectories"] == "offline"
    assert config["data"]["traj_root"] == "data/synthetic_traj"
    epochs = read_jsonl(run / "pretrain.jsonl", "epoch")
    assert len(epochs) == 2 and all(math.isfinite(epoch["loss_traj"]) for epoch in epochs)
