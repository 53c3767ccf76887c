"""``run_demo``: the stages not done yet, then the report; one demo per folder, with its settings."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mme.demo.jobs import pretrain_job
from mme.demo.layout import DemoLayout
from mme.demo.pipeline import build_stages
from mme.demo.settings import METHODS, DemoSettings, full_settings, quick_settings
from mme.errors import ConfigError
from mme.utils.atomic import atomic_write_json
from mme.utils.jsonfile import read_json
from mme.utils.lock import exclusive
from mme.utils.logging import RunLog, format_duration
from mme.utils.machine import cpu_seconds, load_average, model_threads


def run_demo(
    out: str | os.PathLike[str] = "demo_out",
    quick: bool = False,
    seed: int = 0,
    settings: DemoSettings | None = None,
) -> dict[str, Any]:
    """Run (or finish) the demo in ``out``; returns ``results.json``. ``settings`` replaces the preset."""
    if settings is None:
        settings = quick_settings(seed) if quick else full_settings(seed)
    layout = DemoLayout(Path(out))
    layout.out.mkdir(parents=True, exist_ok=True)
    busy = f"another mme demo is running in {layout.out}; wait for it or use another --out"
    with exclusive(layout.out / "demo.lock", busy):
        check_state(settings, layout)
        workers = (
            pretrain_job(settings, layout, METHODS[0], layout.pretrain(METHODS[0])).resolved().runtime.workers
        )
        with model_threads(workers):
            return _run_stages(settings, layout)


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


def _run_stages(settings: DemoSettings, layout: DemoLayout) -> dict[str, Any]:
    from mme.demo.report import write_report

    started, load_start = time.perf_counter(), load_average()
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
            header = f"[{number}/{len(stages)}] {stage.title}"
            if stage.done():
                log.event(
                    "stage", human=f"==== {header}: done already, skipped", name=stage.name, status="skipped"
                )
                timings.append({"name": stage.name, "status": "skipped", "seconds": 0.0})
                continue
            elapsed = format_duration(time.perf_counter() - started)
            log.event("stage", human=f"==== {header} (demo time {elapsed})", name=stage.name, status="start")
            begin, cpu_begin = time.perf_counter(), cpu_seconds()
            stage.run()
            seconds, cpu = round(time.perf_counter() - begin, 2), round(cpu_seconds() - cpu_begin, 2)
            if not stage.done():
                raise ConfigError(
                    f"demo stage {stage.name} ran but its outputs are incomplete; see the log above"
                )
            timing = {"name": stage.name, "status": "ran", "seconds": seconds, "cpu_seconds": cpu}
            log.event("stage", human=f"==== {header}: finished in {format_duration(seconds)}", **timing)
            timings.append(timing)
        log.event(
            "stage", human=f"==== [figures] writing figures and results into {layout.out}", name="report"
        )
        commands = {stage.name: stage.command for stage in stages if stage.command}
        loads = (load_start, load_average())
        results = write_report(settings, layout, commands, timings, time.perf_counter() - started, loads, log)
        log.event("done", human=f"mme demo done in {format_duration(time.perf_counter() - started)}")
    return results
