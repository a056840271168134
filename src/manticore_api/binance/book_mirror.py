"""A copy of each book built only from durable stream messages (the source of partial books and tickers).

The exchange's live book may hold commands that are not durable yet; market streams must show none of
them. :class:`BookMirror` starts from a snapshot taken while nothing is in flight (server start, before
any command) and applies the ``book`` diffs of :mod:`manticore_matching.feed` as they become durable, so
its state at ``sequence`` is exactly the durable book at that sequence.

Levels are kept per side as ``Decimal price -> quantity text``; the best price is cached and recomputed
only when the best level goes away, so following a busy book costs O(1) per level change.
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any

__all__ = ["BookMirror", "MirrorSide"]


class MirrorSide:
    """One side of a mirrored book. ``descending`` is True for bids (best = highest price)."""

    __slots__ = ("_best", "_best_known", "descending", "levels")

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[Decimal, str] = {}
        self._best: Decimal | None = None
        self._best_known = True

    def set(self, price: str, quantity: str) -> None:
        """Set a level's visible quantity; ``"0"`` (any zero) removes it."""
        key = Decimal(price)
        if Decimal(quantity) == 0:
            if self.levels.pop(key, None) is not None and key == self._best:
                self._best_known = False
            return
        self.levels[key] = quantity
        if self._best_known and (self._best is None or self._better(key, self._best)):
            self._best = key

    def _better(self, one: Decimal, other: Decimal) -> bool:
        return one > other if self.descending else one < other

    def best(self) -> tuple[Decimal, str] | None:
        """The best level ``(price, quantity)`` or None when the side is empty."""
        if not self._best_known:
            levels = self.levels
            self._best = (max(levels) if self.descending else min(levels)) if levels else None
            self._best_known = True
        if self._best is None:
            return None
        return self._best, self.levels[self._best]

    def top(self, count: int) -> list[tuple[Decimal, str]]:
        """The best ``count`` levels, best first."""
        pick = heapq.nlargest if self.descending else heapq.nsmallest
        return [(price, self.levels[price]) for price in pick(count, self.levels)]

    def clear(self) -> None:
        self.levels.clear()
        self._best = None
        self._best_known = True


class BookMirror:
    """One market's durable book: ``sequence`` (the book's event sequence) and both sides."""

    __slots__ = ("asks", "bids", "sequence")

    def __init__(self) -> None:
        self.sequence = 0
        self.bids = MirrorSide(descending=True)
        self.asks = MirrorSide(descending=False)

    def load(self, snapshot: dict[str, Any]) -> None:
        """Replace the state with an exchange snapshot (``sequence``, ``bids``, ``asks``)."""
        self.bids.clear()
        self.asks.clear()
        for level in snapshot["bids"]:
            self.bids.set(str(level["price"]), str(level["quantity"]))
        for level in snapshot["asks"]:
            self.asks.set(str(level["price"]), str(level["quantity"]))
        self.sequence = int(snapshot["sequence"])

    def apply(self, diff: dict[str, Any]) -> bool:
        """Apply a ``book`` message; False (and nothing applied) if it does not follow ``sequence``."""
        if int(diff["first_sequence"]) != self.sequence + 1:
            return False
        for level in diff["bids"]:
            self.bids.set(str(level["price"]), str(level["quantity"]))
        for level in diff["asks"]:
            self.asks.set(str(level["price"]), str(level["quantity"]))
        self.sequence = int(diff["last_sequence"])
        return True
