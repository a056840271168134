"""``capture`` builds its records from ``Order.fields``, ``Order.progress`` and ``Trade.fields`` (one call
each): on random commands of every kind, its records equal those of a model that reads every attribute
one by one, in both builds of the book (run this file with the pure and the compiled book)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventManager, OrderBook, OrderBookError
from manticore_orderbook.changes import CHANGE_CLEARED, CHANGE_TRADE, ChangeEntry
from manticore_orderbook.model import Order, Trade
from manticore_storage.capture import (
    RECORD_CLEARED,
    RECORD_FILL,
    RECORD_ORDER,
    RECORD_TRADE,
    Record,
    capture,
    order_record,
)


def _model_order(order: Any, sequence: int, kind: int, extra: Any) -> tuple[Any, ...]:
    """The full-state record read attribute by attribute (the rare fields through ``Order``'s
    properties)."""
    reason, open_, quantity = (None, order.open, order.quantity) if extra is None else extra
    return (
        RECORD_ORDER,
        sequence,
        kind,
        reason,
        order.order_id,
        order.side.value,
        order.order_type.value,
        order.tif.value,
        order.user_id,
        order.timestamp,
        order.stp.value,
        order.peak,
        order.trail,
        order.trail_is_percent,
        order.price,
        quantity,
        order.filled,
        open_,
        order.visible,
        order.expiry,
        order.stop_price,
        order.trail_ref,
        order.triggered,
        order.pending,
        order.rank,
        order.client_order_id,
    )


def _model_trade(trade: Any, maker: Any, taker: Any) -> tuple[Any, ...]:
    return (
        RECORD_TRADE,
        trade.number,
        trade.sequence,
        trade.price,
        trade.quantity,
        trade.maker_order_id,
        trade.taker_order_id,
        trade.maker_user_id,
        trade.taker_user_id,
        trade.taker_side.value,
        trade.timestamp,
        maker.client_order_id,
        taker.client_order_id,
    )


def _model_capture(entries: list[ChangeEntry]) -> list[tuple[Any, ...]]:
    """``capture``'s grouping (one record per touched order per stretch between clears, then the
    trades), every value read one by one."""
    records: list[tuple[Any, ...]] = []
    touched: dict[str, list[Any]] = {}
    trades: list[tuple[Any, ...]] = []

    def flush() -> None:
        for order, sequence, full, kind, extra in touched.values():
            if full:
                records.append(_model_order(order, sequence, kind, extra))
            else:
                records.append(
                    (
                        RECORD_FILL,
                        sequence,
                        order.order_id,
                        order.filled,
                        order.open,
                        order.visible,
                        order.rank,
                    )
                )
        records.extend(trades)

    for kind, a, b, c in entries:
        if kind == CHANGE_TRADE:
            trades.append(_model_trade(a, b, c))
            for order, seq in ((b, a.sequence + 1), (c, a.sequence + 2)):
                state = touched.get(order.order_id)
                if state is None:
                    touched[order.order_id] = [order, seq, False, kind, None]
                else:
                    state[0], state[1] = order, seq
        elif kind == CHANGE_CLEARED:
            flush()
            touched, trades = {}, []
            records.append((RECORD_CLEARED, b))
        else:
            touched[a.order_id] = [a, b, True, kind, c]
    flush()
    return records


_PRICES = st.sampled_from(["99", "99.5", "100", "100.5", "101"])
_QUANTITIES = st.sampled_from(["0.25", "0.5", "1", "1.5", "3"])
_USERS = st.sampled_from(["u1", "u2", 7, None])

_ADD = st.fixed_dictionaries(
    {
        "side": st.sampled_from(["buy", "sell"]),
        "price": _PRICES,
        "quantity": _QUANTITIES,
        "user_id": _USERS,
        "kind": st.sampled_from(
            ["limit", "limit", "limit", "ioc", "fok", "gtd", "market", "post", "iceberg", "stop", "trail"]
        ),
        "stp": st.sampled_from([None, "cancel_newest", "cancel_oldest", "cancel_both", "decrement"]),
        "client_order_id": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    }
)
_COMMANDS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), _ADD),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(
            st.just("modify"), st.tuples(st.integers(0, 30), st.one_of(st.none(), _PRICES), _QUANTITIES)
        ),
        st.tuples(st.just("expire"), st.just(None)),
        st.tuples(st.just("clear"), st.just(None)),
    ),
    max_size=40,
)


def _add(book: OrderBook, spec: dict[str, Any], number: int, now: list[float]) -> None:
    kind = spec["kind"]
    args: dict[str, Any] = {
        "order_id": f"O{number}",
        "user_id": spec["user_id"],
        "self_trade_prevention": spec["stp"],
        "client_order_id": None if spec["client_order_id"] is None else f"{spec['client_order_id']}{number}",
    }
    price: str | None = spec["price"]
    if kind == "ioc":
        args["time_in_force"] = "IOC"
    elif kind == "fok":
        args["time_in_force"] = "FOK"
    elif kind == "gtd":
        args["time_in_force"] = "GTD"
        args["expiry_time"] = now[0] + 1.5
    elif kind == "market":
        price = None
    elif kind == "post":
        args["order_type"] = "POST_ONLY"
    elif kind == "iceberg":
        args["order_type"] = "ICEBERG"
        args["displayed_quantity"] = "0.25"
    elif kind == "stop":
        args["order_type"] = "STOP_LIMIT"
        args["stop_price"] = spec["price"]
    elif kind == "trail":
        args["order_type"] = "TRAILING_STOP"
        price = None
        args["trail_value"] = "1"
    book.add_order(spec["side"], price, spec["quantity"], **args)


@settings(max_examples=150, deadline=None)
@given(_COMMANDS)
def test_capture_records_equal_the_attribute_by_attribute_model(commands: list[tuple[str, Any]]) -> None:
    now = [1000.0]
    book = OrderBook(
        "BTC/USD", event_manager=EventManager(), tick_size="0.5", lot_size="0.25", clock=lambda: now[0]
    )
    seen: list[tuple[tuple[Record, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]] = []

    def recorder(entries: list[ChangeEntry], *_: object) -> None:
        singles = [
            order_record(a, b, kind, c)
            for kind, a, b, c in entries
            if kind not in (CHANGE_TRADE, CHANGE_CLEARED)
        ]
        models = [
            _model_order(a, b, kind, c)
            for kind, a, b, c in entries
            if kind not in (CHANGE_TRADE, CHANGE_CLEARED)
        ]
        assert singles == models
        seen.append((capture(entries), _model_capture(entries), [entry[:1] for entry in entries]))

    book.add_change_recorder(recorder)
    for number, (op, arg) in enumerate(commands):
        now[0] += 1.0
        try:
            if op == "add":
                _add(book, arg, number, now)
            elif op == "cancel":
                book.cancel_order(f"O{arg}")
            elif op == "modify":
                book.modify_order(f"O{arg[0]}", new_price=arg[1], new_quantity=arg[2])
            elif op == "expire":
                book.clean_expired_orders()
            else:
                book.clear()
        except (OrderBookError, ValueError, KeyError):
            pass
        # every live order's tuples against its attributes, after every command
        for order in list(book._orders.values()):
            assert isinstance(order, Order)
            assert order.fields() == _model_order(order, 0, 0, None)[4:]
            assert order.fields(3, 2) == _model_order(order, 0, 0, (None, 2, 3))[4:]
            assert order.progress() == (order.order_id, order.filled, order.open, order.visible, order.rank)
    for records, model, _kinds in seen:
        assert list(records) == model
        for record in records:
            assert all(type(value) is not Order and type(value) is not Trade for value in record)
    if any(kind == (CHANGE_TRADE,) for _, _, kinds in seen for kind in kinds):
        assert any(record[0] == RECORD_TRADE for records, _, _ in seen for record in records)
