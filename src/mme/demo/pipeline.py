"""``mme demo``'s stages, in order, each skipped when its outputs exist and are intact: dataset,
trajectories, random initialisation, pre-training, linear probes and their test (the cheap, direct
measure of a representation, so first), fine-tuning with its test."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mme.demo.jobs import Job, finetune_job, pretrain_job, probe_eval_job, probe_job
from mme.demo.layout import DemoLayout
from mme.demo.settings import METHODS, DemoSettings
from mme.errors import DataError
from mme.models.saving import model_intact

EXTRACT_FLOW = "dis_medium"  # the offline trajectories' flow, at the videos' resolution


@dataclass
class Stage:
    """One step of the demo: a title, a test for "already done", and the call that does it."""

    name: str
    title: str
    done: Callable[[], bool]
    run: Callable[[], None]
    command: str | None = None  # the equivalent command line (results.json); None: in-process only


def build_stages(settings: DemoSettings, layout: DemoLayout) -> list[Stage]:
    """Every stage of the demo, in order."""
    mme, none = METHODS[0], METHODS[-1]
    init = pretrain_job(settings, layout, mme, layout.pretrain(none))
    stages, config = [_data_stage(settings, layout)], init.resolved()
    if config.data.trajectories == "offline":
        stages.append(_extract_stage(layout, config.runtime.workers))
    title = f"random initialisation for '{none.key}' (where pre-training starts, seed {settings.seed})"
    save = partial(_save_initial_model, init, layout.encoder(none))
    stages.append(Stage("init", title, partial(model_intact, layout.encoder(none)), save))
    for method in (m for m in METHODS if m.pretrains):
        job = pretrain_job(settings, layout, method, layout.pretrain(method))
        config = job.resolved()
        title = f"pre-train {method.label}: {config.schedule.epochs} epochs of {config.batch.per_gpu}-clip"
        stages.append(_job_stage(f"pretrain-{method.key}", title + " batches", job))
    for method in METHODS:
        title = f"linear probe of the frozen encoder of {method.label}"
        stages.append(_job_stage(f"probe-{method.key}", title, probe_job(settings, layout, method)))
        title = f"multi-view test of the linear probe of {method.label}"
        stages.append(_job_stage(f"probe-eval-{method.key}", title, probe_eval_job(settings, layout, method)))
    for method in METHODS:
        job = finetune_job(settings, layout, method)
        config = job.resolved()
        title = f"fine-tune from {method.label}: {config.schedule.epochs} epochs, then the "
        title += f"{config.data.test_clips}x{config.data.test_crops}-view test"
        stages.append(_job_stage(f"finetune-{method.key}", title, job))
    return stages


def _job_stage(name: str, title: str, job: Job) -> Stage:
    return Stage(name, title, job.done, job.run, job.command_line())


def _data_stage(settings: DemoSettings, layout: DemoLayout) -> Stage:
    from mme.data.synthetic import dataset_complete, generate_dataset

    synth = settings.synth_config()
    command = (
        f"mme synth --out {layout.data} --classes {synth.classes} --videos-per-class "
        f"{synth.videos_per_class} --frames {synth.frames} --size {synth.width}x{synth.height} "
        f"--val-fraction {synth.val_fraction} --test-fraction {synth.test_fraction} --seed {settings.seed}"
    )
    title = f"synthetic motion dataset: {synth.classes} classes x {synth.videos_per_class} videos "
    title += f"of {synth.frames} frames at {synth.width}x{synth.height}"
    run = partial(generate_dataset, synth, layout.data, workers=settings.synth_workers)
    return Stage("data", title, partial(dataset_complete, synth, layout.data), run, command)


def _extract_stage(layout: DemoLayout, job_workers: int) -> Stage:
    """``mme extract`` of the training videos, once: the offline trajectories MME pre-trains on."""
    from mme.motion.extract import ExtractSettings, list_done, run_extraction

    # At least 2 workers so the flows run in spawned processes: with one, OpenCV's thread pool starts
    # in the demo's process and its later forked loader workers hang (measured).
    listing, out, workers = layout.data.resolve() / "train.csv", layout.traj.resolve(), max(2, job_workers)
    extract = ExtractSettings(flow=EXTRACT_FLOW)

    def run() -> None:
        summary = run_extraction(listing, out, settings=extract, workers=workers)
        if summary.failed:
            raise DataError(f"mme extract failed on {summary.failed} videos; see {summary.failures_path}")

    arguments = ["--list", str(listing), "--out", str(out), "--flow", EXTRACT_FLOW, "--workers", str(workers)]
    title = f"trajectories of the training videos (mme extract, flow {EXTRACT_FLOW}, once)"
    done = partial(list_done, listing, out, extract)
    return Stage("extract", title, done, run, shlex.join(["mme", "extract", *arguments]))


def _save_initial_model(job: Job, folder: Path) -> None:
    from mme.tasks.pretrain import save_initial_model

    save_initial_model(job.config(), folder)
