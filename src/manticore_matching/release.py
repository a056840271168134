"""What a command releases once durable: its storage units and stream messages, in journal order.

Nothing leaves the process before the command's journal record is on disk: :class:`Release` queues
each command's storage units and messages under its journal position, and the journal's writer thread
(:meth:`Release.on_durable`) hands them on when the position becomes durable: units to storage,
messages to the stream listeners, then the position to the durability listeners.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from manticore_storage import StorageManager

__all__ = ["BatchListener", "Entry", "Listener", "Listeners", "Release"]

log = logging.getLogger("manticore_matching")

#: ``listener(messages)``: one durable command's stream messages.
Listener = Callable[[list[dict[str, Any]]], None]
#: ``listener(position, messages)``: one durable command's journal position and stream messages.
BatchListener = Callable[[int, list[dict[str, Any]]], None]
#: ``(journal position, storage units, stream messages)`` of one command.
Entry = tuple[int, list[Any], list[dict[str, Any]]]


class Release:
    """The queue of commands waiting for durability, and who is told when they are durable."""

    __slots__ = ("batch_listeners", "durable_listeners", "listeners", "unreleased")

    def __init__(self) -> None:
        self.unreleased: deque[Entry] = deque()
        self.listeners: list[Listener] = []
        self.batch_listeners: list[BatchListener] = []
        self.durable_listeners: list[Callable[[int], None]] = []

    def on_durable(self, position: int, storage: StorageManager | None) -> None:
        """Release every queued command up to ``position`` (the journal's writer thread calls this)."""
        unreleased = self.unreleased
        while unreleased and unreleased[0][0] <= position:
            released, units, batch = unreleased.popleft()
            if storage is not None:
                for unit in units:
                    storage.submit(unit)
            if batch:
                for listener in list(self.listeners):
                    try:
                        listener(batch)
                    except Exception:
                        log.exception("stream listener failed")
                for batch_listener in list(self.batch_listeners):
                    try:
                        batch_listener(released, batch)
                    except Exception:
                        log.exception("stream listener failed")
        for durable_listener in list(self.durable_listeners):
            try:
                durable_listener(position)
            except Exception:
                log.exception("durability listener failed")


class Listeners:
    """Who an exchange tells about durable commands (the exchange's ``_release`` is a :class:`Release`)."""

    _release: Release

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(messages)`` with each durable command's stream messages, in journal order,
        from the journal's writer thread (see :mod:`manticore_matching.feed` for the shapes)."""
        self._release.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.listeners:
            self._release.listeners.remove(listener)

    def add_durable_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(position)`` from the journal's writer thread each time commands up to
        ``position`` become durable (after their messages went to the stream listeners)."""
        self._release.durable_listeners.append(listener)

    def remove_durable_listener(self, listener: Callable[[int], None]) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.durable_listeners:
            self._release.durable_listeners.remove(listener)

    def add_batch_listener(self, listener: BatchListener) -> None:
        """Like :meth:`add_listener`, with each command's journal position first:
        ``listener(position, messages)`` (positions rise; commands without messages are skipped)."""
        self._release.batch_listeners.append(listener)

    def remove_batch_listener(self, listener: BatchListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._release.batch_listeners:
            self._release.batch_listeners.remove(listener)
