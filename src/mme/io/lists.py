"""Video list files: one video per line with its class label.

Two formats are read, told apart by the first non-blank line:

- **CSV with a header** (our format, what ``mme lists`` and ``mme synth`` write): a header row
  naming at least the columns ``path`` and ``label``; other columns are ignored. Quoting follows
  the csv module, so paths may hold spaces and commas.
- **The original space-separated format** (VideoMAE / MME ``train.csv``, no header):
  ``path label`` or ``path N label`` where the optional middle column is a frame count or
  duration. The label is the *last* field and the path the *first*, so a path cannot contain
  whitespace in this format: a line with more than three fields is an error that says to use
  the CSV format instead.

Blank lines and lines starting with ``#`` are skipped. Relative paths are joined to ``root``
when one is given, else to the folder holding the list file (so a dataset folder with its
lists can be moved as a whole). Every malformed line is a :class:`~mme.errors.DataError`
naming the file and the 1-based line number.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mme.errors import DataError
from mme.utils.atomic import atomic_write

CSV_HEADER = ("path", "label")


@dataclass(frozen=True)
class VideoEntry:
    """One line of a list: the video's path (root applied), its class and where it was read."""

    path: Path
    label: int
    line: int = 0
    length: float | None = None  # the optional middle column of the space format, as written


def read_list(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> list[VideoEntry]:
    """Read a list file (CSV with header, or ``path [N] label`` lines) into entries."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise DataError(f"list file not found: {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read list file {path}: {error}") from error
    base = Path(root) if root is not None else path.parent
    lines = text.splitlines()
    first = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None:
        raise DataError(f"list file {path} has no entries")
    entries = _read_csv(path, text, base) if _is_csv_header(first) else _read_spaced(path, lines, base)
    if not entries:
        raise DataError(f"list file {path} has no entries")
    return entries


def _is_csv_header(line: str) -> bool:
    fields = [field.strip().lower() for field in next(csv.reader([line]))]
    return "path" in fields and "label" in fields


def _parse_label(text: str, path: Path, line: int) -> int:
    try:
        label = int(text)
    except ValueError:
        raise DataError(f"{path}:{line}: label {text!r} is not an integer") from None
    if label < 0:
        raise DataError(f"{path}:{line}: label {label} is negative")
    return label


def _join(base: Path, video: str) -> Path:
    candidate = Path(video)
    return candidate if candidate.is_absolute() else base / candidate


def _read_spaced(path: Path, lines: list[str], base: Path) -> list[VideoEntry]:
    entries = []
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split()
        if len(fields) == 1:
            raise DataError(f"{path}:{number}: expected 'path label' or 'path N label', got {stripped!r}")
        if len(fields) > 3:
            raise DataError(
                f"{path}:{number}: {len(fields)} fields; a path with spaces needs the CSV format "
                f"(a 'path,label' header line), got {stripped!r}"
            )
        length = None
        if len(fields) == 3:
            try:
                length = float(fields[1])
            except ValueError:
                raise DataError(
                    f"{path}:{number}: middle column {fields[1]!r} is not a frame count or duration"
                ) from None
        label = _parse_label(fields[-1], path, number)
        entries.append(VideoEntry(_join(base, fields[0]), label, number, length))
    return entries


def _read_csv(path: Path, text: str, base: Path) -> list[VideoEntry]:
    entries = []
    reader = csv.reader(io.StringIO(text))
    columns: dict[str, int] | None = None
    for row in reader:
        number = reader.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if columns is None:
            names = [name.strip().lower() for name in row]
            columns = {name: names.index(name) for name in CSV_HEADER}
            continue
        if len(row) <= max(columns.values()):
            raise DataError(f"{path}:{number}: expected columns {', '.join(CSV_HEADER)}, got {row!r}")
        video = row[columns["path"]].strip()
        if not video:
            raise DataError(f"{path}:{number}: empty path")
        label = _parse_label(row[columns["label"]].strip(), path, number)
        entries.append(VideoEntry(_join(base, video), label, number))
    return entries


def write_list(path: str | os.PathLike[str], entries: Iterable[tuple[str | os.PathLike[str], int]]) -> int:
    """Write ``(video path, label)`` pairs as our CSV list (header ``path,label``), atomically.

    Paths are written as given (relative ones are resolved against the list's folder, or the
    reader's ``root``, when read back). Returns the number of entries written.
    """
    count = 0
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for video, label in entries:
            if int(label) < 0:
                raise ValueError(f"negative label {label} for {video}")
            writer.writerow((str(video), int(label)))
            count += 1
    return count
