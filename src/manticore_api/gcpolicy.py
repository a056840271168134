"""The serving process's garbage-collector policy and its pause recorder.

The exchange keeps a large, long-lived heap (resting orders, recent orders and trades, the auth and
market state built at start-up). CPython's cyclic collector traverses every object of the generations
it collects, so a full (gen-2) collection walks the whole heap: ~1 ms of CPU per 1,000 tracked objects
in this heap (each object's references are followed, mostly cache misses), 0.2-0.3 s with 100,000
resting orders, growing with the book. :class:`GcPolicy` applies, once the exchange is open and
replayed and the app is about to serve, a one-off full collection, :func:`gc.freeze` (everything alive
at start-up moves to the permanent generation, which the collector never traverses; refcounting still
frees those objects), lower young thresholds, and **refreezing** while it serves: every gen-1 (or older)
collection ends by freezing what survived it (:func:`start_refreezing`). An object is then examined by
at most two collections (gen 0, gen 1) before it is frozen, gen 2 stays empty, and no pause depends on
how many orders, trades or users live in the heap: each is bounded by the thresholds
(``benchmarks/gc_pauses.py`` measures it: 100,000 resting orders, gen-1 collections examine at most
~6,000 objects where the next full collection under a freeze-at-start-up-only policy examines 240,000).

Why freezing is safe here: what it freezes is either meant to live as long as the process (modules, the
app, markets, users) or is freed by reference counting when it goes. A resting order's book and risk
state hold no reference cycle, so cancelling or filling it frees them although they are frozen
(``tests/api/test_gc_freeze_safety.py``); an asyncio task or future awaiting durability breaks its
cycles when it completes. Cyclic garbage whose objects were frozen while alive would never be collected
(the price of the policy): measured, none is left by order entry, churn of place/cancel or HTTP requests
(fresh or keep-alive connections, errors included; ``benchmarks/gc_pauses.py`` unfreezes and collects
after its run: 0 objects; docs/performance.md, session 12); uvicorn's HTTP protocol of a WebSocket
connection was one such cycle, which ``manticore serve`` breaks (:func:`.server.http_protocol`).
``frozen_objects`` in ``GET /api/metrics/gc`` lets an operator see the frozen heap stay in step with the
live state (it walks the frozen list: ~50 ms per 700,000 objects, so do not poll it often).

:class:`GcPauseRecorder` measures every collection with :data:`gc.callbacks` (start to stop, monotonic
clock) and is what ``GET /api/metrics/gc`` reports.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_THRESHOLDS",
    "LONG_PAUSE_MS",
    "GcPauseRecorder",
    "GcPolicy",
    "start_refreezing",
    "stop_refreezing",
]

#: gen-0, gen-1, gen-2 thresholds for the serving process (CPython's default: 700, 10, 10). A young
#: collection's pause grows with the objects it walks (the requests in flight and what survived since
#: the last one): gen 0 every 1,000 net allocations of tracked objects, gen 1 every 5 gen-0 collections.
#: With refreezing (the default), a gen-1 collection walks at most what 5 gen-0 periods allocated and
#: gen 2 stays empty, so the gen-2 threshold hardly matters. Measured with 100,000 resting orders
#: (benchmarks.gc_pauses, compiled book): (2,000, 4) let a gen-1 collection examine ~10,000 objects, 8-12
#: ms of CPU; (1,000, 4) at most ~6,000, under 5 ms, for ~4 us of collector CPU per command. Without
#: refreezing (session 11): (5,000, 4) had gen-1 pauses of up to 9-17 ms; the default thresholds, gen-2
#: pauses of 60+ ms every few seconds; a full collection walks every long-lived object created since
#: start-up.
DEFAULT_THRESHOLDS: tuple[int, int, int] = (1_000, 4, 3_000)

#: Pauses longer than this (milliseconds) are counted apart (``pauses_over_10ms``).
LONG_PAUSE_MS = 10.0


@dataclass(frozen=True)
class GcPolicy:
    """What to do with the collector when the server starts serving.

    ``freeze``: collect once, then :func:`gc.freeze` everything alive; ``thresholds``: passed to
    :func:`gc.set_threshold` (None leaves them); ``refreeze``: while :meth:`serving`, every collection
    of this generation or an older one ends by freezing its survivors (None: never; 2: after full
    collections only)."""

    freeze: bool = True
    thresholds: tuple[int, int, int] | None = DEFAULT_THRESHOLDS
    refreeze: int | None = 1

    def apply(self) -> None:
        """Apply the one-off part of the policy to this process (the start-up freeze and the
        thresholds); :meth:`serving` applies it and keeps refreezing while the server serves."""
        if self.freeze:
            gc.collect()
            gc.freeze()
        if self.thresholds is not None:
            gc.set_threshold(*self.thresholds)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """:meth:`apply`, then, with ``refreeze``, freeze the survivors of every collection of that
        generation or an older one until the block ends (:func:`start_refreezing`); what is frozen
        stays frozen after it."""
        self.apply()
        if self.refreeze is None:
            yield
            return
        start_refreezing(self.refreeze)
        try:
            yield
        finally:
            stop_refreezing()


_refreeze_from = 2


def _refreeze(phase: str, info: dict[str, int]) -> None:
    """The :data:`gc.callbacks` hook of :func:`start_refreezing`."""
    if phase == "stop" and info.get("generation", 0) >= _refreeze_from:
        gc.freeze()


def start_refreezing(generation: int = 2) -> None:
    """From now on every collection of ``generation`` or an older one ends by freezing what survived
    it (idempotent; a second call only changes the generation).

    The collector then never traverses an object again once it has survived such a collection, so
    each collection walks only what survived since the previous one: its pause is bounded by the
    thresholds, not by the size of the heap (100,000 resting orders or 10 million). The hook runs at
    the end of the collection, when the collector's lists are consistent again (:func:`gc.freeze` only
    moves them to the permanent generation), in whichever thread collected. Reference counting still
    frees frozen objects; only cyclic garbage whose objects were alive at such a collection is never
    collected (see the module's docstring for why the exchange leaves none). ValueError for a
    generation other than 0, 1 or 2."""
    global _refreeze_from
    if not 0 <= generation <= 2:
        raise ValueError(f"no generation {generation}")
    _refreeze_from = generation
    if _refreeze not in gc.callbacks:
        gc.callbacks.append(_refreeze)


def stop_refreezing() -> None:
    """Undo :func:`start_refreezing` (idempotent; what is frozen stays frozen)."""
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(_refreeze)


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
