"""manticore_storage: the order book's state in a SQL database (SQLite by default, PostgreSQL).

The integration guide's ``StorageManager`` methods, a persister that records every order, fill and
trade of an attached book (write-behind with group commit, or synchronous), restore with exact time
priority, and reconciliation of storage against a live book. See docs/storage.md.
"""

from .manager import PersistenceError, StorageError, StorageManager
from .owner import DatabaseInUse
from .persister import PERSISTED_EVENTS, BookPersister
from .reconcile import Mismatch, ReconcileReport

__all__ = [
    "PERSISTED_EVENTS",
    "BookPersister",
    "DatabaseInUse",
    "Mismatch",
    "PersistenceError",
    "ReconcileReport",
    "StorageError",
    "StorageManager",
]
