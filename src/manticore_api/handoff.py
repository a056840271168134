"""Handing durable commands' messages from the journal's thread to the event loop, many per wake-up.

``loop.call_soon_threadsafe`` writes the loop's self-pipe and queues a handle on every call: once per
command, that is a system call and a loop iteration per order. :class:`LoopHandoff` queues the batches
and asks the loop for one call while it has none pending, which delivers everything queued by then,
in the order it was queued.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LoopHandoff"]

Batch = list[dict[str, Any]]


class LoopHandoff:
    """Delivers batches put from any thread to ``deliver`` on the loop, in order.

    Args:
        loop: returns the running event loop (None before the server started: batches are dropped
            then, as nobody can read them).
        deliver: called on the loop with each batch, in the order of :meth:`put`.
    """

    __slots__ = ("_deliver", "_lock", "_loop", "_queued", "_scheduled")

    def __init__(
        self, loop: Callable[[], asyncio.AbstractEventLoop | None], deliver: Callable[[Batch], None]
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._lock = threading.Lock()
        self._queued: list[Batch] = []
        self._scheduled = False

    def put(self, batch: Batch) -> None:
        """Queue ``batch`` for the loop (any thread); wakes the loop only if no delivery is pending."""
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        with self._lock:
            self._queued.append(batch)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop closed meanwhile: nobody reads these any more
            with self._lock:
                self._queued.clear()
                self._scheduled = False

    def _drain(self) -> None:
        with self._lock:
            batches, self._queued = self._queued, []
            self._scheduled = False
        deliver = self._deliver
        for batch in batches:
            deliver(batch)
