"""``mme demo``: the stages, run in order through the public jobs, each skipped when already done.

Stages (for each method where it applies): generate the synthetic dataset → save the random
initialisation (``none``) → pre-train ``mme`` and ``pixel`` → linear-probe the three frozen
encoders and test each probe with ``mme eval`` (the cheap, direct measure of the representation,
so it comes first) → fine-tune the three (with the multi-view test at the end) → figures,
``results.json`` and the table.

Resuming: a stage whose outputs exist and are intact (summary says finished, model weights
complete, eval.json holds a top-1) is skipped; an interrupted training job continues from its
latest checkpoint (``--resume auto``); the dataset generator keeps the videos already written.
A demo folder remembers its settings (``demo.json``) and refuses to mix in runs of others.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mme.demo.layout import (
    DemoLayout,
    eval_done,
    has_checkpoints,
    model_intact,
    read_json,
    training_done,
)
from mme.demo.settings import (
    METHODS,
    DemoSettings,
    Method,
    eval_overrides,
    extract_arguments,
    finetune_overrides,
    full_settings,
    init_overrides,
    pretrain_overrides,
    probe_overrides,
    quick_settings,
    traj_dir,
)
from mme.errors import ConfigError, DataError
from mme.eval.evaluate import run_eval
from mme.eval.probe import run_probe
from mme.tasks.classify import run_finetune
from mme.tasks.pretrain import run_pretrain
from mme.train.run_config import EvalConfig, FinetuneConfig, PretrainConfig, ProbeConfig, load_run_config
from mme.utils.atomic import atomic_write_json
from mme.utils.logging import RunLog, format_duration


@dataclass
class Stage:
    """One step of the demo: a title, a test for "already done", and the call that does it."""

    name: str
    title: str
    done: Callable[[], bool]
    run: Callable[[], None]
    # The equivalent command line (for results.json and the docs); None for in-process steps.
    command: str | None = None


def command_line(command: str, overrides: list[str]) -> str:
    return " ".join(["mme", command, *(f"--set {shlex.quote(item)}" for item in overrides)])


def dataset_done(settings: DemoSettings, layout: DemoLayout) -> bool:
    """dataset.json says complete, with these parameters, and every listed video exists."""
    from mme.data.synthetic import FORMAT
    from mme.io.lists import read_list

    description = read_json(layout.data / "dataset.json")
    if not isinstance(description, dict) or description.get("complete") is not True:
        return False
    expected = settings.synth_config()
    parameters = {k: v for k, v in vars(expected).items() if k != "class_names"}
    if description.get("format") != FORMAT or description.get("parameters") != parameters:
        return False
    try:
        entries = [
            entry for split in ("train", "val", "test") for entry in read_list(layout.data / f"{split}.csv")
        ]
    except DataError:  # a missing or damaged list: regenerate (the generator resumes)
        return False
    return all(Path(entry.path).is_file() for entry in entries)


def build_stages(settings: DemoSettings, layout: DemoLayout) -> list[Stage]:
    """Every stage of the demo, in order."""
    data = layout.data.resolve()
    stages: list[Stage] = []

    def synth() -> None:
        from mme.data.synthetic import generate_dataset

        generate_dataset(settings.synth_config(), layout.data, workers=settings.synth_workers)

    classes = settings.synth_config()
    stages.append(
        Stage(
            "data",
            f"synthetic motion dataset: {classes.classes} classes x {classes.videos_per_class} videos "
            f"of {classes.frames} frames at {classes.width}x{classes.height}",
            lambda: dataset_done(settings, layout),
            synth,
            f"mme synth --out {layout.data} --classes {classes.classes} --videos-per-class "
            f"{classes.videos_per_class} --frames {classes.frames} --size {classes.width}x{classes.height} "
            f"--seed {settings.seed}",
        )
    )

    if any(m.needs_trajectories for m in METHODS) and settings.trajectories == "offline":
        stages.append(_extract_stage(settings, data))

    none = next(m for m in METHODS if not m.pretrains)

    def save_random_init() -> None:
        from mme.models import save_model
        from mme.tasks.pretrain import pretrain_model
        from mme.train.run import seed_everything

        overrides = init_overrides(settings, data, layout.pretrain(none).resolve())
        config = load_run_config(PretrainConfig, None, overrides)
        # What run_pretrain does before it builds its model: the same seed, the same constructor.
        seed_everything(config.runtime.seed)
        model = pretrain_model(config)
        model.model_name = config.model.name
        save_model(model, layout.encoder(none), overwrite=True)

    stages.append(
        Stage(
            "init",
            f"random initialisation for '{none.key}' (where pre-training starts, seed {settings.seed})",
            lambda: model_intact(layout.encoder(none)),
            save_random_init,
        )
    )

    for method in METHODS:
        if not method.pretrains:
            continue
        overrides = pretrain_overrides(settings, method, data, layout.pretrain(method).resolve())
        stages.append(
            Stage(
                f"pretrain-{method.key}",
                f"pre-train {method.label}: {settings.pretrain_epochs} epochs of "
                f"{settings.pretrain_batch}-clip batches",
                _bound(training_done, layout.pretrain(method)),
                _training_job(PretrainConfig, run_pretrain, overrides, layout.pretrain(method)),
                command_line("pretrain", overrides),
            )
        )

    for method in METHODS:
        overrides = probe_overrides(
            settings, layout.encoder(method).resolve(), data, layout.probe(method).resolve()
        )
        stages.append(
            Stage(
                f"probe-{method.key}",
                f"linear probe of the frozen encoder of {method.label}",
                _bound(_probe_done, layout, method),
                _job(ProbeConfig, run_probe, overrides),
                command_line("probe", overrides),
            )
        )
        eval_set = eval_overrides(
            settings, (layout.probe(method) / "model").resolve(), data, layout.probe_eval(method).resolve()
        )
        stages.append(
            Stage(
                f"probe-eval-{method.key}",
                f"multi-view test of the linear probe of {method.label}",
                _bound(eval_done, layout.probe_eval(method) / "eval.json"),
                _job(EvalConfig, run_eval, eval_set),
                command_line("eval", eval_set),
            )
        )
    for method in METHODS:
        overrides = finetune_overrides(
            settings, layout.encoder(method).resolve(), data, layout.finetune(method).resolve()
        )
        stages.append(
            Stage(
                f"finetune-{method.key}",
                f"fine-tune from {method.label}: {settings.finetune_epochs} epochs, then the "
                f"{settings.test_clips}x{settings.test_crops}-view test",
                _bound(_finetune_done, layout, method),
                _training_job(FinetuneConfig, run_finetune, overrides, layout.finetune(method)),
                command_line("finetune", overrides),
            )
        )

    return stages


def _extract_stage(settings: DemoSettings, data: Path) -> Stage:
    """``mme extract`` of the training videos: the offline trajectories MME pre-trains on."""
    arguments = extract_arguments(settings, data)

    def run() -> None:
        from mme.motion.extract import run_extraction

        workers = int(arguments[arguments.index("--workers") + 1])
        summary = run_extraction(
            data / "train.csv", traj_dir(data), settings=_extract_settings(settings), workers=workers
        )
        if summary.failed:
            raise DataError(f"mme extract failed on {summary.failed} videos; see {summary.failures_path}")

    return Stage(
        "extract",
        f"trajectories of the training videos (mme extract, flow {settings.extract_flow}, once)",
        lambda: _extract_done(settings, data),
        run,
        " ".join(["mme", "extract", *(shlex.quote(item) for item in arguments)]),
    )


def _extract_settings(settings: DemoSettings) -> Any:
    from mme.motion.extract import ExtractSettings

    return ExtractSettings(flow=settings.extract_flow)


def _extract_done(settings: DemoSettings, data: Path) -> bool:
    """Every training video has an intact trajectory file made with these settings."""
    from mme.io.lists import list_root, read_list
    from mme.motion.extract import is_done, trajectory_outputs

    listing = data / "train.csv"
    try:
        entries = read_list(listing)
    except DataError:
        return False
    extract = _extract_settings(settings)
    outputs = trajectory_outputs(entries, traj_dir(data), list_root(listing), listing)
    return all(is_done(video, out, extract) for video, out in outputs.items())


def _bound(check: Callable[..., bool], *args: Any) -> Callable[[], bool]:
    return lambda: check(*args)


def _finetune_done(layout: DemoLayout, method: Method) -> bool:
    return training_done(layout.finetune(method)) and eval_done(layout.finetune_eval(method))


def _probe_done(layout: DemoLayout, method: Method) -> bool:
    summary = read_json(layout.probe(method) / "summary.json")
    return (
        isinstance(summary, dict) and "val_top1" in summary and model_intact(layout.probe(method) / "model")
    )


def _job(schema: type, job: Callable[[Any], Any], overrides: list[str]) -> Callable[[], None]:
    """A probe / eval job: its config from the dataclass defaults and the overrides."""

    def run() -> None:
        job(load_run_config(schema, None, overrides))

    return run


def _training_job(
    schema: type, job: Callable[[Any], Any], overrides: list[str], folder: Path
) -> Callable[[], None]:
    """A pretrain / finetune job; continues from the folder's checkpoints when it has some."""

    def run() -> None:
        resume = "auto" if has_checkpoints(folder) else None
        job(load_run_config(schema, None, overrides, resume=resume))

    return run


