"""A sorted set of integer prices whose cost does not grow with the number of price levels in practice.

The prices live in a list of short sorted chunks (at most ``2 * load`` prices each) plus the list of
each chunk's maximum, in the manner of a B-tree of height two. Insert costs a binary search plus a
memmove of at most one chunk; the best (lowest or highest) price is read in O(1). The empty chunk list
is never kept: every chunk holds at least one price.

Removal is lazy away from the ends. Taking out the lowest or highest price is done at once (that is
where the book trades); any other price is only marked removed, in a set, in O(1). On a deep book a
cancel far from the top would otherwise pay two binary searches over boxed integers scattered through
memory plus a memmove, a dozen or more cache misses; the mark costs one. Marked prices stay in the
chunks: an end that reaches one sweeps it out at once, so ``min``/``max`` and the chunk ends are
always present prices; iteration skips marks; adding a marked price back clears its mark; and when
marks outnumber present prices the chunks are rebuilt without them (amortised O(1) per removal).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

__all__ = ["PriceIndex"]


class PriceIndex:
    """Sorted unique integers with O(1) min/max and O(log n + load) insert/remove."""

    __slots__ = ("_chunks", "_load", "_marked", "_maxes", "_size")

    def __init__(self, load: int = 256) -> None:
        self._chunks: list[list[int]] = []
        self._maxes: list[int] = []
        self._load = load
        self._size = 0  # present prices (the chunks also hold the marked ones)
        self._marked: set[int] = set()  # removed prices still in the chunks, never at either end

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __contains__(self, price: int) -> bool:
        if price in self._marked:
            return False
        maxes = self._maxes
        i = bisect_left(maxes, price)
        if i == len(maxes):
            return False
        chunk = self._chunks[i]
        j = bisect_left(chunk, price)
        return chunk[j] == price

    def add(self, price: int) -> None:
        """Insert ``price``, which must not be present already."""
        self._size += 1
        marked = self._marked
        if marked and price in marked:  # still in its chunk: present again
            marked.remove(price)
            return
        maxes = self._maxes
        if not maxes:
            self._chunks.append([price])
            maxes.append(price)
            return
        # A new best price (where a book adds most often) needs no binary search.
        if price > maxes[-1]:
            i = len(maxes) - 1
            chunk = self._chunks[i]
            chunk.append(price)
            maxes[i] = price
        elif price < self._chunks[0][0]:
            i = 0
            chunk = self._chunks[0]
            chunk.insert(0, price)
        else:
            i = bisect_left(maxes, price)
            chunk = self._chunks[i]
            insort(chunk, price)
        if len(chunk) > 2 * self._load:
            upper = chunk[self._load :]
            del chunk[self._load :]
            maxes[i] = chunk[-1]
            self._chunks.insert(i + 1, upper)
            maxes.insert(i + 1, upper[-1])

    def remove(self, price: int) -> None:
        """Remove ``price``, which must be present: at once at either end, otherwise by a mark."""
        self._size -= 1
        chunks = self._chunks
        if price == chunks[0][0] or price == chunks[-1][-1]:
            self._take_out(price)
            if self._marked:
                self._sweep_ends()
            return
        marked = self._marked
        marked.add(price)
        if len(marked) > self._size + self._load:
            self._rebuild()

    def _sweep_ends(self) -> None:
        """Take out marked prices that an end has reached, until both ends are present prices."""
        marked = self._marked
        chunks = self._chunks
        while chunks and chunks[0][0] in marked:
            low = chunks[0][0]
            marked.remove(low)
            self._take_out(low)
        while chunks and chunks[-1][-1] in marked:
            high = chunks[-1][-1]
            marked.remove(high)
            self._take_out(high)

    def _rebuild(self) -> None:
        """Drop every marked price from the chunks (they outnumber the present ones)."""
        marked = self._marked
        present = [price for chunk in self._chunks for price in chunk if price not in marked]
        marked.clear()
        load = self._load
        self._chunks = [present[i : i + load] for i in range(0, len(present), load)]
        self._maxes = [chunk[-1] for chunk in self._chunks]

    def _take_out(self, price: int) -> None:
        """Delete ``price`` from its chunk (it must be there), dropping the chunk if it empties."""
        maxes = self._maxes
        chunks = self._chunks
        # Either end (where a book removes most often) needs no binary search.
        last = chunks[-1]
        if price == last[-1]:
            last.pop()
            if last:
                maxes[-1] = last[-1]
            else:
                chunks.pop()
                maxes.pop()
            return
        first = chunks[0]
        if price == first[0]:
            del first[0]
            if not first:
                del chunks[0]
                del maxes[0]
            return
        i = bisect_left(maxes, price)
        chunk = self._chunks[i]
        j = bisect_left(chunk, price)
        del chunk[j]
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
        marked = self._marked
        for chunk in self._chunks:
            if marked:
                for price in chunk:
                    if price not in marked:
                        yield price
            else:
                yield from chunk

    def descending(self) -> Iterator[int]:
        """Prices from highest to lowest."""
        marked = self._marked
        for chunk in reversed(self._chunks):
            if marked:
                for price in reversed(chunk):
                    if price not in marked:
                        yield price
            else:
                yield from reversed(chunk)

    def clear(self) -> None:
        """Remove every price."""
        self._chunks.clear()
        self._maxes.clear()
        self._marked.clear()
        self._size = 0

    def check_invariants(self) -> None:
        """Raise AssertionError if the internal structure is inconsistent (used by tests)."""
        flat = [p for chunk in self._chunks for p in chunk]
        assert flat == sorted(set(flat)), "prices not strictly ascending"
        assert self._marked <= set(flat), "a marked price is not in the chunks"
        assert len(flat) - len(self._marked) == self._size, "size out of date"
        if flat:
            assert flat[0] not in self._marked and flat[-1] not in self._marked, "an end is marked"
        assert len(self._marked) <= self._size + self._load, "marks not rebuilt away"
        assert all(self._chunks), "empty chunk kept"
        assert self._maxes == [chunk[-1] for chunk in self._chunks], "chunk maxima out of date"
        assert all(len(chunk) <= 2 * self._load for chunk in self._chunks), "chunk too large"
