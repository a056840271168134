"""Replay protection: the (api key, signature) pairs accepted while they could still be accepted again.

A signed request stays acceptable while its timestamp is within the window of "now", so an accepted pair
is kept until ``timestamp + window`` has passed and then forgotten: memory is bounded by the number of
requests accepted in one window (plus the allowed clock lead). "Now" never moves backwards here (the
highest clock reading seen), so a clock stepped back cannot revive a request that was already forgotten.
A signature is remembered as given to :meth:`ReplayGuard.accept`: the caller passes one canonical form
per signature (the manager passes the 32 digest bytes, so that hex spelled in either case is one
signature). Thread-safe: one lock around check-and-record.
"""

from __future__ import annotations

import heapq
import threading
from enum import Enum

__all__ = ["ReplayGuard", "ReplayVerdict"]


class ReplayVerdict(Enum):
    """The outcome of :meth:`ReplayGuard.accept`."""

    ACCEPTED = "accepted"
    REPLAYED = "replayed"
    STALE = "stale"


class ReplayGuard:
    """Accepted request signatures, pruned by time. All times in integer or float milliseconds."""

    __slots__ = ("_expiries", "_high_water_ms", "_lock", "_seen", "window_ms")

    def __init__(self, window_ms: float) -> None:
        self.window_ms = window_ms
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str | bytes], float] = {}
        self._expiries: list[tuple[float, str, str | bytes]] = []
        self._high_water_ms = float("-inf")

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def __repr__(self) -> str:
        return f"ReplayGuard(window_ms={self.window_ms}, remembered={len(self)})"

    def accept(self, api_key: str, signature: str | bytes, timestamp_ms: int, now_ms: float) -> ReplayVerdict:
        """Record the pair if it is new and its timestamp not older than the window; say what happened.

        ``STALE`` means the timestamp fell out of the window by the (never decreasing) "now" of this
        guard; ``REPLAYED`` that the same pair was accepted before and is still remembered.
        """
        with self._lock:
            if now_ms > self._high_water_ms:
                self._high_water_ms = now_ms
                self._prune()
            expires_ms = timestamp_ms + self.window_ms
            if expires_ms < self._high_water_ms:
                return ReplayVerdict.STALE
            pair = (api_key, signature)
            if pair in self._seen:
                return ReplayVerdict.REPLAYED
            self._seen[pair] = expires_ms
            heapq.heappush(self._expiries, (expires_ms, api_key, signature))
            return ReplayVerdict.ACCEPTED

    def _prune(self) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] < self._high_water_ms:
            _, api_key, signature = heapq.heappop(expiries)
            self._seen.pop((api_key, signature), None)
