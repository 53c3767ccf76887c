"""Our list files from the official UCF101, HMDB51, Kinetics-400 and SSV2 annotations (docs/data.md)."""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mme.errors import ConfigError, DataError

DATASETS = ("ucf101", "hmdb51", "k400", "ssv2")
K400_LAYOUT = "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
Pairs = list[tuple[str, int]]


@dataclass
class SplitLists:
    """Class names (label = index) and the (relative path, label) pairs of each split."""

    classes: list[str]
    splits: dict[str, Pairs]
    notes: list[str]


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of an annotation file with their 1-based numbers (CRLF tolerated)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"annotation file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read annotation file {path}: {error}") from error
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _find(folder: Path, names: list[str]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"none of {', '.join(names)} found in {folder}")


def _folder(annotations: Path) -> Path:
    if annotations.is_dir():
        return annotations
    if annotations.is_file():
        return annotations.parent
    raise DataError(f"annotations not found: {annotations}")


def ucf101(annotations: Path, split: int) -> SplitLists:
    folder = _folder(annotations)
    class_file = folder / "classInd.txt"
    classes: list[str] = []
    for number, line in _lines(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(classes) + 1:
            raise DataError(f"{class_file}:{number}: expected '{len(classes) + 1} ClassName', got {line!r}")
        classes.append(parts[1])
    by_name = {name.lower(): index for index, name in enumerate(classes)}
    train: Pairs = []
    train_file = folder / f"trainlist0{split}.txt"
    for number, line in _lines(train_file):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(classes):
            raise DataError(
                f"{train_file}:{number}: expected 'Class/video.avi 1..{len(classes)}', got {line!r}"
            )
        train.append((parts[0], int(parts[1]) - 1))
    test: Pairs = []
    test_file = folder / f"testlist0{split}.txt"
    for number, line in _lines(test_file):
        video = line.split()[0]
        name = video.split("/")[0].lower()
        if "/" not in video or name not in by_name:
            raise DataError(f"{test_file}:{number}: {video!r} is not under a class folder of classInd.txt")
        test.append((video, by_name[name]))
    notes = [f"UCF101 split {split}: val.csv = test.csv (no validation split)"]
    return SplitLists(classes, {"train": train, "val": test, "test": test}, notes)


def hmdb51(annotations: Path, split: int) -> SplitLists:
    folder = _folder(annotations)
    suffix = f"_test_split{split}.txt"
    files = sorted(path for path in folder.iterdir() if path.name.endswith(suffix))
    if not files:
        raise DataError(f"no HMDB51 split files *{suffix} in {folder}")
    classes = sorted(path.name[: -len(suffix)] for path in files)
    train: Pairs = []
    test: Pairs = []
    for path in files:
        label = classes.index(path.name[: -len(suffix)])
        for number, line in _lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{path}:{number}: expected 'video.avi 0|1|2', got {line!r}")
            relative = f"{classes[label]}/{parts[0]}"
            if parts[1] == "1":
                train.append((relative, label))
            elif parts[1] == "2":
                test.append((relative, label))
    notes = [f"HMDB51 split {split}: val.csv = test.csv (no validation split)"]
    return SplitLists(classes, {"train": train, "val": test, "test": test}, notes)


def _k400_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            required = {"label", "youtube_id", "time_start", "time_end", "split"}
            if reader.fieldnames is None or not required <= set(reader.fieldnames):
                raise DataError(
                    f"{path}: expected columns {', '.join(sorted(required))}, got {reader.fieldnames}"
                )
            return [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise DataError(f"annotation file not found: {path}") from None


def kinetics400(annotations: Path, layout: str = K400_LAYOUT) -> SplitLists:
    folder = _folder(annotations)
    train_rows = _k400_rows(_find(folder, ["train.csv"]))
    val_path = _find(folder, ["validate.csv", "val.csv"])
    val_rows = _k400_rows(val_path)
    classes = sorted({row["label"] for _, row in train_rows})
    index = {name: position for position, name in enumerate(classes)}

    def pairs(rows: list[tuple[int, dict[str, str]]], path: Path) -> Pairs:
        out = []
        for number, row in rows:
            if row["label"] not in index:
                raise DataError(f"{path}:{number}: label {row['label']!r} is not a training class")
            try:
                fields = {
                    "split": row["split"],
                    "label": row["label"],
                    "label_": row["label"].replace(" ", "_"),
                    "youtube_id": row["youtube_id"],
                    "time_start": int(float(row["time_start"])),
                    "time_end": int(float(row["time_end"])),
                }
            except ValueError:
                raise DataError(f"{path}:{number}: time_start/time_end are not numbers: {row}") from None
            try:
                out.append((layout.format(**fields), index[row["label"]]))
            except (KeyError, ValueError, IndexError) as error:
                raise ConfigError(f"--layout {layout!r}: {error} (fields: {', '.join(fields)})") from None
        return out

    train = pairs(train_rows, folder / "train.csv")
    val = pairs(val_rows, val_path)
    notes = ["Kinetics-400: test.csv = the validation set (the published protocol)"]
    return SplitLists(classes, {"train": train, "val": val, "test": val}, notes)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON: {error}") from error


def ssv2(annotations: Path, ext: str = "webm") -> SplitLists:
    folder = _folder(annotations)
    labels_path = _find(folder, ["something-something-v2-labels.json", "labels.json"])
    labels = _json(labels_path)
    if not isinstance(labels, dict):
        raise DataError(f"{labels_path}: expected an object mapping templates to class indices")
    try:
        by_template = {template: int(value) for template, value in labels.items()}
    except ValueError as error:
        raise DataError(f"{labels_path}: class indices must be integers ({error})") from error
    classes = [""] * len(by_template)
    for template, value in by_template.items():
        if not 0 <= value < len(classes) or classes[value]:
            raise DataError(f"{labels_path}: class index {value} of {template!r} is out of range or repeated")
        classes[value] = template

    def pairs(path: Path) -> Pairs:
        records = _json(path)
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a list of videos")
        out = []
        for position, record in enumerate(records):
            try:
                template = re.sub(r"[\[\]]", "", record["template"])
                out.append((f"{record['id']}.{ext}", by_template[template]))
            except (KeyError, TypeError) as error:
                raise DataError(
                    f"{path}: entry {position} ({record!r:.120}) has no known template: {error}"
                ) from None
        return out

    train = pairs(_find(folder, ["something-something-v2-train.json", "train.json"]))
    val = pairs(_find(folder, ["something-something-v2-validation.json", "validation.json"]))
    notes = ["SSV2: test.csv = the validation set (the test set has no labels)"]
    return SplitLists(classes, {"train": train, "val": val, "test": val}, notes)


def read_official_splits(
    dataset: str,
    annotations: str | os.PathLike[str],
    split: int = 1,
    layout: str = K400_LAYOUT,
    ext: str = "webm",
) -> SplitLists:
    """Dispatch to the reader of ``dataset`` (one of :data:`DATASETS`)."""
    annotations = Path(annotations)
    if dataset in ("ucf101", "hmdb51") and split not in (1, 2, 3):
        raise ConfigError(f"--split must be 1, 2 or 3, got {split}")
    if dataset == "ucf101":
        return ucf101(annotations, split)
    if dataset == "hmdb51":
        return hmdb51(annotations, split)
    if dataset == "k400":
        return kinetics400(annotations, layout)
    if dataset == "ssv2":
        return ssv2(annotations, ext)
    raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def build_lists(
    dataset: str,
    annotations: str | os.PathLike[str],
    videos: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    split: int = 1,
    layout: str = K400_LAYOUT,
    ext: str = "webm",
    relative: bool = False,
    missing: str = "skip",
) -> dict[str, Any]:
    """Write train/val/test.csv and classes.json for ``dataset`` into ``out_dir``; returns a summary."""
    from mme.io.lists import write_list
    from mme.utils.atomic import atomic_write_json, atomic_write_text
    from mme.utils.logging import Progress, RunLog

    if missing not in ("skip", "keep", "error"):
        raise ConfigError(f"--missing must be skip, keep or error, got {missing!r}")
    videos = Path(videos).absolute()
    if missing != "keep" and not videos.is_dir():
        raise DataError(f"videos folder not found: {videos}")
    out = Path(out_dir)
    lists = read_official_splits(dataset, annotations, split, layout, ext)
    summary: dict[str, Any] = {"dataset": dataset, "classes": len(lists.classes), "splits": {}, "missing": 0}
    with RunLog(out, name="lists") as log:
        for note in lists.notes:
            log.info(note)
        absent: list[str] = []
        checked: dict[str, bool] = {}
        total = len({path for pairs in lists.splits.values() for path, _ in pairs})
        with Progress(total, f"lists {dataset}", unit="video", logger=log, every_s=10.0) as bar:
            for name, pairs in lists.splits.items():
                kept = []
                for relative_path, label in pairs:
                    if relative_path not in checked:
                        checked[relative_path] = missing == "keep" or (videos / relative_path).is_file()
                        bar.update()
                        if not checked[relative_path]:
                            absent.append(relative_path)
                    if checked[relative_path]:
                        kept.append((relative_path if relative else videos / relative_path, label))
                if not kept:
                    raise DataError(
                        f"no video of the {name} split was found under {videos} (e.g. {pairs[0][0]})"
                    )
                write_list(out / f"{name}.csv", kept)
                summary["splits"][name] = len(kept)
                log.event("split", human=f"{name}.csv: {len(kept)} videos", split=name, videos=len(kept))
        if absent:
            if missing == "error":
                raise DataError(f"{len(absent)} videos are missing under {videos}, e.g. {absent[:5]}")
            atomic_write_text(out / "missing.txt", "\n".join(absent) + "\n")
            log.warning(
                "%d videos listed by the annotations are not under %s: skipped, see %s",
                len(absent),
                videos,
                out / "missing.txt",
            )
        summary["missing"] = len(absent)
        atomic_write_json(out / "classes.json", lists.classes)
        log.event("done", human=f"lists: wrote {out} ({summary['splits']}, {len(absent)} missing)", **summary)
    return summary
