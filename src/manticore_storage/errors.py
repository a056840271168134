"""The storage package's errors."""

from __future__ import annotations

__all__ = ["PersistenceError", "StorageError"]


class StorageError(Exception):
    """A storage operation could not be done (bad input, unknown order, ambiguous id)."""


class PersistenceError(StorageError):
    """A synchronous write could not be made durable; the command must not be acknowledged."""
