"""The order index (``OrderBook._orders``) is a dict whose table keeps each key's hash.

CPython stores a dict of only ``str`` keys without hashes, so a probe that meets another key reads
that key's string; in a deep book those reads miss the caches (docs/performance.md, session 14
h4). The book's index is made a general table once, which stores the hashes. These tests check
that it is one (its entries are bigger than a ``str``-only dict's), that it stays one through
growth, ``clear()`` and a restore, and that it holds exactly the live orders, nothing else.
"""

from __future__ import annotations

import platform
import random
import sys

import pytest

from manticore_orderbook import OrderBook

from .support import make_book

needs_cpython = pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="the table layout is CPython's"
)


def str_only_dict(keys: list[str]) -> dict[str, object]:
    """A dict of the same keys entered one by one, as CPython lays out ``str``-only dicts."""
    plain: dict[str, object] = {}
    for key in keys:
        plain[key] = None
    return plain


def assert_hashed(book: OrderBook) -> None:
    keys = list(book._orders)
    assert len(keys) > 100  # enough entries for the entry size to decide the dict's size
    assert sys.getsizeof(book._orders) > sys.getsizeof(str_only_dict(keys))


def fill(book: OrderBook, count: int, prefix: str) -> None:
    for i in range(count):
        if i % 2:
            book.add_order("buy", 100_000 - i, 1, f"{prefix}{i}")
        else:
            book.add_order("sell", 100_000 + i, 1, f"{prefix}{i}")


@needs_cpython
def test_the_order_index_stores_hashes_and_keeps_doing_so_as_it_grows() -> None:
    book, _, _ = make_book(tick_size="1", lot_size="1")
    fill(book, 5_000, "o")  # grows the table several times
    assert_hashed(book)


@needs_cpython
def test_clear_and_restore_give_a_hashed_index_again() -> None:
    book, _, _ = make_book(tick_size="1", lot_size="1")
    fill(book, 300, "a")
    state = book.export_state()
    book.clear()
    assert len(book._orders) == 0
    fill(book, 300, "b")
    assert_hashed(book)
    restored, _, _ = make_book(tick_size="1", lot_size="1")
    restored.restore_state(state)
    assert_hashed(restored)


def test_the_index_holds_exactly_the_live_orders() -> None:
    rng = random.Random(14)
    book, _, _ = make_book(tick_size="1", lot_size="1")
    live: set[str] = set()
    for i in range(3_000):
        if live and rng.random() < 0.4:
            oid = rng.choice(sorted(live))
            assert book.cancel_order(oid)
            live.discard(oid)
        else:
            side = rng.choice(("buy", "sell"))
            price = rng.randint(900, 999) if side == "buy" else rng.randint(1_001, 1_100)
            oid = f"x{i}"
            book.add_order(side, price, 1, oid)
            live.add(oid)
    assert set(book._orders) == live
    assert all(isinstance(key, str) for key in book._orders)
    assert all(book.get_order(oid) is not None for oid in live)
    assert book.get_order("x-none") is None and "0" not in book._orders
    book.check_invariants()
