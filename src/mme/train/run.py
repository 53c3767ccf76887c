"""A job's surroundings: process group, run folder (written once inputs check out), logs, SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

from mme.errors import ConfigError
from mme.train.checkpoint import CheckpointDir, load_checkpoint
from mme.train.config_loader import to_dict, write_config
from mme.train.distributed import DistEnv, cpu_threads, init_distributed, shutdown_distributed
from mme.utils.atomic import atomic_write_json
from mme.utils.jsonfile import read_json
from mme.utils.logging import RunLog


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an exception in a :class:`Run` (``mme`` reports it like Ctrl-C)."""


class Run:
    """Process group + run folder + RunLog + TensorBoard (+ checkpoints); ``where`` says how far it got."""

    def __init__(self, config: Any, command: str, training: bool = True) -> None:
        runtime = config.runtime
        self.config = config
        self.command = command
        self.out = Path(runtime.output_dir)
        self.checkpoints = (
            CheckpointDir(self.out / "checkpoints", keep_last=runtime.keep_last) if training else None
        )
        if training and runtime.resume is None and self.checkpoints.has_any():
            raise ConfigError(
                f"{self.out} already holds checkpoints of a run; pass --resume auto to continue it "
                "or choose another runtime.output_dir"
            )
        self.env: DistEnv = init_distributed(runtime.device)
        self.log = RunLog(self.out, command, is_main=self.env.is_main, defer_files=True)
        self.where: Callable[[], dict[str, Any]] = dict
        self._resumed: dict[str, Any] | None = None
        self._sigterm_before: Any = None  # the handler to restore, once ours is installed
        self._sigterm_installed = False
        self._threads_before = torch.get_num_threads()
        if self.device.type == "cpu":
            threads = cpu_threads(runtime.workers, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
            if threads is not None:
                torch.set_num_threads(threads)
        self._tensorboard = None
        self._want_tensorboard = bool(getattr(runtime, "tensorboard", False)) and self.env.is_main
        seed_everything(runtime.seed + self.env.rank)

    @property
    def device(self) -> torch.device:
        return self.env.device

    @property
    def is_main(self) -> bool:
        return self.env.is_main

    def find_resume(self) -> dict[str, Any] | None:
        """The checkpoint named by ``runtime.resume`` (``auto``: the latest intact one, if any)."""
        resume = self.config.runtime.resume
        if resume is None:
            return None
        if resume == "auto":
            found = self.checkpoints.latest(self.log) if self.checkpoints is not None else None
            if found is None:
                self.log.info(
                    "resume=auto: no checkpoint in %s, starting from scratch", self.out / "checkpoints"
                )
                return None
            path, state = found
        else:
            path, state = Path(resume), load_checkpoint(resume, for_resume=True)
        self._resumed = {"checkpoint": str(path), "step": int(state["step"]), "epoch": int(state["epoch"])}
        changed = changed_keys(
            state["config"], to_dict(self.config), ignore=("runtime.resume", "runtime.output_dir")
        )
        if changed:
            self.log.warning("the config differs from the checkpoint's in: %s", ", ".join(changed))
        return state

    def report_bad_videos(self, dataset: Any) -> int:
        """Log how many bad videos (replaced by other samples) the loaders met so far."""
        count = int(getattr(dataset, "bad_video_count", 0))
        if count:
            self.log.warning("%d bad video(s) replaced so far; see %s", count, self.out / "bad_videos")
        return count

    def start(self) -> None:
        """Open the logs, write the resolved config and the start (and resume) events, inputs checked."""
        self.log.open_files()
        if self.is_main:
            write_config(self.config, self.out / "config.yaml")
        threads = f" ({torch.get_num_threads()} threads each)" if self.device.type == "cpu" else ""
        where = f"{self.env.world_size} process(es) on {self.device}{threads}"
        self.log.event(
            "start",
            human=f"{self.command}: output {self.out}, {where}",
            world_size=self.env.world_size,
            device=str(self.device),
            threads=torch.get_num_threads(),
        )
        if self._resumed is not None:
            step = self._resumed["step"]
            self.log.event(
                "resume",
                human=f"resuming from {self._resumed['checkpoint']} (step {step}, epoch "
                f"{self._resumed['epoch']}); records of later steps logged before this line are superseded",
                **self._resumed,
            )

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        """TensorBoard scalars ``<prefix>/<name>`` (rank 0 only; opened lazily, it imports slowly)."""
        if not self._want_tensorboard:
            return
        if self._tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.out / "tensorboard"))
        for name, value in values.items():
            self._tensorboard.add_scalar(f"{prefix}/{name}", value, step)

    def write_summary(self, summary: dict[str, Any], human: str) -> None:
        if self.is_main:
            atomic_write_json(self.out / "summary.json", summary)
        self.log.event("summary", human=human, **summary)

    def close(self, clean: bool = True) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        self.log.close()
        torch.set_num_threads(self._threads_before)
        shutdown_distributed(wait_for_peers=clean)

    def __enter__(self) -> Run:
        if threading.current_thread() is threading.main_thread():  # only there can signals be handled
            self._sigterm_before = signal.signal(signal.SIGTERM, _raise_terminated)
            self._sigterm_installed = True
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        try:
            if isinstance(error, KeyboardInterrupt):
                self._record_interrupt(error)
        finally:
            if self._sigterm_installed:
                # None: a handler not set from Python; the default is the best stand-in.
                before = self._sigterm_before if self._sigterm_before is not None else signal.SIG_DFL
                signal.signal(signal.SIGTERM, before)
                self._sigterm_installed = False
            self.close(clean=error is None)

    def _record_interrupt(self, error: KeyboardInterrupt) -> None:
        """The ``interrupted`` event: which signal, how far the job got, where it can resume."""
        name = "SIGTERM" if isinstance(error, Terminated) else "SIGINT"
        where = self.where()
        steps = self.checkpoints.steps() if self.checkpoints is not None else []
        last = str(steps[-1][1]) if steps else None
        reached = ", ".join(f"{key} {value}" for key, value in where.items())
        resume = f"; --resume auto continues from {last}" if last else ""
        self.log.event(
            "interrupted",
            human=f"interrupted ({name}){' at ' + reached if reached else ''}{resume}",
            signal=name,
            **where,
            last_checkpoint=last,
        )


def changed_keys(
    old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = (), prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    changed = []
    for key in sorted(set(old) | set(new)):
        dotted = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if dotted in ignore:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changed.extend(changed_keys(a, b, ignore, dotted + "."))
        elif a != b:
            changed.append(dotted)
    return changed


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_finished(run: Path) -> bool:
    """A pretrain / finetune run folder that finished and saved its final model."""
    from mme.models.saving import model_intact

    summary = read_json(run / "summary.json")
    return isinstance(summary, dict) and summary.get("finished") is True and model_intact(run / "model")


def has_checkpoints(run: Path) -> bool:
    """What makes :class:`Run` refuse the folder without ``--resume``."""
    return CheckpointDir(run / "checkpoints").has_any()
