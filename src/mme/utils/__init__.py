"""Small shared helpers: atomic file writes, run logging and progress."""

from mme.utils.atomic import atomic_path, atomic_write, atomic_write_json, atomic_write_text
from mme.utils.logging import RunLog, progress

__all__ = ["RunLog", "atomic_path", "atomic_write", "atomic_write_json", "atomic_write_text", "progress"]
