"""Checkpoints in and out (any layout, adapters, load report, HF export), built on ``mme.models``."""

from mme.interop.export import export_hf
from mme.interop.loading import (
    load_classifier,
    load_classifier_with_report,
    load_pretrain_model,
    load_pretrain_model_with_report,
)
from mme.interop.reading import SUPPORTED_LAYOUTS
from mme.interop.report import LoadReport

__all__ = [
    "SUPPORTED_LAYOUTS",
    "LoadReport",
    "export_hf",
    "load_classifier",
    "load_classifier_with_report",
    "load_pretrain_model",
    "load_pretrain_model_with_report",
]
