"""Plots of jobs' JSON-lines logs and test accuracies, one colour per method (the demo's figures):
pre-training losses, fine-tuning curves, accuracy bars."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mme.errors import DataError
from mme.visualize.canvas import new_figure, save_png

# One colour per method, the same in every figure.
COLOURS = {"mme": "#d62728", "pixel": "#1f77b4", "none": "#7f7f7f"}


def read_events(path: Path, kind: str) -> list[dict[str, Any]]:
    """The events of one kind from a job's ``<name>.jsonl``, in order; for a step logged twice
    (a resumed job appends to the file) the later record wins."""
    if not path.is_file():
        raise DataError(f"{path} does not exist: the job that writes it has not run")
    by_step: dict[Any, dict[str, Any]] = {}
    ordered: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise DataError(f"{path}:{number} is not a JSON line: {error}") from None
        if record.get("kind") != kind:
            continue
        key = record.get("step")
        if key is None:
            ordered.append(record)
        else:
            by_step[key] = record
    return ordered + [by_step[key] for key in sorted(by_step)]


def pretrain_loss_figure(
    runs: Sequence[tuple[str, str, Path]], out: Path, floors: dict[str, float] | None = None
) -> Path:
    """One panel per pre-training method (key, label, pretrain.jsonl): total loss and each
    target's term per step, each target's context-free floor dotted (``floors``: name → loss).

    Each method gets its own axis: the losses have different units (a 32-value trajectory +
    108-value HOG error vs a 1536-value pixel error).
    """
    floors = floors or {}
    figure = new_figure(5.0 * len(runs), 3.6)
    axes = figure.subplots(1, len(runs), squeeze=False)[0]
    for ax, (key, label, path) in zip(axes, runs, strict=True):
        events = read_events(path, "train")
        if not events:
            raise DataError(f"{path} holds no training steps")
        steps = [event["step"] for event in events]
        terms = sorted({name for event in events for name in event if name.startswith("loss_")})
        ax.plot(
            steps, [event["loss"] for event in events], color=COLOURS.get(key, "black"), lw=2, label="total"
        )
        for term in terms if len(terms) > 1 else []:
            ax.plot(steps, [event[term] for event in events], lw=1, ls="--", label=term.removeprefix("loss_"))
        for term in terms:
            target = term.removeprefix("loss_")
            if target in floors:
                ax.axhline(floors[target], color="black", ls=":", lw=1, label=f"{target}: context-free floor")
        ax.set_title(f"pre-training: {label}")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("masked loss (sum over target dims)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_png(figure, out)


def finetune_figure(runs: Sequence[tuple[str, str, Path]], out: Path, chance: float) -> Path:
    """Fine-tuning loss per step and validation top-1 per epoch, the methods overlaid."""
    figure = new_figure(11.0, 3.8)
    loss_ax, val_ax = figure.subplots(1, 2)
    for key, label, path in runs:
        colour = COLOURS.get(key, "black")
        steps = read_events(path, "train")
        loss_ax.plot([e["step"] for e in steps], [e["loss"] for e in steps], color=colour, label=label)
        epochs = [e for e in read_events(path, "epoch") if "val_top1" in e]
        val_ax.plot(
            [e["epoch"] + 1 for e in epochs], [e["val_top1"] for e in epochs], "o-", color=colour, label=label
        )
    loss_ax.set_title("fine-tuning loss")
    loss_ax.set_xlabel("optimiser step")
    loss_ax.set_ylabel("cross-entropy")
    val_ax.axhline(chance, color="black", ls=":", lw=1, label=f"chance ({chance:.1f}%)")
    val_ax.set_title("validation top-1 (one centred clip)")
    val_ax.set_xlabel("epoch")
    val_ax.set_ylabel("top-1 (%)")
    val_ax.set_ylim(0, 100)
    for ax in (loss_ax, val_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_png(figure, out)


def accuracy_figure(
    methods: Sequence[tuple[str, str]],
    finetune: Sequence[float],
    probe: Sequence[float],
    out: Path,
    chance: float,
    caption: str,
    intervals: Sequence[Sequence[tuple[float, float]]] | None = None,
) -> Path:
    """Grouped bars: fine-tuned and linear-probe test top-1 of each method; ``intervals``
    (fine-tune's, then the probe's (low, high) per method) are drawn as error bars."""
    figure = new_figure(7.5, 4.2)
    ax = figure.subplots()
    width = 0.38
    positions = list(range(len(methods)))
    bounds = intervals or (None, None)
    for offset, values, name, hatch, interval in (
        (-width / 2, finetune, "fine-tuned", None, bounds[0]),
        (width / 2, probe, "linear probe (frozen)", "//", bounds[1]),
    ):
        errors = None
        if interval is not None:
            errors = [
                [v - low for v, (low, _) in zip(values, interval, strict=True)],
                [high - v for v, (_, high) in zip(values, interval, strict=True)],
            ]
        ax.bar(
            [p + offset for p in positions],
            values,
            width,
            color=[COLOURS.get(key, "black") for key, _ in methods],
            alpha=1.0 if hatch is None else 0.55,
            hatch=hatch,
            edgecolor="black",
            label=name,
            yerr=errors,
            capsize=3,
        )
        # Each value above its interval, where neither the bar's hatch nor the chance line hides it.
        tops = values if interval is None else [high for _, high in interval]
        for x, value, top in zip([p + offset for p in positions], values, tops, strict=True):
            ax.text(x, top + 1.5, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(chance, color="black", ls=":", lw=1, label=f"chance ({chance:.1f}%)")
    ax.set_xticks(positions, [label for _, label in methods])
    ax.set_ylabel("test top-1 (%)")
    ax.set_ylim(0, 105)
    ax.set_title("synthetic motion classes: test accuracy by pre-training")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    figure.text(0.01, -0.02, caption, fontsize=8, ha="left", va="top", wrap=True)
    return save_png(figure, out)
