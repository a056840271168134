"""A sorted set of integer prices whose cost does not grow with the number of price levels in practice.

The prices live in a list of short sorted chunks (at most ``2 * load`` prices each) plus the list of
each chunk's maximum, in the manner of a B-tree of height two. Insert and remove cost a binary search
plus a memmove of at most one chunk; the best (lowest or highest) price is read in O(1). The empty
chunk list is never kept: every chunk holds at least one price.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

__all__ = ["PriceIndex"]


class PriceIndex:
    """Sorted unique integers with O(1) min/max and O(log n + load) insert/remove."""

    __slots__ = ("_chunks", "_load", "_maxes", "_size")

    def __init__(self, load: int = 256) -> None:
        self._chunks: list[list[int]] = []
        self._maxes: list[int] = []
        self._load = load
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __contains__(self, price: int) -> bool:
        maxes = self._maxes
        i = bisect_left(maxes, price)
        if i == len(maxes):
            return False
        chunk = self._chunks[i]
        j = bisect_left(chunk, price)
        return chunk[j] == price

    def add(self, price: int) -> None:
        """Insert ``price``, which must not be present already."""
        maxes = self._maxes
        self._size += 1
        if not maxes:
            self._chunks.append([price])
            maxes.append(price)
            return
        i = bisect_left(maxes, price)
        if i == len(maxes):
            i -= 1
            chunk = self._chunks[i]
            chunk.append(price)
            maxes[i] = price
        else:
            chunk = self._chunks[i]
            insort(chunk, price)
        if len(chunk) > 2 * self._load:
            upper = chunk[self._load :]
            del chunk[self._load :]
            maxes[i] = chunk[-1]
            self._chunks.insert(i + 1, upper)
            maxes.insert(i + 1, upper[-1])

    def remove(self, price: int) -> None:
        """Remove ``price``, which must be present."""
        maxes = self._maxes
        i = bisect_left(maxes, price)
        chunk = self._chunks[i]
        j = bisect_left(chunk, price)
        del chunk[j]
        self._size -= 1
        if not chunk:
            del self._chunks[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]

    def min(self) -> int | None:
        """The lowest price, or None when empty."""
        return self._chunks[0][0] if self._chunks else None

    def max(self) -> int | None:
        """The highest price, or None when empty."""
        return self._maxes[-1] if self._maxes else None

    def ascending(self) -> Iterator[int]:
        """Prices from lowest to highest."""
        for chunk in self._chunks:
            yield from chunk

    def descending(self) -> Iterator[int]:
        """Prices from highest to lowest."""
        for chunk in reversed(self._chunks):
            yield from reversed(chunk)

    def clear(self) -> None:
        """Remove every price."""
        self._chunks.clear()
        self._maxes.clear()
        self._size = 0

    def check_invariants(self) -> None:
        """Raise AssertionError if the internal structure is inconsistent (used by tests)."""
        flat = [p for chunk in self._chunks for p in chunk]
        assert flat == sorted(set(flat)), "prices not strictly ascending"
        assert len(flat) == self._size, "size out of date"
        assert all(self._chunks), "empty chunk kept"
        assert self._maxes == [chunk[-1] for chunk in self._chunks], "chunk maxima out of date"
        assert all(len(chunk) <= 2 * self._load for chunk in self._chunks), "chunk too large"
