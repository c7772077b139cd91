"""The method library's exception tree. The service maps these to HTTP errors at its boundary."""

from __future__ import annotations


class SamdskError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(SamdskError, ValueError):
    """An unknown name or an invalid setting (the message lists the valid choices)."""


class ShapeError(SamdskError, ValueError):
    """Arrays whose shapes, dtypes or value ranges break a documented contract."""


class CheckpointError(SamdskError):
    """A model checkpoint is missing, unreadable or does not fit the requested architecture."""
