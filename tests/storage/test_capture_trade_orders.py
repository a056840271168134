"""``capture``'s step for a trade: its maker and its taker become touched orders, the maker at the
trade's sequence + 1 and the taker at + 2, the later trade's order and sequence winning for an order
that trades twice in one command; a later full-state entry of the order replaces its fill record.

The book's own commands seldom leave a taker without a later full-state entry, or make one maker trade
twice, so these are checked here with stand-ins for the book's trade and orders (``capture`` only calls
``Trade.fields(maker, taker)`` and ``Order.progress()`` / ``Order.fields()`` on them)."""

from __future__ import annotations

from typing import Any

from manticore_orderbook.changes import CHANGE_ADDED, CHANGE_TRADE
from manticore_storage.capture import RECORD_FILL, RECORD_ORDER, RECORD_TRADE, capture


class _Order:
    def __init__(self, order_id: str, filled: int) -> None:
        self.order_id = order_id
        self.filled = filled

    def progress(self) -> tuple[Any, ...]:
        return (self.order_id, self.filled, 10 - self.filled, 0, 0)

    def fields(self, quantity: int = -1, open_: int = -1) -> tuple[Any, ...]:
        return (self.order_id, "full", quantity, open_)


class _Trade:
    def __init__(self, number: int, sequence: int) -> None:
        self.number = number
        self.sequence = sequence

    def fields(self, maker: _Order, taker: _Order) -> tuple[Any, ...]:
        return (self.number, self.sequence, 100, 1, maker.order_id, taker.order_id)


def _trade(number: int, sequence: int, maker: _Order, taker: _Order) -> tuple[Any, ...]:
    return (CHANGE_TRADE, _Trade(number, sequence), maker, taker)


def test_a_trade_touches_its_maker_then_its_taker_at_the_next_two_sequences() -> None:
    maker, taker = _Order("M", 1), _Order("T", 1)
    entries: list[Any] = [_trade(1, 10, maker, taker)]
    records: tuple[Any, ...] = capture(entries)
    assert records == (
        (RECORD_FILL, 11, "M", 1, 9, 0, 0),
        (RECORD_FILL, 12, "T", 1, 9, 0, 0),
        (RECORD_TRADE, 1, 10, 100, 1, "M", "T"),
    )


def test_the_later_trade_of_an_order_gives_its_record_object_and_sequence() -> None:
    maker_first, maker_again = _Order("M", 1), _Order("M", 3)  # the same order id, a later state
    taker_first, taker_again = _Order("T", 1), _Order("T", 3)
    other = _Order("N", 2)
    entries: list[Any] = [
        _trade(1, 10, maker_first, taker_first),
        _trade(2, 13, other, taker_again),  # the taker trades again, with another maker
        _trade(3, 16, maker_again, _Order("U", 1)),  # the first maker trades again
    ]
    records: tuple[Any, ...] = capture(entries)
    assert records[:4] == (
        (RECORD_FILL, 17, "M", 3, 7, 0, 0),
        (RECORD_FILL, 15, "T", 3, 7, 0, 0),
        (RECORD_FILL, 14, "N", 2, 8, 0, 0),
        (RECORD_FILL, 18, "U", 1, 9, 0, 0),
    )
    assert [record[0] for record in records[4:]] == [RECORD_TRADE] * 3


def test_a_full_state_entry_after_the_trade_replaces_the_fill_record() -> None:
    maker, taker = _Order("M", 1), _Order("T", 1)
    rested = _Order("T", 1)
    entries: list[Any] = [_trade(1, 10, maker, taker), (CHANGE_ADDED, rested, 13, None)]
    records: tuple[Any, ...] = capture(entries)
    assert records[0] == (RECORD_FILL, 11, "M", 1, 9, 0, 0)
    assert records[1] == (RECORD_ORDER, 13, CHANGE_ADDED, None, "T", "full", -1, -1)
    assert records[2][0] == RECORD_TRADE
