"""The hot paths' shortcuts (taken when nobody listens) number and count exactly like the full paths."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType, Order, OrderBook
from manticore_orderbook.enums import BUY, IOC, LIMIT, STP_NONE
from manticore_orderbook.model import BLANK_ORDER, BLANK_TRADE, Trade
from manticore_orderbook.numbers import _INTERPRETED


def _books() -> list[OrderBook]:
    quiet = OrderBook("FP/USD", clock=lambda: 1000.0)
    heard = OrderBook("FP/USD", clock=lambda: 1000.0)
    heard.event_manager.subscribe_all(lambda event_type, data: None)
    partial = OrderBook("FP/USD", clock=lambda: 1000.0)
    partial.event_manager.subscribe(EventType.ORDER_ADDED, lambda event_type, data: None)
    recorded = OrderBook("FP/USD", clock=lambda: 1000.0)
    recorded.add_change_recorder(lambda *args: None)
    return [quiet, heard, partial, recorded]


def _state(book: OrderBook) -> tuple[Any, ...]:
    stats = book.get_statistics()
    return (book.counters(), stats, book.get_snapshot(), book.export_state()["orders"])


def test_cancels_and_rests_number_events_alike_whoever_listens() -> None:
    rng = random.Random(7)
    books = _books()
    live: list[str] = []
    for n in range(1500):
        roll = rng.random()
        if roll < 0.35 and live:
            oid = live.pop(rng.randrange(len(live)))
            answers = {book.cancel_order(oid) for book in books}
        else:
            side = rng.choice(["buy", "sell"])
            ticks = 10_000 + (rng.randint(-30, 5) if side == "buy" else rng.randint(-5, 30))
            price = ticks / 100 if rng.random() < 0.5 else f"{ticks / 100:.2f}"
            tif = "IOC" if roll > 0.9 else rng.choice(["GTC", None, "gtc"])
            oid = f"o{n}"
            quantity = rng.randint(1, 2000) / 1000
            answers = {
                book.add_order(
                    side=side, price=price, quantity=quantity, order_id=oid, user_id="u", time_in_force=tif
                )
                for book in books
            }
            if oid in books[0]:
                live.append(oid)
        assert len(answers) == 1
        states = [_state(book) for book in books]
        assert all(state == states[0] for state in states[1:]), f"books differ after command {n}"
    for book in books:
        book.check_invariants()


def _fields(cls: type) -> tuple[str, ...]:
    """The fields of a model class (a mypyc native class has no ``__slots__``)."""
    names: tuple[str, ...] = getattr(cls, "__slots__", None) or getattr(cls, "__mypyc_attrs__", ())
    return names


@pytest.mark.parametrize(
    "call",
    [
        {"side": "buy", "price": 100.25, "quantity": 0.5, "order_id": "o1", "user_id": "u1"},
        {"side": "sell", "price": "101.5", "quantity": "2", "time_in_force": "GTC"},
        {"side": "Buy", "price": Decimal("99.75"), "quantity": 3, "order_id": "o3", "time_in_force": "gtc"},
    ],
)
def test_the_plain_fast_path_makes_the_same_order_as_full_validation(call: dict[str, Any]) -> None:
    """add_order's inlined fast path (which, in the interpreter, sets each slot itself instead of
    calling ``Order``) and ``_build`` (taken here because self_trade_prevention is given) leave the
    same resting order, slot for slot."""
    fast = OrderBook("FP/USD", clock=lambda: 1000.0)
    full = OrderBook("FP/USD", clock=lambda: 1000.0)
    fast_id = fast.add_order(**call)
    full_id = full.add_order(**call, self_trade_prevention="none")
    assert fast_id == full_id
    made, built = fast._orders[fast_id], full._orders[full_id]
    # Session 23: the interpreter's fast path makes a model.BLANK_ORDER (an Order subclass adding
    # nothing, see test_a_blank_order_or_trade_is_its_class_and_nothing_more); compiled, an Order.
    assert type(made) is (type(BLANK_ORDER()) if _INTERPRETED else Order) and isinstance(made, Order)
    names = _fields(Order)
    assert len(names) == 15  # session 17: the nine rare fields moved to Order.extra (OrderExtra)
    for name in names:
        if name == "level":  # each book has its own level objects
            assert made.level is not None and built.level is not None
            assert (made.level.price, made.level.side) == (built.level.price, built.level.side)
        else:
            assert getattr(made, name) == getattr(built, name), name
            assert type(getattr(made, name)) is type(getattr(built, name)), name


@pytest.mark.parametrize("order_type", [None, "limit"])
def test_a_percent_flag_without_a_trail_is_kept_whether_the_type_is_named_or_inferred(
    order_type: str | None,
) -> None:
    """Regression: with the type left to the book, the fast path dropped ``trail_is_percent=True``
    (an order without a trail), which ``_build`` keeps when the type is named: the same call made
    different orders (and a journal replay, which names the type for such orders, a different book)."""
    book = OrderBook("FP/USD", clock=lambda: 1000.0)
    call = {"side": "buy", "price": 100.0, "quantity": 1.0, "order_id": "p1", "trail_is_percent": True}
    book.add_order(**call, order_type=order_type)
    assert book._orders["p1"].trail_is_percent is True
    assert book.export_state()["orders"][0]["trail_is_percent"] is True


def test_a_match_records_the_same_trade_as_the_trade_class_makes() -> None:
    """_match sets a trade's fields itself in the interpreter (no class call); the record equals
    ``Trade(...)`` of the same values, field for field. (Session 20: a trade somebody hears; one
    nobody hears is a row, see test_a_quiet_sweeps_history_reads_as_a_heard_ones.)"""
    from manticore_orderbook.model import Trade

    book = OrderBook("FP/USD", clock=lambda: 1000.0)
    book.event_manager.subscribe(EventType.TRADE_EXECUTED, lambda event_type, data: None)
    book.add_order(side="sell", price=100.5, quantity=1.25, order_id="m1", user_id="maker")
    book.add_order(side="buy", price=100.5, quantity=0.5, order_id="t1", time_in_force="IOC")
    (recorded,) = book._trades
    maker = book._orders["m1"]
    taker = Order("t1", BUY, recorded.price, 50_000_000, LIMIT, IOC, None, 1000.0, STP_NONE)
    made = Trade(1, recorded.price, 50_000_000, maker, taker, 1000.0, recorded.sequence)
    assert type(recorded) is Trade
    names = _fields(Trade)
    assert len(names) == 10
    for name in names:
        assert getattr(recorded, name) == getattr(made, name), name
        assert type(getattr(recorded, name)) is type(getattr(made, name)), name


def test_payloads_are_fresh_plain_dicts_a_handler_may_change() -> None:
    """Templates share their keys (split dicts): each delivery still gets its own ordinary dict, and
    a handler that adds, changes or deletes keys affects neither later events nor the book."""
    seen: list[dict[str, Any]] = []

    def vandal(event_type: EventType, data: dict[str, Any]) -> None:
        seen.append(dict(data))
        data["price"] = "changed"
        data["extra"] = 1
        del data["symbol"]

    for spoil in (False, True):
        book = OrderBook("FP/USD", clock=lambda: 1000.0)
        got: list[dict[str, Any]] = []
        if spoil:
            book.event_manager.subscribe_all(vandal)
        book.event_manager.subscribe_all(lambda event_type, data, got=got: got.append(data))
        for _ in range(3):
            oid = book.add_order("buy", 100.25, 1.5, user_id="u1")
            book.add_order("sell", 100.25, 0.5, user_id="u2", time_in_force="IOC")
            book.cancel_order(oid)
        if not spoil:
            clean = got
        else:
            assert [type(d) for d in got] == [dict] * len(got)
            assert seen == clean  # what the first handler saw is what an untouched stream holds
            assert all(d["price"] == "changed" and "symbol" not in d for d in got)
    assert len({id(d) for d in clean}) == len(clean)
    assert all(type(d) is dict and d["symbol"] == "FP/USD" for d in clean)


_COMMAND = st.one_of(
    st.tuples(
        st.just("add"),
        st.sampled_from(["buy", "sell"]),
        st.one_of(st.none(), st.integers(9_990, 10_010)),  # None: a market order
        st.integers(1, 40),
        st.sampled_from(["GTC", "IOC", None, "FOK"]),
        st.sampled_from(["u1", "u2", None]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
)


@settings(max_examples=150, deadline=None)
@given(
    commands=st.lists(_COMMAND, max_size=60), stp=st.sampled_from(["NONE", "CANCEL_NEWEST", "CANCEL_BOTH"])
)
def test_an_unheard_add_runs_as_a_heard_one(commands: list[tuple[Any, ...]], stp: str) -> None:
    """add_order does _execute's work itself when nobody hears ORDER_ADDED and no change recorder is
    set; a book whose ORDER_ADDED is heard takes _execute. Same commands, same answers, same book,
    same level events (market, IOC, FOK, self-trade prevention and sweeps included)."""
    levels: list[list[tuple[Any, ...]]] = [[], []]
    books = [OrderBook("FP/USD", clock=lambda: 1000.0, self_trade_prevention=stp) for _ in range(2)]
    for book, seen in zip(books, levels, strict=True):
        for event_type in (
            EventType.PRICE_LEVEL_ADDED,
            EventType.PRICE_LEVEL_CHANGED,
            EventType.PRICE_LEVEL_REMOVED,
        ):
            book.event_manager.subscribe(
                event_type, lambda t, data, seen=seen: seen.append((t, sorted(data.items())))
            )
    books[1].event_manager.subscribe(EventType.ORDER_ADDED, lambda t, data: None)
    for n, command in enumerate(commands):
        answers = []
        for book in books:
            if command[0] == "add":
                _, side, ticks, lots, tif, user = command
                price = None if ticks is None else ticks / 100
                try:
                    answer: Any = book.add_order(
                        side=side,
                        price=price,
                        quantity=lots / 10,
                        order_id=f"o{n}",
                        user_id=user,
                        time_in_force=None if price is None and tif in ("GTC", None) else tif,
                    )
                except ValueError as exc:
                    answer = str(exc)
            else:
                answer = book.cancel_order(f"o{command[1]}")
            answers.append(answer)
        assert answers[0] == answers[1]
        assert _state(books[0]) == _state(books[1]), f"books differ after command {n}"
    assert levels[0] == levels[1]
    for book in books:
        book.check_invariants()


def _history_books(max_history: int, stp: str) -> list[OrderBook]:
    """A quiet book (its trades kept as rows in the interpreter), books that hear trades, fills or
    record changes (their trades kept as ``Trade``s), and one whose trade handler comes and goes
    (a ring of both); all with the same small trade history."""
    books = [
        OrderBook("FP/USD", clock=lambda: 1000.0, max_trade_history=max_history, self_trade_prevention=stp)
        for _ in range(5)
    ]
    books[1].event_manager.subscribe(EventType.TRADE_EXECUTED, lambda t, data: None)
    books[2].event_manager.subscribe(EventType.ORDER_FILLED, lambda t, data: None)
    books[3].add_change_recorder(lambda *args: None)
    return books


def _toggle(book: OrderBook, handler: Any, n: int) -> None:
    if n % 3 == 0:
        book.event_manager.subscribe(EventType.TRADE_EXECUTED, handler)
    elif n % 3 == 1:
        book.event_manager.unsubscribe(EventType.TRADE_EXECUTED, handler)


@settings(max_examples=120, deadline=None)
@given(
    commands=st.lists(_COMMAND, max_size=60),
    stp=st.sampled_from(["NONE", "CANCEL_NEWEST", "DECREMENT"]),
    max_history=st.sampled_from([0, 1, 4, 10_000]),
)
def test_a_quiet_sweeps_history_reads_as_a_heard_ones(
    commands: list[tuple[Any, ...]], stp: str, max_history: int
) -> None:
    """Session 20: when nobody hears a sweep's fills, ``_match`` keeps each trade in the history as a
    plain row (interpreter). Same commands on books that hear trades, fills, record changes or hear
    trades only now and then: the same trade history (every limit, the ring included), statistics
    and book after every command."""
    books = _history_books(max_history, stp)
    handler = lambda t, data: None  # noqa: E731
    for n, command in enumerate(commands):
        _toggle(books[4], handler, n)
        answers = []
        for book in books:
            if command[0] == "add":
                _, side, ticks, lots, tif, user = command
                price = None if ticks is None else ticks / 100
                try:
                    answer: Any = book.add_order(
                        side=side,
                        price=price,
                        quantity=lots / 10,
                        order_id=f"o{n}",
                        user_id=user,
                        time_in_force=None if price is None and tif in ("GTC", None) else tif,
                    )
                except ValueError as exc:
                    answer = str(exc)
            else:
                answer = book.cancel_order(f"o{command[1]}")
            answers.append(answer)
        assert len(set(map(repr, answers))) == 1
        histories = [(book.get_trade_history(None), book.get_trade_history(2)) for book in books]
        assert all(h == histories[0] for h in histories[1:]), f"histories differ after command {n}"
        states = [_state(book) for book in books]
        assert all(s == states[0] for s in states[1:]), f"books differ after command {n}"
    for book in books:
        book.check_invariants()


def test_a_quiet_trade_row_stands_for_the_same_trade_and_is_not_tracked() -> None:
    """The row a quiet sweep keeps (interpreter) is the ``Trade`` a heard one keeps, field for field,
    and holds only atomic values, so the cyclic GC stops tracking it; compiled, both are ``Trade``s."""
    import gc

    from manticore_orderbook.book import _trade_of
    from manticore_orderbook.model import Trade
    from manticore_orderbook.numbers import _INTERPRETED

    kept = []
    for heard in (False, True):
        book = OrderBook("FP/USD", clock=lambda: 1000.0)
        if heard:
            book.event_manager.subscribe(EventType.TRADE_EXECUTED, lambda t, data: None)
        book.add_order(side="sell", price=100.5, quantity=1.25, order_id="m1", user_id="maker")
        book.add_order(side="sell", price=100.75, quantity=1, order_id="m2", user_id=7)
        book.add_order(side="buy", price=101, quantity=2, order_id="t1", user_id="taker", time_in_force="IOC")
        kept.append(list(book._trades))
    quiet, heard_ = kept
    assert [type(t) for t in heard_] == [Trade, Trade]
    if not _INTERPRETED:
        assert [type(t) for t in quiet] == [Trade, Trade]
        return
    assert [type(t) for t in quiet] == [tuple, tuple]
    gc.collect()
    assert not any(gc.is_tracked(row) for row in quiet)
    for row, trade in zip(quiet, heard_, strict=True):
        made = _trade_of(row)  # type: ignore[arg-type]
        for name in _fields(Trade):
            assert getattr(made, name) == getattr(trade, name), name
            assert type(getattr(made, name)) is type(getattr(trade, name)), name


@pytest.mark.parametrize("price", [100.5, "100.5"])
def test_a_remembered_price_is_refused_by_the_fast_path_once_the_bound_is_lowered(price: object) -> None:
    """Session 20: add_order's inline memo read no longer tests the bound; setting ``max_units`` makes
    the grid forget what it remembered, so a remembered input past a lowered bound is still refused
    (and one within it still accepted), as full validation refuses it."""
    from manticore_orderbook.errors import InvalidOrderError
    from manticore_orderbook.numbers import _INTERPRETED

    book = OrderBook("FP/USD", clock=lambda: 1000.0)
    book.add_order(side="buy", price=price, quantity=1.0, order_id="a")
    assert bool(book._price_grid._cache) is (_INTERPRETED or isinstance(price, str))  # remembered
    book._price_grid.max_units = book._price_grid.to_units(100.25)
    assert not book._price_grid._cache
    with pytest.raises(InvalidOrderError, match="too large"):
        book.add_order(side="buy", price=price, quantity=1.0, order_id="b")
    book.add_order(side="buy", price=100.25, quantity=1.0, order_id="c")
    book._qty_grid.max_units = book._qty_grid.to_units(0.5)
    with pytest.raises(InvalidOrderError, match="too large"):
        book.add_order(side="buy", price=100.25, quantity=1.0, order_id="d")
    assert [o["order_id"] for o in book.get_orders()] == ["a", "c"]


def _level_internals(book: OrderBook) -> list[tuple[Any, ...]]:
    """Every level the book keeps (live or kept empty) with its queue as stored: head, dead entries,
    totals, the ids of the spent entries (before ``head``) and each queued order's fields from
    ``head`` on, so that two books built alike compare exactly. (Session 27: a maker a quiet sweep
    fills leaves with its fields as they were; a spent entry is read by nothing, so only its id
    is compared.)"""
    out = []
    for side, levels in (("bid", book._bid_levels), ("ask", book._ask_levels)):
        for price, level in sorted(levels.items()):
            spent = [o.order_id for o in level.orders[: level.head]]
            queue = [
                (o.order_id, o.visible, o.open, o.filled, o.quantity, o.rank, o.level is level)
                for o in level.orders[level.head :]
            ]
            out.append(
                (side, price, level.head, level.dead, level.total, level.reserve, level.count, spent, queue)
            )
    return out


_SWEEP_COMMAND = st.one_of(
    st.tuples(
        st.just("add"),
        st.sampled_from(["buy", "sell"]),
        st.one_of(st.none(), st.integers(9_995, 10_005)),  # None: a market order
        st.integers(1, 40),
        st.sampled_from(["GTC", "IOC", None]),
        st.one_of(st.none(), st.integers(1, 15)),  # an iceberg's displayed quantity (GTC limits)
    ),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
)


@settings(max_examples=150, deadline=None)
@given(commands=st.lists(_SWEEP_COMMAND, max_size=70), max_history=st.sampled_from([0, 3, 10_000]))
def test_a_quiet_level_sweep_leaves_what_the_general_loop_leaves(
    commands: list[tuple[Any, ...]], max_history: int
) -> None:
    """Session 21: without self-trade prevention, a quiet sweep (interpreter) takes each level in a
    loop of its own that keeps the taker's open quantity, the level's head and the counters in
    locals. A book that hears trades takes the general loop. Same commands, icebergs and their
    refills included: the same answers, level internals (head, dead entries, totals, each queued
    order's fields and rank), trade history, counters and book after every command."""
    quiet = OrderBook("FP/USD", clock=lambda: 1000.0, max_trade_history=max_history)
    heard = OrderBook("FP/USD", clock=lambda: 1000.0, max_trade_history=max_history)
    heard.event_manager.subscribe(EventType.TRADE_EXECUTED, lambda t, data: None)
    for n, command in enumerate(commands):
        answers = []
        for book in (quiet, heard):
            if command[0] == "add":
                _, side, ticks, lots, tif, shown = command
                price = None if ticks is None else ticks / 100
                iceberg = shown is not None and price is not None and tif in ("GTC", None)
                try:
                    answer: Any = book.add_order(
                        side=side,
                        price=price,
                        quantity=lots / 10,
                        order_id=f"o{n}",
                        user_id="u",
                        time_in_force=None if price is None else tif,
                        displayed_quantity=shown / 10 if iceberg else None,
                    )
                except ValueError as exc:
                    answer = str(exc)
            else:
                answer = book.cancel_order(f"o{command[1]}")
            answers.append(answer)
        assert answers[0] == answers[1]
        assert _level_internals(quiet) == _level_internals(heard), f"levels differ after command {n}"
        assert quiet.get_trade_history(None) == heard.get_trade_history(None)
        assert (quiet._trade_no, quiet._trade_pos, quiet.sequence) == (
            heard._trade_no,
            heard._trade_pos,
            heard.sequence,
        )
        assert _state(quiet) == _state(heard), f"books differ after command {n}"
    for book in (quiet, heard):
        book.check_invariants()


def test_an_iceberg_refilled_in_a_quiet_sweep_queues_as_in_a_heard_one() -> None:
    """Session 21 (regression for the quiet level loop): an iceberg maker used up slice by slice
    within one sweep rejoins the back of its level with the sequence of its fill as its rank, and the
    level's visible total and reserve, the taker's fill and the trades are those of a heard sweep."""
    books = [OrderBook("FP/USD", clock=lambda: 1000.0) for _ in range(2)]
    books[1].event_manager.subscribe(EventType.ORDER_FILLED, lambda t, data: None)
    for book in books:
        book.add_order(side="sell", price=100.0, quantity=1.0, order_id="ice", displayed_quantity=0.25)
        book.add_order(side="sell", price=100.0, quantity=0.5, order_id="plain")
        book.add_order(side="buy", price=100.0, quantity=0.9, order_id="t", time_in_force="IOC")
    quiet, heard = books
    assert _level_internals(quiet) == _level_internals(heard)
    level = quiet._ask_levels[10_000_000_000]
    assert (level.total, level.reserve, level.count) == (10_000_000, 50_000_000, 1)  # 0.10 shown, 0.50 hidden
    assert [t["quantity"] for t in quiet.get_trade_history(None)] == [0.25, 0.5, 0.15][::-1]
    assert quiet.get_trade_history(None) == heard.get_trade_history(None)
    assert _state(quiet) == _state(heard)
    quiet.check_invariants()


@pytest.mark.parametrize(("cls", "blank"), [(Order, BLANK_ORDER), (Trade, BLANK_TRADE)])
def test_a_blank_order_or_trade_is_its_class_and_nothing_more(cls: type, blank: Any) -> None:
    """Session 23: the hot paths make their Orders and heard Trades with ``BLANK_ORDER()`` /
    ``BLANK_TRADE()`` and set every field themselves. In the interpreter that is a subclass with no
    field, no ``__dict__`` (a stray attribute is refused as by the class), no method of its own and
    ``object.__init__``: an instance of the class in every way a reader can see, the same size, and
    it pickles and copies. Compiled, the class itself."""
    if not _INTERPRETED:
        assert blank is cls
        return
    made = blank()
    kind = type(made)
    assert isinstance(made, cls) and kind.__mro__[1:] == cls.__mro__
    assert kind.__basicsize__ == cls.__basicsize__ and not hasattr(made, "__dict__")
    assert set(vars(kind)) <= {"__slots__", "__init__", "__module__", "__qualname__", "__doc__"}
    assert kind.__init__ is object.__init__ and kind.__slots__ == ()
    with pytest.raises(AttributeError):
        setattr(made, "not_a_field", 1)  # noqa: B010
    for name in _fields(cls):  # nothing set yet: the maker sets every field
        assert not hasattr(made, name), name


@pytest.mark.pure_only  # compiled, the fast path makes a native Order (no BLANK_ORDER subclass)
def test_a_fast_path_order_pickles_and_copies_as_an_order() -> None:
    """An order made by the interpreter's fast path (a BLANK_ORDER) round-trips through pickle and
    ``copy.copy`` with every field, and ``Order.copy`` gives a plain ``Order``."""
    import copy
    import pickle

    book = OrderBook("FP/USD", clock=lambda: 1000.0)
    oid = book.add_order(side="buy", price=100.25, quantity=0.5, order_id="o1", user_id="u1")
    made = book._orders[oid]
    assert type(made.copy()) is Order
    for twin in (pickle.loads(pickle.dumps(made)), copy.copy(made)):
        assert type(twin) is type(made)
        for name in _fields(Order):
            if name != "level":  # pickle copies the level too (a new object)
                assert getattr(twin, name) == getattr(made, name), name


@pytest.mark.pure_only  # patches the book module's BLANK_ORDER (a compiled module global cannot be)
@pytest.mark.parametrize("hearing", [None, EventType.ORDER_ADDED, EventType.ORDER_CANCELLED, "recorder"])
def test_every_fast_path_order_has_every_field_once_it_leaves_add_order(
    hearing: EventType | str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 27: the fast path leaves ``visible``, ``level`` and ``rank`` to the paths after it (a
    resting order sets them once); every other path (crossing, IOC or market with nothing to trade,
    a change recorder, an unusual time in force) sets them before anything reads them. Each order the
    fast path makes, resting, traded, cancelled or refused, has every field set when add_order returns,
    and a taker's are Order.__init__'s (0, None) where they are not its resting ones."""
    import manticore_orderbook.book as book_module

    made: list[Order] = []

    def recording() -> Order:
        order = BLANK_ORDER()
        made.append(order)
        return order

    monkeypatch.setattr(book_module, "BLANK_ORDER", recording)
    book = OrderBook("FP/USD", clock=lambda: 1000.0)
    if hearing == "recorder":
        book.add_change_recorder(lambda *change: None)
    elif hearing is not None:
        book.event_manager.subscribe(hearing, lambda event_type, data: None)
    calls: list[dict[str, Any]] = [
        {"side": "sell", "price": 100.5, "quantity": 1.0, "order_id": "m1"},
        {"side": "sell", "price": 100.75, "quantity": 1.0, "order_id": "m2"},
        {"side": "buy", "price": 99.0, "quantity": 1.0, "order_id": "ioc-none", "time_in_force": "IOC"},
        {"side": "buy", "price": None, "quantity": 0.5, "order_id": "mkt"},
        {"side": "buy", "price": 100.5, "quantity": 0.25, "order_id": "ioc", "time_in_force": "IOC"},
        {"side": "buy", "price": 100.5, "quantity": 0.5, "order_id": "cross-rest"},
        {"side": "buy", "price": 101.0, "quantity": 2.0, "order_id": "fok", "time_in_force": "FOK"},
        {"side": "buy", "price": 101.0, "quantity": 0.5, "order_id": "cross-done", "time_in_force": "GTC"},
        {"side": "sell", "price": 102.0, "quantity": 0.5, "order_id": "rest"},
    ]
    for call in calls:
        book.add_order(**call)
    assert [order.order_id for order in made] == [call["order_id"] for call in calls]
    for order in made:
        for name in _fields(Order):
            assert hasattr(order, name), (order.order_id, name)
        if order.order_id in ("ioc-none", "mkt", "ioc", "fok", "cross-done"):  # never rested
            assert (order.visible, order.level) == (0, None), order.order_id
    book.check_invariants()
