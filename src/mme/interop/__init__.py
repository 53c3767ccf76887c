"""mme.interop: checkpoints in, checkpoints out — apart from the networks in :mod:`mme.models`.

Reads a checkpoint of any supported layout (mme's own folder or training checkpoint, original
MME/VideoMAE ``.pth``, DeepSpeed, Hugging Face), adapts its names and layout to mme's models,
reports what happened to every tensor, and exports classifiers to Hugging Face. It builds on
``mme.models`` (which never imports it at load; ``mme.models`` re-exports these names lazily).

>>> from mme.interop import load_classifier, export_hf
>>> clf = load_classifier("checkpoint-best/", num_classes=51)  # any supported checkpoint layout
>>> export_hf(clf, "out/hf")
"""

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
