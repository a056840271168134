"""Replay protection: the (api key, signature) pairs accepted while they could still be accepted again.

A signed request stays acceptable while its timestamp is within the window of "now", so an accepted pair
is kept until ``timestamp + window`` has passed and then forgotten: memory is bounded by the number of
requests accepted in one window (plus the allowed clock lead). "Now" never moves backwards here (the
highest clock reading seen), so a clock stepped back cannot revive a request that was already forgotten.
A signature is remembered as given to :meth:`ReplayGuard.accept`: the caller passes one canonical form
per signature (the manager passes the 32 digest bytes, so that hex spelled in either case is one
signature). Thread-safe: one lock around check-and-record.

Accepted pairs are forgotten in the order they were accepted: a pair whose window has passed stays in
memory until every pair accepted before it has expired too (at most one window plus the clock lead
after it was accepted, as each of those expires by then). That is not observable: a remembered pair
counts as seen only while its own window lasts, and a request past its window is refused as stale
first. Forgetting in arrival order costs a queue append and pop per request, not a heap's ordered
insert and removal among all the pairs of a window (~180,000 at 6,000 requests/s).
"""

from __future__ import annotations

import threading
from collections import deque
from enum import Enum

__all__ = ["ReplayGuard", "ReplayVerdict"]


class ReplayVerdict(Enum):
    """The outcome of :meth:`ReplayGuard.accept`."""

    ACCEPTED = "accepted"
    REPLAYED = "replayed"
    STALE = "stale"


class ReplayGuard:
    """Accepted request signatures, pruned by time. All times in integer or float milliseconds."""

    __slots__ = ("_arrivals", "_high_water_ms", "_lock", "_seen", "window_ms")

    def __init__(self, window_ms: float) -> None:
        self.window_ms = window_ms
        self._lock = threading.Lock()
        #: api key -> {signature: the end of its window}, for the pairs not yet forgotten.
        self._seen: dict[str, dict[str | bytes, float]] = {}
        #: (end of window, api key, signature) of the pairs in ``_seen``, in the order accepted.
        self._arrivals: deque[tuple[float, str, str | bytes]] = deque()
        self._high_water_ms = float("-inf")

    def __len__(self) -> int:
        """The pairs held in memory (a pair past its window may still be held: see the module doc)."""
        with self._lock:
            return len(self._arrivals)

    def __repr__(self) -> str:
        return f"ReplayGuard(window_ms={self.window_ms}, remembered={len(self)})"

    def accept(self, api_key: str, signature: str | bytes, timestamp_ms: int, now_ms: float) -> ReplayVerdict:
        """Record the pair if it is new and its timestamp not older than the window; say what happened.

        ``STALE`` means the timestamp fell out of the window by the (never decreasing) "now" of this
        guard; ``REPLAYED`` that the same pair was accepted before and its window has not passed.
        """
        with self._lock:
            if now_ms > self._high_water_ms:
                self._high_water_ms = now_ms
                self._prune()
            expires_ms = timestamp_ms + self.window_ms
            high_water = self._high_water_ms
            if expires_ms < high_water:
                return ReplayVerdict.STALE
            seen = self._seen.get(api_key)
            if seen is None:
                seen = self._seen[api_key] = {}
            else:
                until = seen.get(signature)
                if until is not None and until >= high_water:
                    return ReplayVerdict.REPLAYED
            seen[signature] = expires_ms
            self._arrivals.append((expires_ms, api_key, signature))
            return ReplayVerdict.ACCEPTED

    def _prune(self) -> None:
        arrivals = self._arrivals
        high_water = self._high_water_ms
        while arrivals and arrivals[0][0] < high_water:
            expires_ms, api_key, signature = arrivals.popleft()
            seen = self._seen[api_key]
            # The pair may have been accepted again since (its window had passed): keep the newer one.
            if seen.get(signature) == expires_ms:
                del seen[signature]
                if not seen:
                    del self._seen[api_key]
