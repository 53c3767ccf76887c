"""The demo's results read back from the jobs' own files, the table and the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mme.demo.layout import DemoLayout
from mme.demo.settings import FIGURE_CLASSES, METHODS, DemoSettings, Method
from mme.errors import DataError
from mme.eval.metrics import wilson_interval
from mme.utils.atomic import atomic_write_json, atomic_write_text
from mme.utils.jsonfile import read_json
from mme.utils.logging import RunLog, format_duration, job_seconds
from mme.utils.machine import machine

RESULTS_FORMAT = "mme-demo-results-1"


def _eval_numbers(path: Path, run: Path, summary_key: str) -> dict[str, Any]:
    """The numbers of an eval.json, and one from the summary of the ``run`` it tests."""
    data = read_json(path)
    if not isinstance(data, dict) or "top1" not in data:
        raise DataError(f"{path} holds no top-1 accuracy: the evaluation that writes it has not finished")
    keep = ("top1", "top5", "view_top1", "view_top5", "videos", "views_per_video")
    numbers = {"eval_file": str(path), **{key: data[key] for key in keep if key in data}}
    if "videos" in data:
        numbers["top1_interval95"] = list(wilson_interval(float(data["top1"]), int(data["videos"])))
    numbers[summary_key] = (read_json(run / "summary.json") or {}).get(summary_key)
    return {**numbers, "run": str(run)}


def method_results(layout: DemoLayout, method: Method) -> dict[str, Any]:
    """What the jobs of one method wrote, with the paths of the files read."""
    pretrain = None
    if method.pretrains:
        run = layout.pretrain(method)
        summary = read_json(run / "summary.json") or {}
        pretrain = {
            "run": str(run),
            "seconds": round(job_seconds(run / "pretrain.jsonl"), 2),
            "steps": summary.get("steps"),
            "final_losses": summary.get("final"),
            "summary_file": str(run / "summary.json"),
        }
    return {
        "label": method.label,
        "targets": list(method.predict),
        "pretrain": pretrain,
        "finetune": _eval_numbers(layout.finetune_eval(method), layout.finetune(method), "best_val_top1"),
        "linear_probe": _eval_numbers(
            layout.probe_eval(method) / "eval.json", layout.probe(method), "val_top1"
        ),
    }


def results_table(results: dict[str, Any]) -> str:
    """The summary table (Markdown, readable as plain text)."""
    lines = [
        "| method | fine-tune top-1 (%) | linear-probe top-1 (%) | pre-train time |",
        "|---|---:|---:|---:|",
    ]
    for entry in results["methods"].values():
        time_text = "—" if entry["pretrain"] is None else format_duration(entry["pretrain"]["seconds"])
        accuracies = [entry["finetune"], entry["linear_probe"]]
        lines.append(f"| {entry['label']} | {' | '.join(map(_accuracy_text, accuracies))} | {time_text} |")
    dataset, views = (
        results["dataset"],
        next(iter(results["methods"].values()))["finetune"]["views_per_video"],
    )
    lines.append(
        f"\n{dataset['classes']} motion classes (chance {dataset['chance_top1']:.1f}%), "
        f"{dataset['splits']['test']} test videos x {views} views; preset {results['preset']}, seed "
        f"{results['seed']}. In brackets: 95% interval (Wilson) of each accuracy on this many test videos."
    )
    return "\n".join(lines)


def _accuracy_text(numbers: dict[str, Any]) -> str:
    interval = numbers.get("top1_interval95")
    text = f"{numbers['top1']:.1f}"
    return text if interval is None else f"{text} ({interval[0]:.0f}–{interval[1]:.0f})"


def target_floors(settings: DemoSettings, layout: DemoLayout, log: RunLog) -> dict[str, Any]:
    """Each target's context-free floor on the MME run's data and config, logged beside the final losses."""
    from mme.eval.target_floors import run_floors

    measured = run_floors(layout.pretrain(METHODS[0]), settings.floor_samples)
    for method in (m for m in METHODS if m.pretrains):
        final = (read_json(layout.pretrain(method) / "summary.json") or {}).get("final") or {}
        for target in method.predict:
            ended, floor = (
                final.get(f"loss_{target}", final.get("loss")),
                measured["floors"][target]["dataset_mean"],
            )
            message = "%s pre-training: %s loss ended at %s; its context-free floor is %.4g"
            log.info(message, method.key, target, "?" if ended is None else f"{ended:.4g}", floor)
    return measured


def _figure_video(layout: DemoLayout) -> Path:
    """A test video of a class whose motion varies inside a patch (rotation, zoom), else the first."""
    from mme.io.lists import read_list

    entries = read_list(layout.data / "test.csv")
    classes = read_json(layout.data / "classes.json") or []
    for wanted in FIGURE_CLASSES:
        for entry in entries:
            if entry.label < len(classes) and classes[entry.label] == wanted:
                return Path(entry.path)
    return Path(entries[0].path)


def write_report(
    settings: DemoSettings,
    layout: DemoLayout,
    commands: dict[str, str],
    timings: list[dict[str, Any]],
    wall_seconds: float,
    load_average: tuple[list[float] | None, list[float] | None],
    log: RunLog,
) -> dict[str, Any]:
    """Figures, ``results.json`` and ``results.md``; prints the table. Returns the results."""
    from mme.visualize.figures import accuracy_figure, finetune_figure, pretrain_loss_figure
    from mme.visualize.trajectories import trajectory_figure

    description = read_json(layout.data / "dataset.json") or {}
    classes = len(description.get("classes", [])) or settings.synth_config().classes
    chance = 100.0 / classes
    methods = {method.key: method_results(layout, method) for method in METHODS}
    floors = target_floors(settings, layout, log)
    runs = [(m.key, m.label, layout.pretrain(m) / "pretrain.jsonl") for m in METHODS if m.pretrains]
    mean_floors = {name: values["dataset_mean"] for name, values in floors["floors"].items()}
    paths = {
        "pretrain_loss": pretrain_loss_figure(runs, layout.figures / "pretrain_loss.png", mean_floors),
        "finetune": finetune_figure(
            [(m.key, m.label, layout.finetune(m) / "finetune.jsonl") for m in METHODS],
            layout.figures / "finetune.png",
            chance,
        ),
    }
    kinds, views = ("finetune", "linear_probe"), methods[METHODS[0].key]["finetune"]["views_per_video"]
    top1 = {kind: [methods[m.key][kind]["top1"] for m in METHODS] for kind in kinds}
    paths["accuracy"] = accuracy_figure(
        [(m.key, m.label) for m in METHODS],
        top1["finetune"],
        top1["linear_probe"],
        layout.figures / "accuracy.png",
        chance,
        f"{description.get('splits', {}).get('test', '?')} test videos x {views} views (scores averaged "
        "per video), 95% Wilson intervals; read from the eval.json files listed in results.json.",
        [[tuple(methods[m.key][kind]["top1_interval95"]) for m in METHODS] for kind in kinds],
    )
    encoder, video = layout.encoder(METHODS[0]), _figure_video(layout)
    picture = trajectory_figure(encoder, video, layout.figures / "trajectories.png", seed=settings.seed)
    paths["trajectories"] = Path(picture["path"])
    log.info("figures: %s", ", ".join(str(p) for p in paths.values()))

    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "preset": settings.preset,
        "seed": settings.seed,
        "settings": settings.as_dict(),
        "dataset": {
            "path": str(layout.data),
            "classes": classes,
            "class_names": description.get("classes"),
            "splits": description.get("splits"),
            "chance_top1": chance,
        },
        "methods": methods,
        "target_floors": floors,
        "figures": {name: str(path) for name, path in paths.items()},
        "trajectory_figure": {**picture, "video": str(video), "checkpoint": str(encoder)},
        "stages": timings,
        "commands": commands,
        "wall_seconds": round(wall_seconds, 2),
        "load_average": {"start": load_average[0], "end": load_average[1]},
        "machine": machine(),
    }
    atomic_write_json(layout.results, results)
    table = results_table(results)
    atomic_write_text(layout.table, table + "\n")
    log.event("results", human=f"results: {layout.results}", path=str(layout.results))
    print("\n" + table + "\n", flush=True)
    return results
