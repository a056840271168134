"""A per-user sliding-window rate limiter driven by the caller's clock readings (never the wall clock)."""

from __future__ import annotations

from .ledger import UserId

__all__ = ["RateLimiter"]


class _Window:
    """One user's recorded times, oldest first: ``times[head:]`` (a list with a moving start instead of a
    deque: the compiled build indexes and appends a list natively)."""

    __slots__ = ("head", "times")

    def __init__(self, times: list[float]) -> None:
        self.times = times
        self.head = 0

    def live(self) -> list[float]:
        """The recorded times (a copy)."""
        return self.times[self.head :]

    def count_after(self, horizon: float) -> int:
        """How many recorded times are after ``horizon``."""
        times = self.times
        return sum(1 for i in range(self.head, len(times)) if times[i] > horizon)

    def push(self, now: float, horizon: float) -> None:
        """Forget the oldest times while they are at or before ``horizon``, then record ``now``."""
        times = self.times
        head = self.head
        end = len(times)
        while head < end and times[head] <= horizon:
            head += 1
        if head >= 32 and 2 * head >= end:
            del times[:head]
            head = 0
        self.head = head
        times.append(now)


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
        self._times: dict[UserId, _Window] = {}

    def allows(self, user_id: UserId, now: float) -> bool:
        """Whether one more event for ``user_id`` at ``now`` stays within the limit. Changes nothing."""
        times = self._times.get(user_id)
        if times is None or len(times.times) - times.head < self.limit:
            return True  # fewer recorded times than the limit: no window can hold too many
        return times.count_after(now - self.window) < self.limit

    def retry_after(self, user_id: UserId, now: float) -> float:
        """Seconds from ``now`` until one more event for ``user_id`` would be allowed: 0 when it is
        allowed now, else the time until enough of the counted events (the oldest first) have left the
        window. Changes nothing."""
        times = self._times.get(user_id)
        if times is None:
            return 0.0
        horizon = now - self.window
        counted = [t for t in times.live() if t > horizon]
        excess = len(counted) - self.limit
        if excess < 0:
            return 0.0
        return max(0.0, counted[excess] + self.window - now)

    def record(self, user_id: UserId, now: float) -> None:
        """Count one event for ``user_id`` at ``now`` (and forget the times no window can count again,
        assuming ``now`` does not go back by more than a window)."""
        times = self._times.get(user_id)
        if times is None:
            self._times[user_id] = _Window([now])
        else:
            times.push(now, now - self.window)

    def take(self, user_id: UserId, now: float) -> bool:
        """:meth:`allows` and, when it does, :meth:`record`, in one call: True when the event at ``now``
        was within the limit and is now counted; False, changing nothing, when it was not."""
        times = self._times.get(user_id)
        if times is None:
            self._times[user_id] = _Window([now])
            return True
        horizon = now - self.window
        if len(times.times) - times.head >= self.limit and times.count_after(horizon) >= self.limit:
            return False
        times.push(now, horizon)
        return True

    def export(self) -> list[list[object]]:
        """``[[user_id, [t, ...]], ...]``: the recorded times still inside some window."""
        return [[user_id, times.live()] for user_id, times in self._times.items() if times.live()]

    def load(self, entries: list[tuple[UserId, list[float]]]) -> None:
        """Replace the recorded times (already validated by the caller)."""
        self._times = {user_id: _Window(list(times)) for user_id, times in entries}
