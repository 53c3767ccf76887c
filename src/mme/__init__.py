"""mme: Masked Motion Encoding (Sun et al., CVPR 2023); ``mme.predict`` / ``mme.embed`` load lazily."""

from typing import Any

__version__ = "0.1.0"

_LAZY = {"predict": "mme.eval.predict", "embed": "mme.eval.embed", "read_embeddings": "mme.eval.embed"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mme' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
