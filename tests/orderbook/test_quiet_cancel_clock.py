"""Session 23: with the default clock (``time.time``, which has no effect), a cancel reads the clock only
when it needs the time: for an event somebody hears, a change log, or orders that may have expired.
A book on the default clock answers, numbers, stamps and expires exactly as a book on any other clock
showing the same time.

The tests that stand a clock of their own in for ``time.time`` patch the module's ``_WALL_CLOCK``,
which compiled code does not read from the module: ``pure_only``. The last test runs on both builds
with the real default clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import manticore_orderbook.book as book_module
from manticore_orderbook import EventType, OrderBook

_COMMAND = st.one_of(
    st.tuples(  # mostly resting: buys at 98-100, sells at 100-102
        st.just("add"),
        st.sampled_from(["buy", "sell"]),
        st.integers(0, 2),
        st.integers(1, 4),
        st.sampled_from(["GTC", "IOC", "GTD"]),
    ),
    st.tuples(st.just("cancel"), st.integers(1, 6)),  # the k-th newest order added (or an unknown id)
    st.tuples(st.just("tick"), st.integers(1, 5)),  # the time moves on (GTD orders may expire)
    st.tuples(  # a handler on or off (the types a cancel may publish, and two others)
        st.just("hear"),
        st.sampled_from(
            [
                EventType.ORDER_CANCELLED,
                EventType.PRICE_LEVEL_CHANGED,
                EventType.PRICE_LEVEL_REMOVED,
                EventType.ORDER_EXPIRED,
                EventType.ORDER_ADDED,
                EventType.TRADE_EXECUTED,
            ]
        ),
        st.booleans(),
    ),
    st.tuples(st.just("record"), st.booleans()),  # a change recorder on or off
)


#: Two resting bids at one level (the examples: a cancel heard, its level's change or removal heard).
_TWO_BIDS: list[tuple[Any, ...]] = [("add", "buy", 1, 1, "GTC"), ("add", "buy", 1, 1, "GTC")]


class _Time:
    """The time the test shows, read through two clocks: one the book takes for the default clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def wall(self) -> float:
        return self.now

    def other(self) -> float:
        return self.now


def _plain(item: object) -> object:
    """A change entry's item as a comparable value: an Order, OrderExtra or Trade as its fields (not
    its level)."""
    names = getattr(type(item), "__slots__", None)
    if names is None or type(item).__module__ != "manticore_orderbook.model":
        return item
    fields = [name for cls in type(item).__mro__ for name in getattr(cls, "__slots__", ())]
    return tuple(_plain(getattr(item, name)) for name in fields if name != "level")


def _run(book: OrderBook, commands: list[tuple[Any, ...]], time: _Time) -> list[Any]:
    """Apply ``commands``; return every answer, event and state seen on the way."""
    seen: list[Any] = []

    def handler(event_type: EventType, data: dict[str, Any]) -> None:
        seen.append((event_type, dict(data)))

    def recorder(entries: list[tuple[Any, ...]], *counters: Any) -> None:
        seen.append(("changes", [tuple(_plain(item) for item in entry) for entry in entries], counters))

    subscribed: set[EventType] = set()
    recording = False
    added: list[str] = []
    for n, command in enumerate(commands):
        kind = command[0]
        if kind == "add":
            _, side, step, quantity, tif = command
            price = 100 - step if side == "buy" else 100 + step
            expiry = time.now + 2 if tif == "GTD" else None
            seen.append(
                book.add_order(
                    side=side,
                    price=price,
                    quantity=quantity,
                    order_id=f"o{n}",
                    time_in_force=tif,
                    expiry_time=expiry,
                )
            )
            added.append(f"o{n}")
        elif kind == "cancel":
            k = command[1]
            seen.append(book.cancel_order(added[-k] if k <= len(added) else "unknown"))
        elif kind == "tick":
            time.now += command[1]
        elif kind == "hear":
            _, event_type, on = command
            if on and event_type not in subscribed:
                book.event_manager.subscribe(event_type, handler)
                subscribed.add(event_type)
            elif not on and event_type in subscribed:
                book.event_manager.unsubscribe(event_type, handler)
                subscribed.discard(event_type)
        elif command[1] != recording:
            recording = command[1]
            if recording:
                book.add_change_recorder(recorder)
            else:
                book.remove_change_recorder(recorder)
        seen.append((book.sequence, book.get_statistics(), book.get_snapshot()))
    book.check_invariants()
    return seen