def check_state(settings: DemoSettings, layout: DemoLayout) -> None:
    """Record the settings in a new demo folder; refuse a folder made with other settings."""
    wanted = json.loads(json.dumps(settings.as_dict()))
    previous = read_json(layout.state)
    if layout.state.exists() and not isinstance(previous, dict):
        raise ConfigError(f"{layout.state} is not readable JSON; delete it or choose another --out")
    if isinstance(previous, dict):
        if previous.get("settings") != wanted:
            old = previous.get("settings", {})
            differ = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
            raise ConfigError(
                f"{layout.out} holds a demo made with other settings (differing: {', '.join(differ)}; "
                f"it was preset {old.get('preset')!r}, seed {old.get('seed')}); "
                "use another --out or delete that folder"
            )
        return
    atomic_write_json(layout.state, {"format": "mme-demo-1", "settings": wanted})


def run_demo(
    out: str | os.PathLike[str] = "demo_out",
    quick: bool = False,
    seed: int = 0,
    settings: DemoSettings | None = None,
) -> dict[str, Any]:
    """Run (or finish) the demo in ``out``; returns the content of ``results.json``.

    ``settings`` replaces the preset (e.g. a longer budget: ``dataclasses.replace(full_settings(),
    preset="long", pretrain_epochs=60)``); ``quick`` and ``seed`` then do not apply.
    """
    if settings is None:
        settings = quick_settings(seed) if quick else full_settings(seed)
    layout = DemoLayout(Path(out))
    layout.out.mkdir(parents=True, exist_ok=True)
    with _exclusive(layout):
        check_state(settings, layout)
        with _model_threads(settings.workers):
            return _run_stages(settings, layout)


