"""User-fixable errors, printed by ``mme`` in one line; each also derives from the matching built-in."""

from __future__ import annotations


class MMEError(Exception):
    """Base class of user-facing errors."""


class ConfigError(MMEError, ValueError):
    """A config value, key or override is wrong; the message names it."""


class DataError(MMEError, RuntimeError):
    """A list file, video or trajectory file is missing or malformed; the message names it."""


class CheckpointError(MMEError, RuntimeError):
    """A checkpoint is unreadable, of an unknown layout, or does not fit the model."""
