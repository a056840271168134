"""A sorted set of integer prices whose cost does not grow with the number of price levels in practice.

The prices live in a list of short sorted chunks (at most ``2 * load`` prices each) plus the list of
each chunk's maximum, in the manner of a B-tree of height two. Insert costs a binary search plus a
memmove of at most one chunk; the best (lowest or highest) price is read in O(1). The empty chunk list
is never kept: every chunk holds at least one price.

Each price stands for a :class:`~manticore_orderbook.model.PriceLevel` found in a price -> level dict:
the book's own level dict (``PriceIndex(levels)``, driven through :meth:`PriceIndex.add_level` and
:meth:`PriceIndex.remove_level`), or one the index keeps itself (``PriceIndex()``, driven with plain
prices through :meth:`PriceIndex.add` and :meth:`PriceIndex.remove`).

Removal is lazy away from the ends. Taking out the lowest or highest price is done at once (that is
where the book trades); any other price is only marked removed, in O(1), by a flag on its level
(``PriceLevel.marked``): on a deep book a cancel far from the top would otherwise pay two binary
searches over boxed integers scattered through memory plus a memmove, a dozen or more cache misses,
and a set of marked prices would cost a hash-table insert into a cold slot plus a boxed price. Marked
prices stay in the chunks (their levels must stay in the dict meanwhile): an end that reaches one
sweeps it out at once, so ``min``/``max`` and the chunk ends are always present prices; iteration
skips marks; adding a marked level back clears its mark; and when marks outnumber present prices the
chunks are rebuilt without them (amortised O(1) per removal).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Any

from .enums import Side
from .model import PriceLevel

__all__ = ["PriceIndex"]


class PriceIndex:
    """Sorted unique integers with O(1) min/max and O(log n + load) insert/remove.

    With ``levels`` (the book's price -> level dict of one side) every price added must have its level
    in that dict from :meth:`add_level` until it is taken out (an end's removal, a sweep, a rebuild or
    :meth:`drop_marked`); a removed level that stays marked must stay in the dict. Without, the index
    keeps a dict of its own and is used with plain prices.
    """

    __slots__ = ("_chunks", "_levels", "_load", "_marks", "_maxes", "_own", "_size")

    def __init__(self, levels: dict[int, PriceLevel] | None = None, load: int = 256) -> None:
        self._chunks: list[list[int]] = []
        self._maxes: list[int] = []
        self._load = load
        self._size = 0  # present prices (the chunks also hold the marked ones)
        self._marks = 0  # removed prices still in the chunks (marked levels), never at either end
        self._own = levels is None  # the index's own dict: add/remove by price
        self._levels: dict[int, PriceLevel] = {} if levels is None else levels

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
        return chunk[j] == price and not self._levels[price].marked

    def add(self, price: int) -> None:
        """Insert ``price``, which must not be present already (an index made without ``levels``)."""
        levels = self._levels
        level = levels.get(price)
        if level is None:
            level = PriceLevel(price, Side.BUY)
            levels[price] = level
        self.add_level(level)

    def remove(self, price: int) -> None:
        """Remove ``price``, which must be present (an index made without ``levels``)."""
        level = self._levels[price]
        self.remove_level(level)
        if not level.marked:  # taken out at an end (a rebuild has dropped it from the dict already)
            self._levels.pop(price, None)

    def add_level(self, level: PriceLevel, key: Any = None) -> None:
        """Insert ``level``'s price, which must not be present already (a marked level is present again).

        ``key``, when given, is an int equal to the level's price: the object the chunks keep. The book
        passes the int object that keys the level in its dict, so that compiled (where ``level.price``
        is an unboxed integer, boxed into a new object for each list it is stored in) a level's price is
        one object, not three: less memory per level in a deep book, and no allocation. (``Any``: compiled,
        the object is kept as it is, neither unboxed nor boxed again.)"""
        self._size += 1
        if level.marked:  # still in its chunk: present again
            level.marked = False
            self._marks -= 1
            return
        price = level.price
        if key is None:
            key = price
        maxes = self._maxes
        if not maxes:
            self._chunks.append([key])
            maxes.append(key)
            return
        # A new best price (where a book adds most often) needs no binary search.
        if price > maxes[-1]:
            i = len(maxes) - 1
            chunk = self._chunks[i]
            chunk.append(key)
            maxes[i] = key
        elif price < self._chunks[0][0]:
            i = 0
            chunk = self._chunks[0]
            chunk.insert(0, key)
        else:
            i = bisect_left(maxes, price)
            chunk = self._chunks[i]
            insort(chunk, key)
        if len(chunk) > 2 * self._load:
            upper = chunk[self._load :]
            del chunk[self._load :]
            maxes[i] = chunk[-1]
            self._chunks.insert(i + 1, upper)
            maxes.insert(i + 1, upper[-1])

    def remove_level(self, level: PriceLevel) -> None:
        """Remove ``level``'s price, which must be present: at once at either end, otherwise by a mark."""
        self._size -= 1
        price = level.price
        chunks = self._chunks
        if price == chunks[0][0] or price == chunks[-1][-1]:
            self._take_out(price)
            if self._marks:
                self._sweep_ends()
            return
        level.marked = True
        self._marks += 1
        if self._marks > self._size + self._load:
            self._rebuild()

    def drop_marked(self) -> None:
        """Take every marked price out of the chunks and clear its level's mark (before the owner of
        ``levels`` deletes emptied levels from it)."""
        if self._marks:
            self._rebuild()

    def _sweep_ends(self) -> None:
        """Take out marked prices that an end has reached, until both ends are present prices."""
        levels = self._levels
        chunks = self._chunks
        while chunks:
            low = chunks[0][0]
            level = levels[low]
            if not level.marked:
                break
            self._unmark_out(level)
            self._take_out(low)
        while chunks:
            high = chunks[-1][-1]
            level = levels[high]
            if not level.marked:
                break
            self._unmark_out(level)
            self._take_out(high)

    def _unmark_out(self, level: PriceLevel) -> None:
        """Clear the mark of ``level``, whose price leaves the chunks (and the own dict, if any)."""
        level.marked = False
        self._marks -= 1
        if self._own:
            del self._levels[level.price]

    def _rebuild(self) -> None:
        """Drop every marked price from the chunks (they outnumber the present ones)."""
        levels = self._levels
        present: list[int] = []
        for chunk in self._chunks:
            items: list[Any] = chunk  # compiled: the prices' objects as they are (see add_level)
            for item in items:
                level = levels[item]
                if level.marked:
                    self._unmark_out(level)
                else:
                    present.append(item)
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
        levels = self._levels
        for chunk in self._chunks:
            if self._marks:
                for price in chunk:
                    if not levels[price].marked:
                        yield price
            else:
                yield from chunk

    def descending(self) -> Iterator[int]:
        """Prices from highest to lowest."""
        levels = self._levels
        for chunk in reversed(self._chunks):
            if self._marks:
                for price in reversed(chunk):
                    if not levels[price].marked:
                        yield price
            else:
                yield from reversed(chunk)

    def marked_prices(self) -> set[int]:
        """The removed prices still in the chunks (for tests)."""
        levels = self._levels
        return {price for chunk in self._chunks for price in chunk if levels[price].marked}

    def clear(self) -> None:
        """Remove every price (the marks of levels still marked are cleared)."""
        levels = self._levels
        for chunk in self._chunks:
            for price in chunk:
                level = levels.get(price)
                if level is not None:
                    level.marked = False
        if self._own:
            levels.clear()
        self._chunks.clear()
        self._maxes.clear()
        self._marks = 0
        self._size = 0

    def check_invariants(self) -> None:
        """Raise AssertionError if the internal structure is inconsistent (used by tests)."""
        flat = [p for chunk in self._chunks for p in chunk]
        assert flat == sorted(set(flat)), "prices not strictly ascending"
        levels = self._levels
        assert all(p in levels and levels[p].price == p for p in flat), "a listed price has no level"
        marked = self.marked_prices()
        assert len(marked) == self._marks, "mark count out of date"
        assert len(flat) - self._marks == self._size, "size out of date"
        if self._own:
            assert set(levels) == set(flat), "own levels out of date"
            assert not any(level.marked for price, level in levels.items() if price not in marked)
        if flat:
            assert flat[0] not in marked and flat[-1] not in marked, "an end is marked"
        assert self._marks <= self._size + self._load, "marks not rebuilt away"
        assert all(self._chunks), "empty chunk kept"
        assert self._maxes == [chunk[-1] for chunk in self._chunks], "chunk maxima out of date"
        assert all(len(chunk) <= 2 * self._load for chunk in self._chunks), "chunk too large"
