"""Command ids: the results of recent commands by the id their sender gave them, so that a command sent
again (a gateway retrying after a timeout or a leader failover) gets its original result and is applied
once.

A caller may give any command an id (``command_id=``: 1-64 characters of ``A-Z a-z 0-9 _ . : -``; a
gateway uses 32 hex digits per client request, the same on every retry). The exchange writes it into
the command's journal record (``"cid"``) and remembers ``id -> (record op, clock reading, receipt)``
when the command is journaled; replay remembers it again from the record and a checkpoint carries the
remembered ones, so a new leader (which replayed the log) knows every id the old one journaled.

Bounded: an id is remembered for :data:`WINDOW` seconds of exchange time (the clock readings of the
records, so replay forgets exactly what the live exchange forgot), and at most :data:`CAPACITY` ids
(the oldest forgotten first). Only commands that were journaled are remembered: a command that failed
changed nothing, and its repetition runs again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .commands import ORDER_ID, Receipt
from .errors import InvalidCommand

__all__ = ["CAPACITY", "WINDOW", "CommandResults", "check_command_id"]

#: Seconds of exchange time an id is remembered (well above a gateway's retry deadline).
WINDOW = 300.0
#: The most ids remembered at once.
CAPACITY = 100_000


def check_command_id(command_id: object) -> str | None:
    """``command_id`` if it is None or a valid id; InvalidCommand (code ``invalid_command_id``) otherwise."""
    if command_id is None:
        return None
    if not isinstance(command_id, str) or ORDER_ID.match(command_id) is None:
        raise InvalidCommand(
            "command_id must be 1-64 characters of A-Z a-z 0-9 _ . : -", "invalid_command_id"
        )
    return command_id


class CommandResults:
    """The remembered results, oldest first (see the module doc)."""

    __slots__ = ("_entries", "capacity", "window")

    def __init__(self, window: float = WINDOW, capacity: int = CAPACITY) -> None:
        self.window = window
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[str, float, Receipt]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, command_id: str) -> Receipt | None:
        """The receipt of the command journaled under ``command_id``, whatever its kind, or None."""
        entry = self._entries.get(command_id)
        return None if entry is None else entry[2]

    def lookup(self, command_id: str | None, op: str) -> Receipt | None:
        """The receipt of the command journaled under ``command_id``, or None (not given, or unknown).
        InvalidCommand (code ``duplicate_command_id``) if that id named a command of another kind
        (``op`` is the journal record's op: place, cancel, modify, deposit, withdraw, market)."""
        if command_id is None:
            return None
        entry = self._entries.get(command_id)
        if entry is None:
            return None
        if entry[0] != op:
            raise InvalidCommand(
                f"command_id {command_id!r} already named a {entry[0]} command", "duplicate_command_id"
            )
        return entry[2]

    def remember(self, command_id: str, op: str, ts: float, receipt: Receipt) -> None:
        """Remember the receipt of the command journaled under ``command_id`` at clock reading ``ts``,
        and forget what is older than the window or beyond the capacity."""
        entries = self._entries
        entries[command_id] = (op, ts, receipt)
        entries.move_to_end(command_id)
        horizon = ts - self.window
        while entries:
            oldest = next(iter(entries.values()))
            if oldest[1] >= horizon and len(entries) <= self.capacity:
                break
            entries.popitem(last=False)

    def export_state(self) -> list[list[Any]]:
        """The remembered results, oldest first, as JSON-ready rows for a checkpoint:
        ``[id, op, ts, position, order_id, order, result]``."""
        return [
            [cid, op, ts, receipt.position, receipt.order_id, receipt.order, receipt.result]
            for cid, (op, ts, receipt) in self._entries.items()
        ]

    def restore_state(self, rows: list[list[Any]]) -> None:
        """Replace the remembered results with a checkpoint's rows (:meth:`export_state`)."""
        self._entries.clear()
        for cid, op, ts, position, order_id, order, result in rows:
            self._entries[cid] = (op, float(ts), Receipt(int(position), order_id, order, result or {}))
