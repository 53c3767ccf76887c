"""Moved to :mod:`mme.interop.report`; this alias keeps ``from mme.models.report import ...`` working.

The one module of ``mme.models`` that imports ``mme.interop`` (only when imported itself, never by
``import mme.models``). Remove it once nothing imports ``mme.models.report``.
"""

from mme.interop.report import LoadReport, group_names

__all__ = ["LoadReport", "group_names"]
