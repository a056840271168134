"""A price level's four event templates live in one record, made only when an event of the level needs one.

A level starts with the shared, empty ``NO_TEMPLATES`` record (so a book nobody listens to builds none and
each level stays in a 128-byte allocation block); the first template the book makes for a level gives the
level a record of its own. The shared record is never written to, and a new ``symbol`` gives every level
the shared record back (docs/performance.md, session 20 h4).
"""

from __future__ import annotations

import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType, OrderBook
from manticore_orderbook.enums import BUY
from manticore_orderbook.model import NO_TEMPLATES, LevelTemplates, PriceLevel

from .support import FakeClock

_TEMPLATE_NAMES = ("payload", "fill_payload", "added_payload", "cancelled_payload")


def _levels(book: OrderBook) -> list[PriceLevel]:
    return [*book._bid_levels.values(), *book._ask_levels.values()]


def _shared_record_is_empty() -> bool:
    return all(getattr(NO_TEMPLATES, name) is None for name in _TEMPLATE_NAMES)


def test_a_price_level_fits_a_128_byte_allocation_block() -> None:
    """Four templates in one slot: a level (with its GC header) takes at most 128 bytes, compiled or not."""
    level = PriceLevel(100, BUY)
    assert sys.getsizeof(level) <= 128
    assert level.templates is NO_TEMPLATES
    assert _shared_record_is_empty()


def test_a_book_nobody_listens_to_gives_no_level_a_template_record() -> None:
    book = OrderBook("NL/USD", clock=FakeClock(), tick_size="0.01", lot_size="0.001")
    for i in range(20):
        book.add_order("buy", f"{99 - i % 5}.00", "1", order_id=f"b{i}", user_id="u")
        book.add_order("sell", f"{101 + i % 5}.00", "1", order_id=f"s{i}", user_id="u")
    book.add_order("buy", "103.00", "7", order_id="taker", user_id="t")
    for i in range(0, 20, 3):
        book.cancel_order(f"b{i}")
    levels = _levels(book)
    assert levels
    assert all(level.templates is NO_TEMPLATES for level in levels)
    assert _shared_record_is_empty()


_COMMANDS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from(("buy", "sell")),
            st.integers(95, 105),
            st.integers(1, 4),
            st.sampled_from(("GTC", "GTC", "IOC")),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("symbol"), st.sampled_from(("AA/USD", "BB/USD"))),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_COMMANDS, st.sampled_from(("float", "str")))
def test_the_shared_record_stays_empty_and_levels_get_their_own(commands: list[Any], numbers: str) -> None:
    """Random adds, IOC sweeps, cancels and renames with a subscriber: after every command the shared
    record holds nothing, every level with a template has a record of its own holding exactly the
    level's price, and after a rename every level is back on the shared record."""
    book = OrderBook("AA/USD", clock=FakeClock(), tick_size="1", lot_size="1", number_format=numbers)
    seen: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda event_type, data: seen.append((event_type, data)))
    added = 0
    for command in commands:
        if command[0] == "add":
            _, side, price, quantity, tif = command
            book.add_order(side, price, quantity, order_id=f"o{added}", user_id="u", time_in_force=tif)
            added += 1
        elif command[0] == "cancel":
            book.cancel_order(f"o{command[1]}")
        else:
            book.symbol = command[1]
            assert all(level.templates is NO_TEMPLATES for level in _levels(book))
        assert _shared_record_is_empty()
        for level in _levels(book):
            record = level.templates
            assert isinstance(record, LevelTemplates)
            if record is NO_TEMPLATES:
                continue
            made = [getattr(record, name) for name in _TEMPLATE_NAMES if getattr(record, name) is not None]
            assert made, "a record of its own is made for a template"
            price = book._level_price(level)
            for template in made:
                assert template["price"] == price and type(template["price"]) is type(price)
                assert template["symbol"] == book.symbol
    # every delivered level event carries its level's price (the templates were never mixed up)
    for event_type, data in seen:
        if event_type is EventType.PRICE_LEVEL_CHANGED:
            assert data["symbol"] in ("AA/USD", "BB/USD")
