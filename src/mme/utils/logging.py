"""Run logging: ``<name>.log`` and ``<name>.jsonl`` side by side, and progress with rate and ETA."""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO, TypeVar

from mme.errors import DataError

T = TypeVar("T")

_CONSOLE_FORMAT = "%(asctime)s %(levelname).1s %(name)s | %(message)s"


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest and notebooks replace it)."""

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
    """Console + ``<name>.log`` + ``<name>.jsonl`` (``is_main`` only; ``defer_files`` holds lines)."""

    def __init__(
        self,
        out_dir: str | os.PathLike[str] | None,
        name: str = "run",
        is_main: bool = True,
        defer_files: bool = False,
    ) -> None:
        self.logger = get_logger(f"mme.{name}")
        self.is_main = is_main
        self.name = name
        self._file_handler: logging.Handler | None = None
        self._jsonl: TextIO | None = None
        self._held: logging.handlers.MemoryHandler | None = None
        self._held_json: list[str] = []
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if not is_main:
            self.logger.setLevel(logging.WARNING)
            return
        self.logger.setLevel(logging.INFO)
        if self.out_dir is None:
            return
        if defer_files:
            # No target yet: it holds every record until open_files() hands them to the file.
            self._held = logging.handlers.MemoryHandler(sys.maxsize, flushLevel=logging.CRITICAL + 1)
            self.logger.addHandler(self._held)
        else:
            self.open_files()

    def open_files(self) -> None:
        """Create ``<name>.log`` / ``<name>.jsonl`` (appending) and write what was held until now."""
        if not self.is_main or self.out_dir is None or self._jsonl is not None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._file_handler = logging.FileHandler(self.out_dir / f"{self.name}.log", encoding="utf-8")
        self._file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s | %(message)s"))
        self._jsonl = open(self.out_dir / f"{self.name}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if self._held is not None:
            self._held.setTarget(self._file_handler)
            self._held.flush()
            self._drop_held()
        self.logger.addHandler(self._file_handler)
        self._jsonl.writelines(self._held_json)
        self._jsonl.flush()
        self._held_json = []

    def _drop_held(self) -> None:
        if self._held is not None:
            self.logger.removeHandler(self._held)
            self._held.setTarget(None)
            self._held.close()
            self._held = None

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
        record = {"time": round(time.time(), 3), "kind": kind, **{k: _jsonable(v) for k, v in fields.items()}}
        line = json.dumps(record) + "\n"
        if self._jsonl is None:
            if self._held is not None:  # files deferred (not on other ranks, nor without a folder)
                self._held_json.append(line)
            return
        self._jsonl.write(line)
        self._jsonl.flush()

    def metrics(self, kind: str, step: int | None = None, epoch: int | None = None, **values: Any) -> None:
        """Log scalar metrics as a JSON line and a human line, e.g. ``[train] step=3 epoch=0 loss=0.5``."""
        position = {key: value for key, value in (("step", step), ("epoch", epoch)) if value is not None}
        self.event(kind, human=f"[{kind}] {format_values({**position, **values})}", **position, **values)

    def close(self) -> None:
        self._drop_held()  # a job that never opened its files leaves none
        self._held_json = []
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


def current_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A ``<name>.jsonl``'s records as the run stands: a ``resume`` drops earlier records of later steps."""
    kept: list[Mapping[str, Any]] = []
    for record in records:
        if record.get("kind") == "resume":
            resumed = record["step"]
            kept = [r for r in kept if r.get("kind") in _HISTORY or not (r.get("step") or 0) > resumed]
        kept.append(record)
    return kept


_HISTORY = ("start", "resume", "interrupted", "summary")


def job_seconds(jsonl: Path) -> float:
    """Wall time of a job from its JSON-lines log: each ``start`` to the event before the next, summed."""
    total, begin, last = 0.0, None, 0.0
    for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise DataError(f"{jsonl}:{number} is not a JSON line: {error}") from None
        if record.get("kind") == "start":
            total += 0.0 if begin is None else last - begin
            begin = float(record["time"])
        last = float(record["time"])
    return total if begin is None else total + last - begin


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """A tqdm bar on a terminal, else log lines (count, rate, ETA; with ``later``, the run's ETA)."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        logger: logging.Logger | RunLog | None = None,
        every_s: float = 30.0,
        disable: bool = False,
        initial: int = 0,
        later: int | None = None,
    ) -> None:
        self.total = total
        self.later = later
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

    def _left_s(self, items: int) -> float:
        rate = self.rate
        return items / rate if rate > 0 else float("inf")

    def run_eta(self) -> str:
        """`` run ETA 1h02m05s`` when the run goes on after this bar (``later``), else ``""``."""
        if not self.total or self.later is None:
            return ""
        return f" run ETA {format_duration(self._left_s(self.total - self.count + self.later))}"

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.count += n
        if postfix:
            self._postfix = format_values(postfix)
        if self.disable:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix or self.later is not None:
                self._bar.set_postfix_str(f"{self._postfix}{self.run_eta()}".strip(), refresh=False)
            return
        now = time.perf_counter()
        if now - self._last_log >= self.every_s or (self.total is not None and self.count >= self.total):
            self._last_log = now
            self._logger.info(self.summary())

    def summary(self) -> str:
        rate = self.rate
        if self.total:
            done = f"{self.count}/{self.total} ({100.0 * self.count / self.total:.0f}%)"
            eta = f" ETA {format_duration(self._left_s(self.total - self.count))}{self.run_eta()}"
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
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, logger=logger, every_s=every_s, disable=disable) as bar:
        for item in items:
            yield item
            bar.update()


def format_value(value: Any) -> str:
    """A value for people: floats to 4 significant digits (33.33, not 33.333333333333336)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return "{" + format_values(value, ", ") + "}"
    return str(value)


def format_values(values: Mapping[str, Any], sep: str = " ") -> str:
    """``key=value`` pairs for log lines and summaries (JSON lines keep full precision)."""
    return sep.join(f"{key}={format_value(value)}" for key, value in values.items())


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
