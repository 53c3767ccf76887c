"""Where the demo puts each stage's outputs under OUT (the tree is in docs/demo.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
