"""The videos a command line names: files, folders, lists (a broken file is a video reported failed)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mme.errors import ConfigError, DataError
from mme.io.lists import read_list

VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".ts",
)  # fmt: skip
LIST_SUFFIXES = (".csv", ".txt", ".lst", ".list")


@dataclass(frozen=True)
class VideoInput:
    """One video to process: its path, its label when a list gave one, and where it was named."""

    path: Path
    label: int | None = None
    source: str = ""


def gather_videos(
    inputs: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
) -> list[VideoInput]:
    """Expand ``inputs`` (videos, folders, list files) into videos, in the order given."""
    videos: list[VideoInput] = []
    named = 0
    for item in inputs:
        named += 1
        path = Path(item)
        if path.is_dir():
            videos.extend(_folder_videos(path))
        elif path.suffix.lower() in LIST_SUFFIXES:
            videos.extend(list_videos(path, root))
        else:
            videos.append(VideoInput(path, None, "argument"))
    if not named:
        raise ConfigError("no input: name video files, folders of videos or list files")
    return videos


def list_videos(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> list[VideoInput]:
    """The videos of a list file, with their labels (whatever the file's suffix)."""
    return [
        VideoInput(entry.path, entry.label, f"{path}:{entry.line}") for entry in read_list(path, root=root)
    ]


def _folder_videos(folder: Path) -> list[VideoInput]:
    found = sorted(
        path for path in folder.rglob("*") if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file()
    )
    if not found:
        raise DataError(f"{folder}: no video files under this folder (suffixes {', '.join(VIDEO_SUFFIXES)})")
    return [VideoInput(path, None, f"folder {folder}") for path in found]
