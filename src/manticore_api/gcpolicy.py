"""The serving process's garbage-collector policy and its pause recorder.

The exchange keeps a large, long-lived heap (resting orders, recent orders and trades, the auth and
market state built at start-up). CPython's cyclic collector traverses the objects of the generation it
collects, so with the default thresholds a gen-2 collection under load walks that whole heap again and
again (pauses of 100+ ms were measured). :class:`GcPolicy` applies, once the exchange is open and
replayed and the app is about to serve, a one-off full collection, :func:`gc.freeze` (everything alive
at start-up moves to the permanent generation, which the collector never traverses; refcounting still
frees those objects) and higher thresholds (fewer young collections per request, rarer full ones).

The freeze is safe because what it freezes is either meant to live as long as the process (modules, the
app, markets, users) or is freed by reference counting when it goes: a restored resting order's book
and risk state hold no reference cycle, so cancelling or filling it frees them although they are frozen
(``tests/api/test_gc_freeze_safety.py``). Cyclic garbage among frozen objects would never be collected;
nothing is frozen after start-up, so no request in flight (whose coroutines and exceptions do form
cycles) is ever frozen.

:class:`GcPauseRecorder` measures every collection with :data:`gc.callbacks` (start to stop, monotonic
clock) and is what ``GET /api/metrics/gc`` reports.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_THRESHOLDS", "LONG_PAUSE_MS", "GcPauseRecorder", "GcPolicy"]

#: gen-0, gen-1, gen-2 thresholds for the serving process (CPython's default: 700, 10, 10). A young
#: collection's pause grows with the objects it walks (the requests in flight and what survived since
#: the last one): gen 0 every 2,000 net allocations of tracked objects, gen 1 every 5 gen-0 collections.
#: Measured (benchmarks.server_inprocess, signed orders, 64 in flight, thread CPU per pause): (5,000, 4)
#: had gen-1 pauses of up to 9-17 ms and gen-0 ones up to 5-8 ms; (2,000, 4) up to 5 and 4 ms, for
#: ~1-2 us more collector CPU per request; 1,000 for gen 0 lowers the pauses no further and doubles the
#: collector's CPU. 50,000 for gen 0 cost pauses of 55 ms; the default thresholds, gen-2 pauses of 60+
#: ms every few seconds. A full collection walks every long-lived object created since start-up (~2 ms
#: CPU per 1,000 resting orders), so it comes only after 3,000 gen-1 collections (CPython also waits
#: until the objects that survived since the last full one are 25% of the long-lived ones): one gen-0
#: collection per ~250 signed orders was measured, so that is one full collection per ~3.7 million
#: orders (about an hour at 1,000 orders/s), as often as (5,000, 4, 1,000) had them.
DEFAULT_THRESHOLDS: tuple[int, int, int] = (2_000, 4, 3_000)

#: Pauses longer than this (milliseconds) are counted apart (``pauses_over_10ms``).
LONG_PAUSE_MS = 10.0


@dataclass(frozen=True)
class GcPolicy:
    """What to do with the collector when the server starts serving.

    ``freeze``: collect once, then :func:`gc.freeze` everything alive; ``thresholds``: passed to
    :func:`gc.set_threshold` (None leaves them)."""

    freeze: bool = True
    thresholds: tuple[int, int, int] | None = DEFAULT_THRESHOLDS

    def apply(self) -> None:
        """Apply the policy to this process (call once, after start-up, before serving)."""
        if self.freeze:
            gc.collect()
            gc.freeze()
        if self.thresholds is not None:
            gc.set_threshold(*self.thresholds)


class GcPauseRecorder:
    """Counts collections per generation and measures their pauses, from :meth:`install` on.

    The callback runs inside the collector, in whichever thread allocated, so it takes no lock (a
    collection triggered while that thread held the lock would deadlock): it only updates plain
    attributes, which the GIL keeps whole; a report read while a collection runs may lag it by one."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started: float | None = None
        self._installed = False
        self.collections = [0, 0, 0]
        self.pauses = 0
        self.total_pause_ms = 0.0
        self.max_pause_ms = 0.0
        self.pauses_over_10ms = 0

    def install(self) -> None:
        """Start recording (idempotent); counts start from zero."""
        if self._installed:
            return
        self.collections = [0, 0, 0]
        self.pauses = 0
        self.total_pause_ms = 0.0
        self.max_pause_ms = 0.0
        self.pauses_over_10ms = 0
        self._installed = True
        gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop recording (idempotent); the counts stay readable."""
        if not self._installed:
            return
        self._installed = False
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        started = self._started
        if started is None:
            return
        self._started = None
        pause_ms = (self._clock() - started) * 1000.0
        generation = info.get("generation", 0)
        if 0 <= generation <= 2:
            self.collections[generation] += 1
        self.pauses += 1
        self.total_pause_ms += pause_ms
        if pause_ms > self.max_pause_ms:
            self.max_pause_ms = pause_ms
        if pause_ms > LONG_PAUSE_MS:
            self.pauses_over_10ms += 1

    def snapshot(self) -> dict[str, Any]:
        """The report of ``GET /api/metrics/gc``: ``collections`` per generation, ``pauses``,
        ``total_pause_ms``, ``max_pause_ms``, ``pauses_over_10ms`` (since :meth:`install`), and the
        process's current ``frozen_objects`` and ``thresholds``."""
        report: dict[str, Any] = {
            "collections": list(self.collections),
            "pauses": self.pauses,
            "total_pause_ms": round(self.total_pause_ms, 3),
            "max_pause_ms": round(self.max_pause_ms, 3),
            "pauses_over_10ms": self.pauses_over_10ms,
        }
        report["frozen_objects"] = gc.get_freeze_count()
        report["thresholds"] = list(gc.get_threshold())
        return report
