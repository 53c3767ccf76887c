"""The interop tests build tiny models and check loaded checkpoints against the independent
reference forward of ``tests/models/model_helpers.py``; one copy of it serves both folders."""

from __future__ import annotations

import sys
from pathlib import Path

_MODELS_TESTS = str(Path(__file__).resolve().parents[1] / "models")
if _MODELS_TESTS not in sys.path:
    sys.path.insert(0, _MODELS_TESTS)
