"""Random command streams of every order type, checked after every command against the reference model.

After each command: the return value, the trades (maker, taker, price, quantity, side), the orders that
were added / cancelled (with the quantity left) / expired / triggered / modified, the resting orders in
priority order, the snapshot's levels, the last trade price, ``check_invariants()``, an uncrossed book,
no zero or negative quantities, fills conserving quantity (maker side == taker side == trades), every
ORDER_FILLED carrying the cumulative filled quantity, per-order causal order, and a gap-free event
sequence that continues ``book.sequence``. Price-level events replayed by a consumer must rebuild the
snapshot exactly. Rejected commands must leave the book, its sequence and the event stream untouched.
"""

from __future__ import annotations

import copy
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from manticore_orderbook import DuplicateOrderIdError, EventType, OrderBook, OrderType, Side, TimeInForce

from . import reference_model as rm
from .support import COMMON_KEYS, REQUIRED_KEYS, TERMINAL_EVENTS, FakeClock, Recorder, dec, state_of

SYMBOL = "PROP/USD"

#: (tick size, lot size, quantity units to draw from): grids on which 0.1 + 0.2 style sums happen.
GRIDS: list[tuple[str, str, list[int]]] = [
    ("0.01", "0.001", [100, 200, 300, 700, 1, 2, 1000]),
    ("0.1", "0.1", [1, 2, 3, 4, 7]),
    ("1", "1", [1, 2, 3, 5]),
    ("0.05", "0.01", [10, 20, 30, 5, 1]),
]
#: Prices from 10 ticks up, so that every percentage trail used below is at least one tick wide.
PRICE_UNITS = st.integers(min_value=10, max_value=21)
SIDES = st.sampled_from([rm.BUY, rm.SELL])
USERS = st.sampled_from(["alice", "bob", "carol", None])
STP_MODES = [rm.STP_NONE, rm.STP_NEWEST, rm.STP_OLDEST, rm.STP_BOTH, rm.STP_DECREMENT]
STP_OVERRIDE = st.one_of(st.none(), st.sampled_from(STP_MODES))
ORDER_IDS = st.one_of(st.none(), st.sampled_from([f"c{i}" for i in range(6)]))
STYLES = st.sampled_from(["float", "str", "decimal", "int"])
SPELLINGS = st.sampled_from(["lower", "upper", "title", "enum"])
EXPIRY_DELTAS = st.sampled_from([0.5, 1.0, 2.0, 5.0])

ENUMS: dict[str, Any] = {"side": Side, "order_type": OrderType, "time_in_force": TimeInForce}


def spell(value: str, kind: str, spelling: str) -> object:
    """``value`` as a user might pass it: lower/upper/title case string, or the enum member."""
    if spelling == "enum":
        enum_cls = ENUMS[kind]
        return next(m for m in enum_cls if m.value.lower() == value.lower())
    return {"lower": value.lower(), "upper": value.upper(), "title": value.title()}[spelling]


