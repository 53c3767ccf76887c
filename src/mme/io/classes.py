"""Class-name files: ``classes.json`` (a JSON list) or one name per line, label ``i`` = ``names[i]``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mme.errors import DataError

CLASSES_FILE = "classes.json"


def read_class_names(path: str | os.PathLike[str]) -> list[str]:
    """The names in ``path`` (JSON list, or one per line), label ``i`` being ``names[i]``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise DataError(f"class names file not found: {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read class names file {path}: {error}") from error
    if path.suffix == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise DataError(f"{path}: expected a JSON list of class names (strings), label order")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: no class names")
    return names


def find_class_names_file(
    explicit: str | os.PathLike[str] | None, list_file: str | os.PathLike[str] | None
) -> Path | None:
    """``explicit`` when given, else ``classes.json`` beside ``list_file`` if there is one."""
    if explicit is not None:
        return Path(explicit)
    if list_file is None:
        return None
    beside = Path(list_file).parent / CLASSES_FILE
    return beside if beside.is_file() else None
