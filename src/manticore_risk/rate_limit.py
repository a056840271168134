"""A per-user sliding-window rate limiter driven by the caller's clock readings (never the wall clock)."""

from __future__ import annotations

from collections import deque

from .ledger import UserId

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``limit`` events per user in any window of ``window`` seconds.

    An event at time ``t`` counts for a check at ``now`` while ``now - t < window``. Only
    :meth:`record` adds events (and drops old ones); :meth:`allows` only looks. Deterministic: the
    times come from the caller.
    """

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: dict[UserId, deque[float]] = {}

    def allows(self, user_id: UserId, now: float) -> bool:
        """Whether one more event for ``user_id`` at ``now`` stays within the limit. Changes nothing."""
        times = self._times.get(user_id)
        if times is None or len(times) < self.limit:
            return True  # fewer recorded times than the limit: no window can hold too many
        horizon = now - self.window
        return sum(1 for t in times if t > horizon) < self.limit

    def retry_after(self, user_id: UserId, now: float) -> float:
        """Seconds from ``now`` until one more event for ``user_id`` would be allowed: 0 when it is
        allowed now, else the time until enough of the counted events (the oldest first) have left the
        window. Changes nothing."""
        times = self._times.get(user_id)
        if not times:
            return 0.0
        horizon = now - self.window
        counted = [t for t in times if t > horizon]
        excess = len(counted) - self.limit
        if excess < 0:
            return 0.0
        return max(0.0, counted[excess] + self.window - now)

    def record(self, user_id: UserId, now: float) -> None:
        """Count one event for ``user_id`` at ``now`` (and forget the times no window can count again,
        assuming ``now`` does not go back by more than a window)."""
        times = self._times.setdefault(user_id, deque())
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()
        times.append(now)

    def take(self, user_id: UserId, now: float) -> bool:
        """:meth:`allows` and, when it does, :meth:`record`, in one call: True when the event at ``now``
        was within the limit and is now counted; False, changing nothing, when it was not."""
        times = self._times.get(user_id)
        if times is None:
            self._times[user_id] = deque((now,))
            return True
        horizon = now - self.window
        if len(times) >= self.limit and sum(1 for t in times if t > horizon) >= self.limit:
            return False
        while times and times[0] <= horizon:
            times.popleft()
        times.append(now)
        return True

    def export(self) -> list[list[object]]:
        """``[[user_id, [t, ...]], ...]``: the recorded times still inside some window."""
        return [[user_id, list(times)] for user_id, times in self._times.items() if times]

    def load(self, entries: list[tuple[UserId, list[float]]]) -> None:
        """Replace the recorded times (already validated by the caller)."""
        self._times = {user_id: deque(times) for user_id, times in entries}
