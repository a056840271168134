"""The change log (``OrderBook.add_change_recorder``) against the events of the same commands."""

from __future__ import annotations

from typing import Any

import pytest

from manticore_orderbook import EventType, OrderBook
from manticore_orderbook.changes import (
    CHANGE_ADDED,
    CHANGE_CANCELLED,
    CHANGE_CLEARED,
    CHANGE_EXPIRED,
    CHANGE_ORDER,
    CHANGE_TRADE,
    ChangeEntry,
)
from tests.command_streams import Clock, apply, make_stream, new_book

#: The event each kind of entry stands for (CHANGE_ORDER covers modifies and triggers).
_EVENTS_OF_KIND = {
    CHANGE_ADDED: {EventType.ORDER_ADDED},
    CHANGE_ORDER: {EventType.ORDER_MODIFIED, EventType.ORDER_TRIGGERED},
    CHANGE_CANCELLED: {EventType.ORDER_CANCELLED},
    CHANGE_EXPIRED: {EventType.ORDER_EXPIRED},
    CHANGE_CLEARED: {EventType.BOOK_CLEARED},
}


def _expected_keys(events: list[tuple[EventType, dict[str, Any]]]) -> list[tuple[str, int, str | None]]:
    """(event type value, sequence, order id) of the events the log must cover, in event order."""
    keys = []
    for event_type, data in events:
        if event_type is EventType.TRADE_EXECUTED:
            keys.append((event_type.value, data["sequence"], None))
        elif event_type in (EventType.ORDER_FILLED, EventType.ERROR) or event_type.value.startswith("price"):
            continue
        else:
            keys.append((event_type.value, data["sequence"], data.get("order_id")))
    return keys


def _logged_keys(
    entries: list[ChangeEntry], events: dict[int, EventType]
) -> list[tuple[str, int, str | None]]:
    keys = []
    for kind, a, b, _c in entries:
        if kind == CHANGE_TRADE:
            keys.append((EventType.TRADE_EXECUTED.value, a.sequence, None))
            assert (a.maker_order_id, a.taker_order_id) == (b.order_id, _c.order_id)
            continue
        event_type = events[b]
        assert event_type in _EVENTS_OF_KIND[kind], (kind, event_type)
        keys.append((event_type.value, b, None if a is None else a.order_id))
    return keys


@pytest.mark.parametrize("seed", [1, 7, 21, 42, 99])
def test_the_log_covers_every_order_event_once_per_command(seed: int) -> None:
    clock = Clock()
    book = new_book(clock=clock)
    events: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda e, d: events.append((e, d)))
    calls: list[tuple[list[ChangeEntry], tuple[int, int, int, int | None]]] = []
    book.add_change_recorder(lambda entries, *position: calls.append((list(entries), position)))
    for command in [*make_stream(seed, 500), None]:
        events.clear()
        calls.clear()
        before = book.sequence
        if command is None:
            book.clear()
        else:
            apply(book, clock, command)
        expected = _expected_keys(events)
        if not expected:
            assert calls == [] or book.sequence != before
            continue
        assert len(calls) == 1, command
        entries, position = calls[0]
        assert position == (*book.counters(), book.last_trade_ticks)
        by_sequence = {data["sequence"]: event_type for event_type, data in events}
        assert _logged_keys(entries, by_sequence) == expected


def test_cancelled_entries_keep_the_quantities_of_their_event() -> None:
    book = OrderBook("X/Y", tick_size="1", lot_size="1", self_trade_prevention="cancel_newest")
    calls: list[list[ChangeEntry]] = []
    book.add_change_recorder(lambda entries, *_position: calls.append(list(entries)))
    book.add_order("sell", 10, 5, order_id="maker", user_id="u")
    book.add_order("buy", 10, 3, order_id="taker", user_id="u")  # cancelled by self-trade prevention
    (kind, order, _sequence, extra) = calls[-1][-1]
    assert (kind, order.order_id) == (CHANGE_CANCELLED, "taker")
    assert extra == ("self_trade_prevention", 3, 3)  # the book zeroes order.open afterwards


def test_recorders_do_not_change_the_event_stream() -> None:
    def run(record: bool) -> list[tuple[str, dict[str, Any]]]:
        clock = Clock()
        book = new_book(clock=clock)
        stream: list[tuple[str, dict[str, Any]]] = []
        book.event_manager.subscribe_all(lambda e, d: stream.append((e.value, dict(d))))
        if record:
            book.add_change_recorder(lambda _entries, *_position: None)
        for command in make_stream(5, 400):
            apply(book, clock, command)
        return stream

    assert run(True) == run(False)


def test_removing_the_last_recorder_stops_the_log() -> None:
    book = OrderBook("X/Y", tick_size="1", lot_size="1")
    calls: list[int] = []

    def recorder(_entries: list[ChangeEntry], sequence: int, *_counters: int | None) -> None:
        calls.append(sequence)

    book.add_change_recorder(recorder)
    book.add_order("buy", 10, 1)
    assert calls == [book.sequence]
    assert book.remove_change_recorder(recorder)
    assert not book.remove_change_recorder(recorder)
    book.add_order("buy", 11, 1)
    assert len(calls) == 1 and book._changes is None
    with pytest.raises(TypeError):
        book.add_change_recorder("not callable")  # type: ignore[arg-type]
