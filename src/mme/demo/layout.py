"""Where the demo puts things, and how it tells that a stage's outputs are complete and intact.

::

    OUT/demo.json                    the settings of this demo folder (a rerun must match them)
    OUT/demo.log, demo.jsonl         the demo's own log (stage headers, timings)
    OUT/demo.lock                    held while a demo runs (a second one in OUT is refused)
    OUT/data/, OUT/traj/             the synthetic dataset (mme synth), its trajectories (mme extract)
    OUT/pretrain/<method>/           mme pretrain runs (mme, pixel); pretrain/none/model = random init
    OUT/finetune/<method>/           mme finetune runs; eval/eval.json = the multi-view test
    OUT/probe/<method>/              mme probe runs (linear probe of the frozen encoder)
    OUT/probe_eval/<method>/         mme eval of each probe on the test list (multi-view)
    OUT/figures/*.png                loss curves, accuracies, trajectories
    OUT/results.json, results.md     the numbers, read back from the jobs' files
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mme.demo.settings import Method


@dataclass
class DemoLayout:
    out: Path
    state: Path = field(init=False)
    data: Path = field(init=False)
    traj: Path = field(init=False)
    figures: Path = field(init=False)
    results: Path = field(init=False)
    table: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.out / "demo.json"
        self.data, self.traj, self.figures = self.out / "data", self.out / "traj", self.out / "figures"
        self.results, self.table = self.out / "results.json", self.out / "results.md"

    def pretrain(self, method: Method) -> Path:
        return self.out / "pretrain" / method.key

    def encoder(self, method: Method) -> Path:
        """The model each method's fine-tuning and probe start from."""
        return self.pretrain(method) / "model"

    def finetune(self, method: Method) -> Path:
        return self.out / "finetune" / method.key

    def finetune_eval(self, method: Method) -> Path:
        return self.finetune(method) / "eval" / "eval.json"

    def probe(self, method: Method) -> Path:
        return self.out / "probe" / method.key

    def probe_eval(self, method: Method) -> Path:
        return self.out / "probe_eval" / method.key


def read_json(path: Path) -> Any | None:
    """The parsed JSON file, or None when it is missing or not valid JSON (a stage to redo)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_intact(folder: Path) -> bool:
    """An mme model folder whose config parses and whose weights file is complete (``safe_open``
    checks every tensor's byte range against the file size without loading the weights)."""
    from safetensors import SafetensorError, safe_open

    config = read_json(folder / "config.json")
    weights = folder / "model.safetensors"
    if not isinstance(config, dict) or config.get("format") != "mme" or not weights.is_file():
        return False
    try:
        with safe_open(str(weights), framework="pt") as handle:
            return bool(list(handle.keys()))
    except (SafetensorError, OSError):
        return False


def training_done(run: Path) -> bool:
    """A pretrain / finetune run that finished and saved its final model."""
    summary = read_json(run / "summary.json")
    return isinstance(summary, dict) and summary.get("finished") is True and model_intact(run / "model")


def eval_done(eval_json: Path) -> bool:
    """An eval.json that holds a top-1 accuracy."""
    data = read_json(eval_json)
    return isinstance(data, dict) and isinstance(data.get("top1"), (int, float))


def has_checkpoints(run: Path) -> bool:
    folder = run / "checkpoints"
    return folder.is_dir() and any(path.suffix == ".pt" for path in folder.iterdir())
