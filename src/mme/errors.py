"""Errors that are the user's to fix (bad config, bad file, bad input).

The ``mme`` command prints these as one clear message and exits non-zero, without a traceback
(set ``MME_DEBUG=1`` to see it). Anything else is a bug and keeps its traceback.
Each class also derives from the matching built-in, so callers may catch either.
"""

from __future__ import annotations


class MMEError(Exception):
    """Base class of user-facing errors."""


class ConfigError(MMEError, ValueError):
    """A config value, key or override is wrong; the message names it."""


class DataError(MMEError, RuntimeError):
    """A list file, video or trajectory file is missing or malformed; the message names it."""


class CheckpointError(MMEError, RuntimeError):
    """A checkpoint is unreadable, of an unknown layout, or does not fit the model."""
