"""The demo's jobs: a recipe of configs/demo/ plus the ``--set`` lines of this demo folder and preset."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mme.demo.layout import DemoLayout
from mme.demo.settings import DemoSettings, Method
from mme.eval.evaluate import eval_done
from mme.models.saving import model_intact
from mme.train.config_loader import RECIPES, load_config
from mme.train.run import has_checkpoints, run_finished
from mme.train.run_config import EvalConfig, FinetuneConfig, PretrainConfig, ProbeConfig, load_run_config
from mme.utils.jsonfile import read_json

SCHEMAS: dict[str, type] = {
    "pretrain": PretrainConfig,
    "finetune": FinetuneConfig,
    "probe": ProbeConfig,
    "eval": EvalConfig,
}


@dataclass(frozen=True)
class Job:
    """``mme <command> --config configs/demo/<recipe> --set <overrides>``, writing into ``output``."""

    command: str
    recipe: str
    output: Path
    overrides: tuple[str, ...]

    def config(self, resume: str | None = None) -> Any:
        """The job's config, validated (its input files must exist)."""
        return load_run_config(SCHEMAS[self.command], self._recipe(), self.overrides, resume=resume)

    def resolved(self) -> Any:
        """The job's config before any of its inputs exist (not validated)."""
        return load_config(SCHEMAS[self.command], self._recipe(), self.overrides)

    def _recipe(self) -> Path:
        # The installed recipe: a configs/ folder in the working directory must not replace it.
        return RECIPES / "demo" / self.recipe

    def command_line(self) -> str:
        sets = [f"--set {shlex.quote(item)}" for item in self.overrides]
        return " ".join(["mme", self.command, "--config", f"configs/demo/{self.recipe}", *sets])

    def done(self) -> bool:
        """Its outputs exist and are intact: a finished run, its model, its test's top-1."""
        if self.command == "eval":
            return eval_done(self.output / "eval.json")
        if self.command == "probe":
            summary = read_json(self.output / "summary.json")
            return isinstance(summary, dict) and "val_top1" in summary and model_intact(self.output / "model")
        tested = self.command == "pretrain" or eval_done(self.output / "eval" / "eval.json")
        return run_finished(self.output) and tested

    def run(self) -> None:
        """Run the job; a training job continues from the checkpoints its folder holds."""
        from mme.eval.evaluate import run_eval
        from mme.eval.probe import run_probe
        from mme.tasks.classify import run_finetune
        from mme.tasks.pretrain import run_pretrain

        jobs = {"pretrain": run_pretrain, "finetune": run_finetune, "probe": run_probe, "eval": run_eval}
        training = self.command in ("pretrain", "finetune")
        jobs[self.command](self.config(resume="auto" if training and has_checkpoints(self.output) else None))


def _job(settings: DemoSettings, command: str, recipe: str, output: Path, paths: dict[str, Path]) -> Job:
    """The recipe with this folder's paths, the demo's seed and the preset's values."""
    overrides = [f"{key}={path.resolve()}" for key, path in paths.items()]
    overrides += [f"runtime.output_dir={output.resolve()}", f"runtime.seed={settings.seed}"]
    return Job(command, recipe, output, (*overrides, *settings.overrides.get(command, ())))


def pretrain_job(settings: DemoSettings, layout: DemoLayout, method: Method, output: Path) -> Job:
    paths = {"data.train_list": layout.data / "train.csv"}
    if method.needs_trajectories:
        paths["data.traj_root"] = layout.traj
    return _job(settings, "pretrain", f"pretrain/{method.key}.yaml", output, paths)


def finetune_job(settings: DemoSettings, layout: DemoLayout, method: Method) -> Job:
    paths = {"model.init_from": layout.encoder(method)}
    paths.update({f"data.{split}_list": layout.data / f"{split}.csv" for split in ("train", "val", "test")})
    return _job(settings, "finetune", "finetune.yaml", layout.finetune(method), paths)


def probe_job(settings: DemoSettings, layout: DemoLayout, method: Method) -> Job:
    paths = {"model.init_from": layout.encoder(method)}
    paths.update({f"data.{split}_list": layout.data / f"{split}.csv" for split in ("train", "val")})
    return _job(settings, "probe", "probe.yaml", layout.probe(method), paths)


def probe_eval_job(settings: DemoSettings, layout: DemoLayout, method: Method) -> Job:
    paths = {"checkpoint": layout.probe(method) / "model", "data.test_list": layout.data / "test.csv"}
    return _job(settings, "eval", "eval.yaml", layout.probe_eval(method), paths)
