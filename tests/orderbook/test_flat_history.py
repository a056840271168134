"""The trade history as the interpreter keeps it (flat, a row's fields in a row: session 22) answers as
a list of trades did: the same ``get_trade_history``, statistics and ``_trades`` view, whether or not
somebody heard each trade, through the ring's wrap-around; and the quiet add and cancel paths that
take two sequence numbers at once number events as the heard paths do."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType, OrderBook
from manticore_orderbook.book import _HISTORY_STRIDE
from manticore_orderbook.model import Trade
from manticore_orderbook.numbers import _INTERPRETED

_COMMAND = st.one_of(
    st.tuples(
        st.just("add"),
        st.sampled_from(["buy", "sell"]),
        st.one_of(st.none(), st.integers(98, 102)),  # None: a market order
        st.integers(1, 6),
        st.sampled_from(["GTC", "IOC", None]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("hear"), st.booleans()),  # the toggled book's TRADE_EXECUTED handler on or off
)


def _apply(book: OrderBook, command: tuple[Any, ...], n: int) -> object:
    if command[0] == "add":
        _, side, price, quantity, tif = command
        if price is None and tif == "GTC":
            tif = "IOC"
        try:
            return book.add_order(
                side=side, price=price, quantity=quantity, order_id=f"o{n}", time_in_force=tif
            )
        except ValueError as exc:
            return str(exc)
    return book.cancel_order(f"o{command[1]}")


@settings(max_examples=150, deadline=None)
@given(commands=st.lists(_COMMAND, max_size=60), max_history=st.sampled_from([0, 1, 2, 3, 5]))
def test_a_flat_history_answers_as_the_model_whoever_heard_each_trade(
    commands: list[tuple[Any, ...]], max_history: int
) -> None:
    """The model: a quiet book keeping every trade (its newest ``max_history`` are what the toggled book
    must answer), and per trade whether the toggled book had a TRADE_EXECUTED handler when it traded."""
    model = OrderBook("FH/USD", clock=lambda: 1000.0, max_trade_history=10_000)
    toggled = OrderBook("FH/USD", clock=lambda: 1000.0, max_trade_history=max_history)
    heard_flags: list[bool] = []
    hearing = False

    def handler(event_type: EventType, data: dict[str, Any]) -> None:
        pass

    for n, command in enumerate(commands):
        if command[0] == "hear":
            if command[1] and not hearing:
                toggled.event_manager.subscribe(EventType.TRADE_EXECUTED, handler)
            elif not command[1] and hearing:
                toggled.event_manager.unsubscribe(EventType.TRADE_EXECUTED, handler)
            hearing = command[1]
            continue
        before = model.get_statistics()["trades"]
        assert _apply(model, command, n) == _apply(toggled, command, n)
        heard_flags += [hearing] * (model.get_statistics()["trades"] - before)
        assert toggled.sequence == model.sequence
        kept = min(len(heard_flags), max_history)
        assert toggled.get_trade_history(None) == (model.get_trade_history(kept) if kept else [])
        assert toggled.get_trade_history(2) == (model.get_trade_history(min(kept, 2)) if kept else [])
        assert toggled.get_statistics()["trade_history_size"] == kept
        view = toggled._trades
        assert len(view) == kept
        oldest = toggled._trade_pos // _HISTORY_STRIDE
        in_order = view[oldest:] + view[:oldest]
        expected = heard_flags[len(heard_flags) - kept :]
        if _INTERPRETED:
            assert [type(t) is Trade for t in in_order] == expected
        else:
            assert all(type(t) is Trade for t in in_order)
    model.check_invariants()
    toggled.check_invariants()


def test_a_heard_trade_keeps_its_takers_side() -> None:
    """A heard trade's row holds the taker's ``Side`` (a quiet one's a bool): a sell taker reads back as
    a seller either way (``Side.SELL`` is a true value, so a bool test would read it as a buyer)."""
    for hear in (False, True):
        book = OrderBook("FH/USD", clock=lambda: 1000.0)
        if hear:
            book.event_manager.subscribe(EventType.TRADE_EXECUTED, lambda event_type, data: None)
        book.add_order(side="buy", price=100, quantity=1, order_id="m")
        book.add_order(side="sell", price=100, quantity=1, order_id="t", time_in_force="IOC")
        (trade,) = book.get_trade_history()
        assert (trade["taker_side"], trade["maker_order_id"], trade["taker_order_id"]) == ("sell", "m", "t")
        (kept,) = book._trades
        assert (kept.taker_side if isinstance(kept, Trade) else kept[7]) in ("sell", False)


_RESTING_COMMAND = st.one_of(
    st.tuples(
        st.just("add"),
        st.sampled_from(["buy", "sell"]),
        st.integers(0, 1),  # levels from the touch: two per side, so that levels hold several orders
        st.integers(1, 6),
        st.sampled_from(["GTC", "IOC"]),
        st.integers(0, 5),  # 0: priced to cross the other side (a sweep; GTC rests what is left)
    ),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
)


def _apply_resting(book: OrderBook, command: tuple[Any, ...], n: int) -> object:
    if command[0] == "cancel":
        return book.cancel_order(f"o{command[1]}")
    _, side, offset, quantity, tif, cross = command
    buy = side == "buy"
    price = (102 if buy else 98) if not cross else (99 - offset if buy else 101 + offset)
    return book.add_order(side=side, price=price, quantity=quantity, order_id=f"o{n}", time_in_force=tif)


@settings(max_examples=200, deadline=None)
@given(commands=st.lists(_RESTING_COMMAND, max_size=60))
@example(  # two orders rest at one level without trading; one is cancelled, the level stays
    commands=[("add", "buy", 0, 1, "GTC", 1), ("add", "buy", 0, 2, "GTC", 1), ("cancel", 0)]
)
def test_quiet_rests_and_cancels_number_events_as_heard_ones(commands: list[tuple[Any, ...]]) -> None:
    """The quiet add that rests without trading and the quiet cancel whose level stays take two sequence
    numbers at once; a book hearing every event numbers each event, and they must end each command on
    the same sequence with the same last event number."""
    quiet = OrderBook("FH/USD", clock=lambda: 1000.0)
    heard = OrderBook("FH/USD", clock=lambda: 1000.0)
    numbers: list[int] = []
    heard.event_manager.subscribe_all(lambda event_type, data: numbers.append(data["sequence"]))
    for n, command in enumerate(commands):
        assert _apply_resting(quiet, command, n) == _apply_resting(heard, command, n)
        assert quiet.sequence == heard.sequence == (numbers[-1] if numbers else 0)
        assert numbers == list(range(1, len(numbers) + 1))
        assert quiet.get_snapshot() == heard.get_snapshot()
        assert quiet.export_state()["orders"] == heard.export_state()["orders"]
    quiet.check_invariants()
