"""Video list files: CSV with a ``path,label`` header, or ``path [N] label`` lines (docs/data.md)."""

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
# What read_list accepts, for help texts and errors.
FORMATS = (
    "a CSV file whose first line is a header naming the columns path and label, e.g. 'path,label' "
    "(other columns are ignored; what `mme lists` and `mme synth` write; a CSV without this header "
    "is not read), or, with no header line, one 'path label' or 'path N label' per line separated "
    "by spaces (N: a frame count or duration); blank lines and lines starting with # are skipped"
)


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
    base = list_root(path, root)
    lines = text.splitlines()
    first = next(
        ((number, line) for number, line in enumerate(lines, start=1) if line.strip() and not _comment(line)),
        None,
    )
    if first is None:
        raise DataError(f"list file {path} has no entries")
    if _is_csv_header(first[1]):
        return _read_csv(path, text, base)
    _check_first_line(path, *first)
    return _read_spaced(path, lines, base)


def list_root(list_path: str | os.PathLike[str] | None, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder a list's relative video paths are joined to: ``root``, else the list file's folder."""
    if root is not None:
        return Path(root)
    if list_path is None:
        raise ValueError("a list's root is its file's folder: give the list file or a root")
    return Path(list_path).parent


def video_key(video: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """The path naming ``video``'s outputs: relative to ``root``, else its whole absolute path.

    Normalised lexically (``abspath``, not ``resolve``, so a dataset of symlinks keeps its layout):
    every spelling of a path gives one key, and a key never leads outside the output folder.
    """
    absolute = Path(os.path.abspath(video))
    try:
        return absolute.relative_to(os.path.abspath(root))
    except ValueError:
        return absolute.relative_to(absolute.anchor)


def check_labels(entries: Iterable[VideoEntry], num_classes: int, list_name: str, classes_from: str) -> None:
    """DataError naming the line of the first label not below ``num_classes`` (checked before training)."""
    for entry in entries:
        if entry.label >= num_classes:
            raise DataError(
                f"{list_name}:{entry.line}: label {entry.label} of {entry.path} is not below "
                f"{num_classes}, the number of classes ({classes_from})"
            )


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _check_first_line(path: Path, number: int, line: str) -> None:
    """DataError for a first line that is neither a CSV header nor an entry ending in a label."""
    fields = line.split()
    try:
        int(fields[-1])
    except ValueError:
        raise DataError(
            f"{path}:{number}: {line.strip()!r} is neither a CSV header naming the columns path and "
            f"label nor a 'path label' line; a list is {FORMATS}"
        ) from None


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
    header_line = 0
    for row in reader:
        number = reader.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if columns is None:
            names = [name.strip().lower() for name in row]
            columns = {name: names.index(name) for name in CSV_HEADER}
            header_line = number
            continue
        if len(row) <= max(columns.values()):
            raise DataError(f"{path}:{number}: expected columns {', '.join(CSV_HEADER)}, got {row!r}")
        video = row[columns["path"]].strip()
        if not video:
            raise DataError(f"{path}:{number}: empty path")
        label = _parse_label(row[columns["label"]].strip(), path, number)
        entries.append(VideoEntry(_join(base, video), label, number))
    if not entries:
        raise DataError(f"{path}:{header_line}: a CSV header and no entries after it")
    return entries


def write_list(path: str | os.PathLike[str], entries: Iterable[tuple[str | os.PathLike[str], int]]) -> int:
    """Write ``(video path, label)`` pairs as our CSV list, atomically; returns the entry count."""
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