class OrderBookMachine(RuleBasedStateMachine):
    book: OrderBook
    model: rm.Model

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.filled: dict[str, int] = {}
        self.level_view: dict[tuple[str, int], tuple[int, int]] = {}
        self.volume = 0

    # ------------------------------------------------------------------ set-up

    @initialize(
        grid=st.sampled_from(GRIDS),
        number_format=st.sampled_from(["float", "str", "decimal"]),
        default_stp=st.sampled_from(STP_MODES),
    )
    def setup(self, grid: tuple[str, str, list[int]], number_format: str, default_stp: str) -> None:
        tick, lot, qty_units = grid
        self.tick, self.lot = Decimal(tick), Decimal(lot)
        self.qty_choices = qty_units
        self.clock = FakeClock()
        self.book = OrderBook(
            SYMBOL,
            clock=self.clock,
            tick_size=tick,
            lot_size=lot,
            number_format=number_format,  # type: ignore[arg-type]
            self_trade_prevention=default_stp,
        )
        self.recorder = Recorder()
        self.book.event_manager.subscribe_all(self.recorder)
        self.model = rm.Model(default_stp)

    # ------------------------------------------------------------------ conversions

    def value(self, units: int, step: Decimal, style: str) -> object:
        exact = units * step
        if style == "float":
            return float(str(exact))
        if style == "str":
            return str(exact)
        if style == "int" and exact == exact.to_integral_value():
            return int(exact)
        return exact

    def price_in(self, units: int, style: str) -> object:
        return self.value(units, self.tick, style)

    def qty_in(self, units: int, style: str) -> object:
        return self.value(units, self.lot, style)

    def price_units(self, value: object) -> int | None:
        if value is None:
            return None
        units = dec(value) / self.tick
        assert units == units.to_integral_value(), f"price {value!r} is off the grid"
        return int(units)

    def qty_units(self, value: object) -> int:
        units = dec(value) / self.lot
        assert units == units.to_integral_value(), f"quantity {value!r} is off the grid"
        return int(units)

    # ------------------------------------------------------------------ running commands

    def run_add(self, order: rm.MOrder, kwargs: dict[str, Any], explicit_id: str | None) -> None:
        if explicit_id is not None and self.model.live(explicit_id) is not None:
            self.expect_rejected(lambda: self.book.add_order(**kwargs), DuplicateOrderIdError)
            return
        start, seq = len(self.recorder.events), self.book.sequence
        order_id = self.book.add_order(**kwargs)
        if explicit_id is not None:
            assert order_id == explicit_id
        order.oid = order_id
        self.ids.append(order_id)
        outcome = self.model.add(order, self.clock.now)
        self.check_command(start, seq, outcome, order_id)

    def expect_rejected(self, call: Any, error: type[Exception] = ValueError) -> None:
        before = state_of(self.book)
        start = len(self.recorder.events)
        try:
            call()
        except error:
            pass
        else:
            raise AssertionError("the command should have been rejected")
        assert len(self.recorder.events) == start, "a rejected command published events"
        assert state_of(self.book) == before, "a rejected command changed the book"

    def new_order(self, side: str, price: int | None, qty: int, **fields: Any) -> rm.MOrder:
        stp = fields.pop("stp", None) or self.model.default_stp
        return rm.MOrder("?", side, price, qty, stp=stp, **fields)

    def base_kwargs(
        self,
        side: str,
        spelling: str,
        qty: int,
        style: str,
        user: str | None,
        stp: str | None,
        oid: str | None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "side": spell(side, "side", spelling),
            "quantity": self.qty_in(qty, style),
            "user_id": user,
            "order_id": oid,
        }
        if stp is not None:
            kwargs["self_trade_prevention"] = stp
        return kwargs

    # ------------------------------------------------------------------ rules: adding orders

    @rule(
        side=SIDES,
        price=PRICE_UNITS,
        qty_index=st.integers(0, 6),
        tif=st.sampled_from([rm.GTC, rm.GTC, rm.IOC, rm.FOK, rm.GTD]),
        delta=EXPIRY_DELTAS,
        user=USERS,
        stp=STP_OVERRIDE,
        oid=ORDER_IDS,
        style=STYLES,
        spelling=SPELLINGS,
        explicit_type=st.booleans(),
    )
    def add_limit(
        self,
        side: str,
        price: int,
        qty_index: int,
        tif: str,
        delta: float,
        user: str | None,
        stp: str | None,
        oid: str | None,
        style: str,
        spelling: str,
        explicit_type: bool,
    ) -> None:
        qty = self.qty_choices[qty_index % len(self.qty_choices)]
        kwargs = self.base_kwargs(side, spelling, qty, style, user, stp, oid)
        kwargs["price"] = self.price_in(price, style)
        kwargs["time_in_force"] = spell(tif, "time_in_force", spelling)
        expiry = None
        if tif == rm.GTD:
            expiry = self.clock.now + delta
            kwargs["expiry_time"] = expiry
        if explicit_type:
            kwargs["order_type"] = spell("LIMIT", "order_type", spelling)
        order = self.new_order(side, price, qty, tif=tif, expiry=expiry, user=user, stp=stp)
        self.run_add(order, kwargs, oid)

    @rule(
        side=SIDES,
        qty_index=st.integers(0, 6),
        tif=st.sampled_from([None, rm.GTC, rm.IOC, rm.FOK]),
        user=USERS,
        stp=STP_OVERRIDE,
        oid=ORDER_IDS,
        style=STYLES,
        spelling=SPELLINGS,
    )
    def add_market(
        self,
        side: str,
        qty_index: int,
        tif: str | None,
        user: str | None,
        stp: str | None,
        oid: str | None,
        style: str,
        spelling: str,
    ) -> None:
        qty = self.qty_choices[qty_index % len(self.qty_choices)] * 2
        kwargs = self.base_kwargs(side, spelling, qty, style, user, stp, oid)
        kwargs["price"] = None
        if tif is not None:
            kwargs["time_in_force"] = spell(tif, "time_in_force", spelling)
        order = self.new_order(side, None, qty, kind=rm.MARKET, tif=tif or rm.GTC, user=user, stp=stp)
        self.run_add(order, kwargs, oid)

    @rule(
        side=SIDES,
        price=PRICE_UNITS,
        qty_index=st.integers(0, 6),
        gtd=st.booleans(),
        delta=EXPIRY_DELTAS,
        user=USERS,
        oid=ORDER_IDS,
        style=STYLES,
        spelling=SPELLINGS,
    )
    def add_post_only(
        self,
        side: str,
        price: int,
        qty_index: int,
        gtd: bool,
        delta: float,
        user: str | None,
        oid: str | None,
        style: str,
        spelling: str,
    ) -> None:
        qty = self.qty_choices[qty_index % len(self.qty_choices)]
        kwargs = self.base_kwargs(side, spelling, qty, style, user, None, oid)
        kwargs["price"] = self.price_in(price, style)
        kwargs["order_type"] = spell("POST_ONLY", "order_type", spelling)
        expiry = self.clock.now + delta if gtd else None
        if gtd:
            kwargs["expiry_time"] = expiry
        order = self.new_order(
            side, price, qty, kind=rm.POST_ONLY, tif=rm.GTD if gtd else rm.GTC, expiry=expiry, user=user
        )
        self.run_add(order, kwargs, oid)

    @rule(
        side=SIDES,
        price=PRICE_UNITS,
        qty_mult=st.integers(2, 6),
        peak_index=st.integers(0, 6),
        gtd=st.booleans(),
        delta=EXPIRY_DELTAS,
        user=USERS,
        stp=STP_OVERRIDE,
        oid=ORDER_IDS,
        style=STYLES,
        explicit_type=st.booleans(),
    )
    def add_iceberg(
        self,
        side: str,
        price: int,
        qty_mult: int,
        peak_index: int,
        gtd: bool,
        delta: float,
        user: str | None,
        stp: str | None,
        oid: str | None,
        style: str,
        explicit_type: bool,
    ) -> None:
        peak = self.qty_choices[peak_index % len(self.qty_choices)]
        qty = peak * qty_mult + self.qty_choices[0] // 2
        kwargs = self.base_kwargs(side, "lower", qty, style, user, stp, oid)
        kwargs["price"] = self.price_in(price, style)
        kwargs["displayed_quantity"] = self.qty_in(peak, style)
        if explicit_type:
            kwargs["order_type"] = "iceberg"
        expiry = self.clock.now + delta if gtd else None
        if gtd:
            kwargs["expiry_time"] = expiry
            kwargs["time_in_force"] = "gtd"
        order = self.new_order(
            side,
            price,
            qty,
            kind=rm.ICEBERG,
            tif=rm.GTD if gtd else rm.GTC,
            expiry=expiry,
            user=user,
            stp=stp,
            peak=peak,
        )
        self.run_add(order, kwargs, oid)

    @rule(
        side=SIDES,
        stop=PRICE_UNITS,
        limit=st.one_of(st.none(), PRICE_UNITS),
        qty_index=st.integers(0, 6),
        tif=st.sampled_from([rm.GTC, rm.GTC, rm.IOC, rm.FOK, rm.GTD]),
        delta=EXPIRY_DELTAS,
        user=USERS,
        stp=STP_OVERRIDE,
        oid=ORDER_IDS,
        style=STYLES,
        explicit_type=st.booleans(),
    )
    def add_stop(
        self,
        side: str,
        stop: int,
        limit: int | None,
        qty_index: int,
        tif: str,
        delta: float,
        user: str | None,
        stp: str | None,
        oid: str | None,
        style: str,
        explicit_type: bool,
    ) -> None:
        qty = self.qty_choices[qty_index % len(self.qty_choices)]
        kind = rm.STOP_LIMIT if limit is not None else rm.STOP_MARKET
        if kind == rm.STOP_MARKET and tif == rm.GTD:
            tif = rm.GTC
        kwargs = self.base_kwargs(side, "upper", qty, style, user, stp, oid)
        kwargs["price"] = None if limit is None else self.price_in(limit, style)
        kwargs["stop_price"] = self.price_in(stop, style)
        kwargs["time_in_force"] = tif
        expiry = self.clock.now + delta if tif == rm.GTD else None
        if expiry is not None:
            kwargs["expiry_time"] = expiry
        if explicit_type:
            kwargs["order_type"] = kind
        order = self.new_order(
            side, limit, qty, kind=kind, tif=tif, expiry=expiry, user=user, stp=stp, stop=stop
        )
        self.run_add(order, kwargs, oid)

    @rule(
        side=SIDES,
        trail=st.one_of(
            st.tuples(st.just(False), st.integers(1, 3)),
            st.tuples(st.just(True), st.sampled_from([10, 25, 50])),
        ),
        limit=st.one_of(st.none(), PRICE_UNITS),
        qty_index=st.integers(0, 6),
        user=USERS,
        oid=ORDER_IDS,
        style=STYLES,
    )
    def add_trailing_stop(
        self,
        side: str,
        trail: tuple[bool, int],
        limit: int | None,
        qty_index: int,
        user: str | None,
        oid: str | None,
        style: str,
    ) -> None:
        is_percent, amount = trail
        qty = self.qty_choices[qty_index % len(self.qty_choices)]
        kwargs = self.base_kwargs(side, "title", qty, style, user, None, oid)
        kwargs["price"] = None if limit is None else self.price_in(limit, style)
        kwargs["order_type"] = "trailing_stop"
        kwargs["trail_value"] = amount if is_percent else self.price_in(amount, style)
        kwargs["trail_is_percent"] = is_percent
        order = self.new_order(
            side,
            limit,
            qty,
            kind=rm.TRAILING_STOP,
            user=user,
            trail=Decimal(amount) if is_percent else amount,
            trail_pct=is_percent,
        )
        self.run_add(order, kwargs, oid)

    @rule(
        items=st.lists(
            st.tuples(SIDES, PRICE_UNITS, st.integers(0, 6), USERS, ORDER_IDS),
            min_size=1,
            max_size=4,
        ),
        poison=st.sampled_from([None, None, "off_grid", "duplicate_in_batch", "bad_side"]),
    )
    def batch_add(
        self, items: list[tuple[str, int, int, str | None, str | None]], poison: str | None
    ) -> None:
        payload: list[dict[str, Any]] = []
        orders: list[rm.MOrder] = []
        explicit: list[str] = []
        for side, price, qty_index, user, oid in items:
            qty = self.qty_choices[qty_index % len(self.qty_choices)]
            item: dict[str, Any] = {
                "side": side,
                "price": self.price_in(price, "str"),
                "quantity": qty * self.lot,
            }
            if user is not None:
                item["user_id"] = user
            if oid is not None:
                item["order_id"] = oid
                explicit.append(oid)
            payload.append(item)
            orders.append(self.new_order(side, price, qty, user=user))
        if poison == "off_grid":
            payload[-1]["price"] = str(self.tick / 3)
        elif poison == "duplicate_in_batch":
            payload.append(dict(payload[0], order_id="dup"))
            payload.append(dict(payload[0], order_id="dup"))
        elif poison == "bad_side":
            payload[0]["side"] = "hold"
        invalid = (
            poison is not None
            or len(set(explicit)) < len(explicit)
            or any(self.model.live(oid) is not None for oid in explicit)
        )
        if invalid:
            self.expect_rejected(lambda: self.book.batch_add_orders(payload))
            return
        start, seq = len(self.recorder.events), self.book.sequence
        result = self.book.batch_add_orders(payload)
        assert len(result) == len(orders)
        for order, order_id in zip(orders, result, strict=True):
            order.oid = order_id
            self.ids.append(order_id)
        outcome = self.model.batch_add(orders, self.clock.now)
        self.check_command(start, seq, outcome, result)

    # ------------------------------------------------------------------ rules: cancel, modify, time

    def pick_id(self, index: int) -> str:
        return self.ids[index % len(self.ids)] if self.ids else "no-such-order"

    @rule(index=st.integers(0, 1000))
    def cancel(self, index: int) -> None:
        order_id = self.pick_id(index)
        start, seq = len(self.recorder.events), self.book.sequence
        result = self.book.cancel_order(order_id)
        outcome = self.model.cancel(order_id, self.clock.now)
        self.check_command(start, seq, outcome, result)

    @rule(
        index=st.integers(0, 1000),
        new_price=st.one_of(st.none(), PRICE_UNITS),
        new_qty_index=st.one_of(st.none(), st.integers(0, 6)),
        qty_factor=st.sampled_from([1, 2, 3]),
        new_delta=st.one_of(st.none(), EXPIRY_DELTAS),
        style=STYLES,
    )
    def modify(
        self,
        index: int,
        new_price: int | None,
        new_qty_index: int | None,
        qty_factor: int,
        new_delta: float | None,
        style: str,
    ) -> None:
        order_id = self.pick_id(index)
        new_qty = None
        if new_qty_index is not None:
            new_qty = self.qty_choices[new_qty_index % len(self.qty_choices)] * qty_factor
        new_expiry = None if new_delta is None else self.clock.now + new_delta
        call_kwargs: dict[str, Any] = {
            "new_price": None if new_price is None else self.price_in(new_price, style),
            "new_quantity": None if new_qty is None else self.qty_in(new_qty, style),
            "new_expiry_time": new_expiry,
        }
        snapshot_model = copy.deepcopy(self.model)
        try:
            outcome = self.model.modify(order_id, new_price, new_qty, new_expiry, self.clock.now)
        except rm.Rejected:
            self.model = snapshot_model
            self.expect_rejected(lambda: self.book.modify_order(order_id, **call_kwargs))
            return
        start, seq = len(self.recorder.events), self.book.sequence
        result = self.book.modify_order(order_id, **call_kwargs)
        self.check_command(start, seq, outcome, result)

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    def advance_time(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def clean_expired(self) -> None:
        start, seq = len(self.recorder.events), self.book.sequence
        result = self.book.clean_expired_orders()
        outcome = self.model.clean_expired(self.clock.now)
        self.check_command(start, seq, outcome, result)

    @precondition(lambda self: len(self.ids) > 12)
    @rule()
    def clear(self) -> None:
        start, seq = len(self.recorder.events), self.book.sequence
        self.book.clear()
        outcome = self.model.clear()
        events = self.recorder.since(start)
        assert [e for e, _ in events] == [EventType.BOOK_CLEARED]
        self.level_view.clear()
        self.ids.clear()
        self.check_command(start, seq, outcome, None)

    @rule(
        bad=st.sampled_from(
            [
                {"price": "nan"},
                {"price": float("inf")},
                {"price": -1},
                {"price": 0},
                {"price": "1e30"},
                {"price": True},
                {"price": []},
                {"quantity": None},
                {"quantity": "-1"},
                {"quantity": 0},
                {"quantity": float("nan")},
                {"quantity": "1e30"},
                {"side": "hold"},
                {"side": None},
                {"order_type": "LIMITED"},
                {"time_in_force": "DAY"},
                {"time_in_force": "GTD"},
                {"expiry_time": 5.0, "time_in_force": "GTD"},
                {"expiry_time": 9e9, "time_in_force": "GTC"},
                {"order_id": 7},
                {"order_id": ""},
                {"displayed_quantity": "1e9"},
                {"stop_price": "abc", "order_type": "STOP_LIMIT"},
                {"order_type": "MARKET"},
            ]
        ),
        side=SIDES,
        price=PRICE_UNITS,
    )
    def rejected_add(self, bad: dict[str, Any], side: str, price: int) -> None:
        kwargs: dict[str, Any] = {"side": side, "price": self.price_in(price, "str"), "quantity": self.lot}
        kwargs.update(bad)
        self.expect_rejected(lambda: self.book.add_order(**kwargs))

    @rule(index=st.integers(0, 1000), off=st.sampled_from(["nan", "-1", "0", "inf", "x", "1e40"]))
    def rejected_modify(self, index: int, off: str) -> None:
        order_id = self.pick_id(index)
        if self.model.live(order_id) is None:
            return
        self.expect_rejected(lambda: self.book.modify_order(order_id, new_quantity=off))

    # ------------------------------------------------------------------ checks

    def check_command(self, start: int, seq_before: int, outcome: rm.Outcome, result: object) -> None:
        assert result == outcome.result, f"returned {result!r}, model says {outcome.result!r}"
        events = self.recorder.since(start)
        self.check_sequence(events, seq_before)
        self.check_payloads(events)
        self.check_trades_and_fills(events, outcome)
        self.check_lifecycle(events, outcome)
        self.apply_level_events(events)
        self.check_state()

    def check_sequence(self, events: list[tuple[EventType, dict[str, Any]]], seq_before: int) -> None:
        sequences = [data["sequence"] for _, data in events]
        assert sequences == list(range(seq_before + 1, seq_before + 1 + len(events))), sequences
        assert self.book.sequence == seq_before + len(events)

    def check_payloads(self, events: list[tuple[EventType, dict[str, Any]]]) -> None:
        for event_type, data in events:
            missing = (COMMON_KEYS | REQUIRED_KEYS[event_type]) - data.keys()
            assert not missing, f"{event_type.name} lacks {sorted(missing)}"
            assert data["symbol"] == SYMBOL
            assert data["timestamp"] is not None
            if event_type in TERMINAL_EVENTS and "status" in data:
                assert data["status"] not in ("open", "partially_filled", "pending"), (
                    f"{event_type.name} of {data['order_id']} says the order is still {data['status']!r}"
                )

    def check_trades_and_fills(
        self, events: list[tuple[EventType, dict[str, Any]]], outcome: rm.Outcome
    ) -> None:
        trades = [
            (
                d["maker_order_id"],
                d["taker_order_id"],
                self.price_units(d["price"]),
                self.qty_units(d["quantity"]),
                d["taker_side"],
            )
            for e, d in events
            if e is EventType.TRADE_EXECUTED
        ]
        expected = [(t.maker, t.taker, t.price, t.quantity, t.taker_side) for t in outcome.trades]
        assert trades == expected, f"trades {trades} != model {expected}"
        if trades:
            history = [
                (
                    t["maker_order_id"],
                    t["taker_order_id"],
                    self.price_units(t["price"]),
                    self.qty_units(t["quantity"]),
                    t["taker_side"],
                )
                for t in self.book.get_trade_history(limit=len(trades))
            ]
            assert history == trades[::-1], "trade history is not the trades, newest first"
        maker_total = taker_total = trade_total = 0
        for i, (event_type, data) in enumerate(events):
            if event_type is EventType.TRADE_EXECUTED:
                assert i + 2 < len(events), "TRADE_EXECUTED not followed by the two ORDER_FILLED events"
                (maker_type, maker_fill), (taker_type, taker_fill) = events[i + 1], events[i + 2]
                assert maker_type is EventType.ORDER_FILLED and taker_type is EventType.ORDER_FILLED
                assert maker_fill["order_id"] == data["maker_order_id"] and maker_fill["is_maker"] is True
                assert taker_fill["order_id"] == data["taker_order_id"] and taker_fill["is_maker"] is False
                for fill in (maker_fill, taker_fill):
                    assert fill["trade_id"] == data["trade_id"]
                    assert dec(fill["fill_price"]) == dec(data["price"])
                    assert dec(fill["fill_quantity"]) == dec(data["quantity"])
                trade_total += self.qty_units(data["quantity"])
                self.volume += self.qty_units(data["quantity"])
            elif event_type is EventType.ORDER_ADDED:
                self.filled[data["order_id"]] = 0
            elif event_type is EventType.ORDER_FILLED:
                fill_qty = self.qty_units(data["fill_quantity"])
                assert fill_qty > 0
                if data["is_maker"]:
                    maker_total += fill_qty
                else:
                    taker_total += fill_qty
                cumulative = self.filled.get(data["order_id"], 0) + fill_qty
                self.filled[data["order_id"]] = cumulative
                assert self.qty_units(data["filled_quantity"]) == cumulative, (
                    "filled_quantity is not cumulative"
                )
                if "quantity" in data:
                    total = self.qty_units(data["quantity"])
                    assert cumulative + self.qty_units(data["remaining_quantity"]) == total
        assert maker_total == taker_total == trade_total
        assert self.qty_units(self.book.get_statistics()["total_volume"]) == self.volume

    def check_lifecycle(self, events: list[tuple[EventType, dict[str, Any]]], outcome: rm.Outcome) -> None:
        by_type: dict[EventType, list[dict[str, Any]]] = {}
        for event_type, data in events:
            by_type.setdefault(event_type, []).append(data)
        added = [d["order_id"] for d in by_type.get(EventType.ORDER_ADDED, [])]
        assert added == outcome.added, f"added {added} != model {outcome.added}"
        cancelled = Counter(
            (d["order_id"], self.qty_units(d.get("cancelled_quantity", d.get("remaining_quantity"))))
            for d in by_type.get(EventType.ORDER_CANCELLED, [])
        )
        assert cancelled == Counter(outcome.cancelled), f"cancelled {cancelled} != model {outcome.cancelled}"
        for d in by_type.get(EventType.ORDER_CANCELLED, []):
            assert isinstance(d["reason"], str) and d["reason"]
        expired = sorted(d["order_id"] for d in by_type.get(EventType.ORDER_EXPIRED, []))
        assert expired == sorted(outcome.expired), f"expired {expired} != model {outcome.expired}"
        triggered = [d["order_id"] for d in by_type.get(EventType.ORDER_TRIGGERED, [])]
        assert triggered == outcome.triggered, f"triggered {triggered} != model {outcome.triggered}"
        modified = sorted(
            d["order_id"]
            for d in by_type.get(EventType.ORDER_MODIFIED, [])
            if d["reason"] != "trailing_stop"  # the model does not announce trailing moves
        )
        assert modified == sorted(outcome.modified), f"modified {modified} != model {outcome.modified}"
        # Causal order per order: added first, then fills, and a cancellation/expiry last.
        for index, (event_type, data) in enumerate(events):
            if event_type not in TERMINAL_EVENTS:
                continue
            order_id = data["order_id"]
            later = [
                e
                for e, d in events[index + 1 :]
                if d.get("order_id") == order_id
                or order_id in (d.get("maker_order_id"), d.get("taker_order_id"))
            ]
            assert not later, f"{[e.name for e in later]} of {order_id} after its {event_type.name}"
        for index, (event_type, data) in enumerate(events):
            if event_type is EventType.ORDER_ADDED:
                earlier = [
                    e
                    for e, d in events[:index]
                    if e is not EventType.ORDER_EXPIRED
                    and (
                        d.get("order_id") == data["order_id"]
                        or data["order_id"] in (d.get("maker_order_id"), d.get("taker_order_id"))
                    )
                ]
                assert not earlier, f"{[e.name for e in earlier]} of {data['order_id']} before ORDER_ADDED"

    def apply_level_events(self, events: list[tuple[EventType, dict[str, Any]]]) -> None:
        for event_type, data in events:
            if event_type is EventType.BOOK_CLEARED:
                self.level_view.clear()
            elif event_type in (EventType.PRICE_LEVEL_ADDED, EventType.PRICE_LEVEL_CHANGED):
                key = (data["side"], self.price_units(data["price"]) or 0)
                self.level_view[key] = (self.qty_units(data["quantity"]), data["order_count"])
            elif event_type is EventType.PRICE_LEVEL_REMOVED:
                key = (data["side"], self.price_units(data["price"]) or 0)
                assert key in self.level_view, f"PRICE_LEVEL_REMOVED of unknown level {key}"
                del self.level_view[key]

    def check_state(self) -> None:
        self.book.check_invariants()
        snapshot = self.book.get_snapshot()
        assert snapshot["sequence"] == self.book.sequence
        bids = [
            (self.price_units(lv["price"]), self.qty_units(lv["quantity"]), lv["order_count"])
            for lv in snapshot["bids"]
        ]
        asks = [
            (self.price_units(lv["price"]), self.qty_units(lv["quantity"]), lv["order_count"])
            for lv in snapshot["asks"]
        ]
        assert bids == self.model.levels(rm.BUY), f"bids {bids} != model {self.model.levels(rm.BUY)}"
        assert asks == self.model.levels(rm.SELL), f"asks {asks} != model {self.model.levels(rm.SELL)}"
        if bids and asks:
            assert (bids[0][0] or 0) < (asks[0][0] or 0), "book crossed"
        assert all(qty > 0 and count > 0 for _, qty, count in bids + asks)
        view = {(side, price): (qty, count) for side, price, qty, count in self.snapshot_rows(bids, asks)}
        assert self.level_view == view, "price-level events do not rebuild the snapshot"
        listed = self.book.get_orders()
        model_orders = self.model.orders_in_book_order()
        ids = [o["order_id"] for o in listed]
        assert ids == [o.oid for o in model_orders], f"orders {ids} != model {[o.oid for o in model_orders]}"
        for got, want in zip(listed, model_orders, strict=True):
            pending = want in self.model.stops
            assert got["quantity"] == got["remaining_quantity"]  # a read's quantity is the open one
            seen = (
                got["side"],
                self.price_units(got["price"]),
                self.qty_units(got["original_quantity"]),
                self.qty_units(got["filled_quantity"]),
                self.qty_units(got["quantity"]),
                0 if pending else self.qty_units(got["visible_quantity"]),
                self.price_units(got["stop_price"]) if pending else None,
            )
            expected = (
                want.side,
                want.price,
                want.quantity,
                want.filled,
                want.open,
                0 if pending else want.visible,
                want.stop if pending else None,
            )
            assert seen == expected, f"order {want.oid}: {seen} != model {expected}"
            assert want.open > 0, "zero or negative order live"
        assert len(self.book) == len(self.model.resting) + len(self.model.stops)
        assert self.price_units(self.book.last_trade_price) == self.model.last

    @staticmethod
    def snapshot_rows(
        bids: list[tuple[int | None, int, int]], asks: list[tuple[int | None, int, int]]
    ) -> list[tuple[str, int, int, int]]:
        return [("buy", p or 0, q, c) for p, q, c in bids] + [("sell", p or 0, q, c) for p, q, c in asks]

    @invariant()
    def sequence_never_skips(self) -> None:
        if self.recorder.events:
            assert self.recorder.events[-1][1]["sequence"] == self.book.sequence


#: Bounded so the suite stays fast; report_multiple_bugs=False keeps the shrinking of a failure short.
OrderBookMachine.TestCase.settings = settings(
    max_examples=1000 if settings().derandomize else 400,
    stateful_step_count=30,
    report_multiple_bugs=False,
)
TestOrderBookAgainstModel = OrderBookMachine.TestCase


@pytest.mark.parametrize("seed", range(3))
def test_model_agrees_on_long_random_streams(seed: int) -> None:
    """A few long deterministic streams (hundreds of commands) through the same machine."""
    import random

    rng = random.Random(seed)
    machine = OrderBookMachine()
    machine.setup(GRIDS[seed % len(GRIDS)], ["float", "str", "decimal"][seed], STP_MODES[seed + 1])
    for _ in range(600):
        roll = rng.random()
        side = rng.choice([rm.BUY, rm.SELL])
        price = rng.randint(13, 20)
        user = rng.choice(["alice", "bob", "carol", None])
        if roll < 0.45:
            tif = rng.choice([rm.GTC, rm.GTC, rm.IOC, rm.FOK, rm.GTD])
            machine.add_limit(
                side, price, rng.randint(0, 6), tif, 2.0, user, None, None, "float", "lower", False
            )
        elif roll < 0.52:
            machine.add_market(side, rng.randint(0, 6), None, user, None, None, "str", "upper")
        elif roll < 0.57:
            machine.add_iceberg(side, price, 3, rng.randint(0, 6), False, 1.0, user, None, None, "str", True)
        elif roll < 0.62:
            limit = rng.choice([None, price])
            machine.add_stop(
                side, price, limit, rng.randint(0, 6), rm.GTC, 1.0, user, None, None, "float", True
            )
        elif roll < 0.65:
            machine.add_trailing_stop(side, (False, 1), None, rng.randint(0, 6), user, None, "float")
        elif roll < 0.82:
            machine.cancel(rng.randint(0, 1000))
        elif roll < 0.92:
            machine.modify(
                rng.randint(0, 1000), rng.choice([None, price]), rng.choice([None, 1, 3]), 2, None, "str"
            )
        elif roll < 0.97:
            machine.advance_time(0.5)
        else:
            machine.clean_expired()
        machine.sequence_never_skips()
    assert machine.volume > 0
