"""The videos named on a command line: files, folders and list files, mixed.

``mme predict`` and ``mme embed`` take any number of INPUTs; :func:`gather_videos` turns them
into one ordered list of :class:`VideoInput`:

- a **folder** gives every file under it (recursively) whose suffix is a video's
  (:data:`VIDEO_SUFFIXES`, any case), in sorted path order; a folder without one is an error;
- a file whose suffix is a **list**'s (:data:`LIST_SUFFIXES`) is read with
  :func:`mme.io.lists.read_list` (its labels are kept; relative paths start from its folder);
- **anything else is a video**, whether or not it exists or decodes: a missing, empty or
  broken file is the job's to report as failed, next to the videos that work.
"""

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
    """Expand ``inputs`` (videos, folders, list files) into videos, in the order given.

    ``root`` is passed to :func:`~mme.io.lists.read_list` for list files (default: each list's
    folder). Raises ConfigError when nothing is named, DataError for a folder without videos or a
    list that cannot be read.
    """
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