def _run_stages(settings: DemoSettings, layout: DemoLayout) -> dict[str, Any]:
    from mme.demo.report import write_report

    started = time.perf_counter()
    load_start = _load_average()
    with RunLog(layout.out, "demo") as log:
        log.event(
            "start",
            human=f"mme demo ({settings.preset}, seed {settings.seed}) into {layout.out}",
            preset=settings.preset,
            seed=settings.seed,
            load_average=load_start,
        )
        stages = build_stages(settings, layout)
        timings: list[dict[str, Any]] = []
        for number, stage in enumerate(stages, 1):
            elapsed = format_duration(time.perf_counter() - started)
            header = f"[{number}/{len(stages)}] {stage.title}"
            if stage.done():
                log.event(
                    "stage", human=f"==== {header}: done already, skipped", name=stage.name, status="skipped"
                )
                timings.append({"name": stage.name, "status": "skipped", "seconds": 0.0})
                continue
            log.event("stage", human=f"==== {header} (demo time {elapsed})", name=stage.name, status="start")
            begin, cpu_begin = time.perf_counter(), _cpu_seconds()
            stage.run()
            seconds, cpu = time.perf_counter() - begin, _cpu_seconds() - cpu_begin
            if not stage.done():
                raise ConfigError(
                    f"demo stage {stage.name} ran but its outputs are incomplete; see the log above"
                )
            log.event(
                "stage",
                human=f"==== {header}: finished in {format_duration(seconds)}",
                name=stage.name,
                status="ran",
                seconds=round(seconds, 2),
                cpu_seconds=round(cpu, 2),
            )
            timings.append(
                {
                    "name": stage.name,
                    "status": "ran",
                    "seconds": round(seconds, 2),
                    "cpu_seconds": round(cpu, 2),
                }
            )
        log.event(
            "stage", human=f"==== [figures] writing figures and results into {layout.out}", name="report"
        )
        results = write_report(
            settings,
            layout,
            stages,
            timings,
            wall_seconds=time.perf_counter() - started,
            load_average=(load_start, _load_average()),
            log=log,
        )
        log.event("done", human=f"mme demo done in {format_duration(time.perf_counter() - started)}")
    return results


@contextlib.contextmanager
def _exclusive(layout: DemoLayout) -> Iterator[None]:
    """Hold ``OUT/demo.lock`` so that two demos never write one folder at the same time."""
    try:
        import fcntl
    except ImportError:  # not POSIX (Windows): no advisory locks, run unguarded
        yield
        return
    with open(layout.out / "demo.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"another mme demo is running in {layout.out}; wait for it or use another --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _model_threads(workers: int) -> Iterator[None]:
    """Give the model the cores the loader workers leave (at least one thread).

    Each loader worker already uses one thread; a main process that also starts one thread per
    core oversubscribes a small machine, and PyTorch's spinning threads then slow every step
    several-fold when the cores are shared (measured: docs/demo.md).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, _cores() - workers))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (data-loader workers, encoders):
    with the wall time, it tells how busy the cores were (the machine may be shared)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None
