"""A copy of each book built only from durable stream messages (the source of partial books and tickers).

The exchange's live book may hold commands that are not durable yet; market streams must show none of
them. :class:`BookMirror` starts from a snapshot taken while nothing is in flight (server start, before
any command) and applies the ``book`` diffs of :mod:`manticore_matching.feed` as they become durable, so
its state at ``sequence`` is exactly the durable book at that sequence.

Levels are kept per side as ``Decimal price -> quantity text``; the best price is cached and recomputed
only when the best level goes away, so following a busy book costs O(1) per level change. A level change
reads its price text through a cache of ``Decimal`` keys (a Decimal made and hashed per change was most
of its cost) and tells a zero quantity from its text when that is plain digits; every text means what
``Decimal`` reads from it (tests/api/test_book_mirror_texts.py).
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any

__all__ = ["KEY_CACHE_SIZE", "BookMirror", "MirrorSide"]

#: Price texts whose ``Decimal`` a side remembers (then it forgets them all and starts again).
KEY_CACHE_SIZE = 4096


def _is_zero(quantity: str) -> bool:
    """``Decimal(quantity) == 0`` (the same errors for a text that is no number); plain digit texts
    with at most one point are answered from their characters."""
    if quantity == "0":
        return True
    if quantity.isascii() and quantity.replace(".", "", 1).isdigit():
        return not quantity.strip("0.")
    return bool(Decimal(quantity) == 0)


class MirrorSide:
    """One side of a mirrored book. ``descending`` is True for bids (best = highest price)."""

    __slots__ = ("_best", "_best_known", "_keys", "descending", "levels")

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[Decimal, str] = {}
        self._best: Decimal | None = None
        self._best_known = True
        #: ``Decimal(text)`` by price text (a function of the text alone; bounded by KEY_CACHE_SIZE).
        self._keys: dict[str, Decimal] = {}

    def set(self, price: str, quantity: str) -> None:
        """Set a level's visible quantity; ``"0"`` (any zero) removes it."""
        keys = self._keys
        key = keys.get(price)
        if key is None:
            key = Decimal(price)
            if len(keys) >= KEY_CACHE_SIZE:
                keys.clear()
            keys[price] = key
        if _is_zero(quantity):
            if self.levels.pop(key, None) is not None and key == self._best:
                self._best_known = False
            return
        self.levels[key] = quantity
        if self._best_known:
            best = self._best
            if best is None or (key > best if self.descending else key < best):
                self._best = key

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