@pytest.mark.pure_only
@settings(max_examples=300, deadline=None)
@given(commands=st.lists(_COMMAND, max_size=50))
@example([*_TWO_BIDS, ("hear", EventType.ORDER_CANCELLED, True), ("tick", 1), ("cancel", 2)])
@example([*_TWO_BIDS, ("hear", EventType.PRICE_LEVEL_CHANGED, True), ("tick", 1), ("cancel", 2)])
@example(
    [*_TWO_BIDS, ("hear", EventType.PRICE_LEVEL_REMOVED, True), ("cancel", 1), ("tick", 1), ("cancel", 1)]
)
def test_a_book_on_the_default_clock_runs_as_one_on_another_clock(commands: list[tuple[Any, ...]]) -> None:
    time = _Time()
    with pytest.MonkeyPatch.context() as patch:
        clock = time.wall  # one bound method object: the book tests the clock by identity
        patch.setattr(book_module, "_WALL_CLOCK", clock)  # the book's "default clock" is ours
        wall = OrderBook("QC/USD", clock=clock)
        other = OrderBook("QC/USD", clock=time.other)
        time.now = 1000.0
        seen_wall = _run(wall, commands, time)
        time.now = 1000.0
        seen_other = _run(other, commands, time)
    assert seen_wall == seen_other


@pytest.mark.pure_only
def test_a_heard_cancel_on_the_default_clock_is_stamped_with_the_time() -> None:
    """Regression guard for the clock read being skipped: the ORDER_CANCELLED and PRICE_LEVEL events of
    a heard cancel carry the clock's time, not the placeholder."""
    time = _Time()
    seen: list[tuple[EventType, float]] = []
    with pytest.MonkeyPatch.context() as patch:
        clock = time.wall
        patch.setattr(book_module, "_WALL_CLOCK", clock)
        book = OrderBook("QC/USD", clock=clock)
        book.add_order(side="buy", price=100, quantity=1, order_id="a")
        book.add_order(side="buy", price=100, quantity=1, order_id="b")
        time.now = 1234.5
        book.event_manager.subscribe(EventType.ORDER_CANCELLED, lambda t, d: seen.append((t, d["timestamp"])))
        book.event_manager.subscribe(
            EventType.PRICE_LEVEL_CHANGED, lambda t, d: seen.append((t, d["timestamp"]))
        )
        assert book.cancel_order("a")
    assert seen == [(EventType.ORDER_CANCELLED, 1234.5), (EventType.PRICE_LEVEL_CHANGED, 1234.5)]


def test_the_default_clock_is_time_time() -> None:
    import time

    assert book_module._WALL_CLOCK is time.time
    assert OrderBook("QC/USD")._clock is book_module._WALL_CLOCK


@pytest.mark.pure_only
def test_a_quiet_cancel_on_the_default_clock_does_not_read_it() -> None:
    """What the shortcut is for: a cancel nobody hears, with no order that may expire, does not call
    the default clock (an add always does: its order's timestamp)."""
    reads: list[int] = []

    def clock() -> float:
        reads.append(1)
        return 1000.0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(book_module, "_WALL_CLOCK", clock)
        book = OrderBook("QC/USD", clock=clock)
        book.add_order(side="buy", price=100, quantity=1, order_id="a")
        book.add_order(side="buy", price=100, quantity=1, order_id="b")
        assert len(reads) == 2
        assert book.cancel_order("a")
        assert len(reads) == 2
        book.add_order(side="buy", price=99, quantity=1, order_id="g", expiry_time=2000.0)
        assert book.cancel_order("b") and len(reads) == 4  # an order may expire: read


def test_a_heard_cancel_on_the_real_default_clock_is_stamped_with_the_time() -> None:
    """Both builds, the real ``time.time``: a cancel heard (its own event, or its level's change or
    removal while the cancel itself is unheard) carries a reading of the clock taken during the call,
    never the placeholder of a clock not read."""
    import time

    for heard in (EventType.ORDER_CANCELLED, EventType.PRICE_LEVEL_CHANGED, EventType.PRICE_LEVEL_REMOVED):
        book = OrderBook("QC/USD")
        stamps: list[float] = []
        book.add_order(side="buy", price=100, quantity=1, order_id="a")
        book.add_order(side="buy", price=100, quantity=1, order_id="b")

        def stamp(event_type: EventType, data: dict[str, Any], seen: list[float] = stamps) -> None:
            seen.append(data["timestamp"])

        book.event_manager.subscribe(heard, stamp)
        before = time.time()
        assert book.cancel_order("a") and book.cancel_order("b")
        after = time.time()
        assert stamps and all(before <= stamp <= after for stamp in stamps), (heard, stamps)
