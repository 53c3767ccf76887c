"""Run logging: human-readable lines and JSON lines side by side, plus progress with rate and ETA.

Every command a user runs writes ``<name>.log`` (what a person reads) and ``<name>.jsonl``
(one JSON object per event, for scripts and plots) into its output folder, and shows progress:
a tqdm bar on an interactive terminal, periodic log lines (count, rate, ETA) otherwise, so that
cluster logs stay readable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

_CONSOLE_FORMAT = "%(asctime)s %(levelname).1s %(name)s | %(message)s"


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time.

    A plain StreamHandler keeps the stream it was created with; when that stream is replaced and
    closed (pytest's capture, a notebook re-binding stderr) every later record fails to print.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the base class assigns the stream once at construction."""


def get_logger(name: str = "mme") -> logging.Logger:
    """The project's logger; the first call attaches a console handler (stderr)."""
    logger = logging.getLogger(name)
    root = logging.getLogger("mme")
    if not root.handlers:
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter(_CONSOLE_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    return logger


class RunLog:
    """A run's log: console + ``<out>/<name>.log`` + ``<out>/<name>.jsonl``.

    Only the process with ``is_main=True`` (rank 0 in distributed runs) writes files; the others
    log warnings and errors to the console only, so N ranks never interleave one file.
    """

    def __init__(
        self, out_dir: str | os.PathLike[str] | None, name: str = "run", is_main: bool = True
    ) -> None:
        self.logger = get_logger(f"mme.{name}")
        self.is_main = is_main
        self.name = name
        self._file_handler: logging.Handler | None = None
        self._jsonl = None
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if not is_main:
            self.logger.setLevel(logging.WARNING)
            return
        self.logger.setLevel(logging.INFO)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._file_handler = logging.FileHandler(self.out_dir / f"{name}.log", encoding="utf-8")
            self._file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s | %(message)s"))
            self.logger.addHandler(self._file_handler)
            self._jsonl = open(self.out_dir / f"{name}.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    @property
    def jsonl_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / f"{self.name}.jsonl"

    def info(self, message: str, *args: Any) -> None:
        self.logger.info(message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self.logger.warning(message, *args)

    def error(self, message: str, *args: Any) -> None:
        self.logger.error(message, *args)

    def event(self, kind: str, human: str | None = None, **fields: Any) -> None:
        """Write one JSON line ``{"time": ..., "kind": kind, **fields}`` and optionally a human line."""
        if human is not None:
            self.info(human)
        if self._jsonl is None:
            return
        record = {"time": round(time.time(), 3), "kind": kind, **{k: _jsonable(v) for k, v in fields.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def metrics(self, kind: str, step: int | None = None, **values: Any) -> None:
        """Log scalar metrics as one JSON line and one compact human line."""
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        prefix = f"[{kind}]" if step is None else f"[{kind} {step}]"
        self.event(kind, human=f"{prefix} {shown}", step=step, **values)

    def close(self) -> None:
        if self._file_handler is not None:
            self.logger.removeHandler(self._file_handler)
            self._file_handler.close()
            self._file_handler = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Progress over a known number of items: a tqdm bar on a terminal, periodic log lines elsewhere.

    Log lines carry count, percentage, rate and ETA, at most every ``every_s`` seconds.
    ``disable=True`` (non-main ranks) shows nothing.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        logger: logging.Logger | RunLog | None = None,
        every_s: float = 30.0,
        disable: bool = False,
        initial: int = 0,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.count = initial
        self._initial = initial
        self.every_s = every_s
        self.disable = disable
        self._logger = logger.logger if isinstance(logger, RunLog) else (logger or get_logger("mme.progress"))
        self._start = time.perf_counter()
        self._last_log = self._start
        self._postfix = ""
        self._bar = None
        if not disable and sys.stderr.isatty() and os.environ.get("MME_PROGRESS", "auto") != "log":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True)

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self._start
        return (self.count - self._initial) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.count += n
        if postfix:
            self._postfix = " ".join(f"{k}={_fmt(v)}" for k, v in postfix.items())
        if self.disable:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix_str(self._postfix, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last_log >= self.every_s or (self.total is not None and self.count >= self.total):
            self._last_log = now
            self._logger.info(self.summary())

    def summary(self) -> str:
        rate = self.rate
        if self.total:
            left = (self.total - self.count) / rate if rate > 0 else float("inf")
            done = f"{self.count}/{self.total} ({100.0 * self.count / self.total:.0f}%)"
            eta = f" ETA {format_duration(left)}"
        else:
            done, eta = f"{self.count}", ""
        elapsed = format_duration(time.perf_counter() - self._start)
        tail = f" {self._postfix}" if self._postfix else ""
        return f"{self.desc}: {done} {rate:.2f} {self.unit}/s elapsed {elapsed}{eta}{tail}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    items: Iterable[T],
    desc: str,
    total: int | None = None,
    unit: str = "it",
    logger: logging.Logger | RunLog | None = None,
    every_s: float = 30.0,
    disable: bool = False,
) -> Iterator[T]:
    """Iterate ``items`` while showing progress (see :class:`Progress`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, logger=logger, every_s=every_s, disable=disable) as bar:
        for item in items:
            yield item
            bar.update()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
