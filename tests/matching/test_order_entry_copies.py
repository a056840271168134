"""Session 22's cheaper steps of a durable order, each the same as the step it replaces:

* ``place_order``'s record of a plain GTC limit order (a copy of a template with the varying values
  stored) is :func:`~manticore_matching.commands.place_record` of :func:`~.commands.order_args`'
  arguments, key for key and in the same order (so the journal line is the same bytes);
* ``RecentOrders.track``'s shortcut for a command of one ORDER_ADDED event gives what its loop gives
  (state, finished orders, client order id indexes);
* ``Journal.append`` writes the line :func:`~manticore_matching.journal._encode` writes;
* ``capture.order_record`` of an order with rare fields puts each in its place.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_matching import Exchange, MarketConfig
from manticore_matching.commands import order_args, place_record
from manticore_matching.errors import ExchangeError
from manticore_matching.journal import Journal, _encode
from manticore_matching.recent import RecentOrders
from manticore_orderbook import EventType, OrderBook
from manticore_storage.capture import RECORD_ORDER, order_record

MARKET = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.001"), Decimal("0.001"), Decimal("0.002")
)
USERS = ("alice", "bob")

#: user, side, price (ticks from 30,000), quantity (lots), client order id, command id: few values, so
#: that prices and quantities repeat (a repeated pair takes the template's path).
ORDERS = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(["buy", "sell"]),
        st.integers(-2, 2),
        st.integers(1, 3),
        st.one_of(st.none(), st.sampled_from(["a", "b"])),
        st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"])),
    ),
    min_size=2,
    max_size=20,
)


def _journal_records(directory: Path) -> list[dict[str, Any]]:
    return list(Journal(directory / "journal").read())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=ORDERS)
def test_a_plain_order_s_record_is_place_record_of_its_arguments(
    tmp_path_factory: Any, orders: list[Any]
) -> None:
    directory = tmp_path_factory.mktemp("plain")
    exchange = Exchange(directory, markets=[MARKET], fsync=False, checkpoint_every=0)
    exchange.open()
    for user in USERS:
        exchange.deposit(user, "USD", "1000000")
        exchange.deposit(user, "BTC", "100")
    # The first order twice: its texts are remembered, so the second takes the template's path.
    for user, side, ticks, lots, client_id, command_id in [orders[0], *orders]:
        price = str(Decimal(30000) + Decimal("0.5") * ticks)
        quantity = str(Decimal("0.001") * lots)
        with contextlib.suppress(ExchangeError):  # a duplicate client order id: refused, journals nothing
            exchange.place_order(
                user, "BTC/USD", side, quantity, price=price, client_order_id=client_id, command_id=command_id
            )
    exchange.wait_durable(exchange.journal.appended, 10)
    exchange.close(checkpoint=False)
    places = [record for record in _journal_records(directory) if record["op"] == "place"]
    assert places
    for record in places:
        args = order_args(
            MARKET,
            record["side"],
            record["quantity"],
            record["price"],
            "limit",
            None,
            None,
            None,
            None,
            None,
            False,
            None,
        )
        expected = place_record(
            record["ts"], record["order_id"], record["client_order_id"], record["user_id"], args
        )
        items = list(record.items())
        assert items[: len(expected)] == list(expected.items())
        # Then what the commit adds: the command id (if any), the book's sequence and fingerprint, n.
        added = [key for key, _ in items[len(expected) :]]
        assert added in (["cid", "seq", "check", "n"], ["seq", "check", "n"])


def _added(order_id: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "symbol": "BTC/USD",
        "timestamp": 1.0,
        "sequence": 3,
        "order_id": order_id,
        "client_order_id": None,
        "user_id": "alice",
        "side": "buy",
        "order_type": "limit",
        "price": "100.0",
        "quantity": "1.000",
        "filled_quantity": "0.000",
        "remaining_quantity": "1.000",
        "visible_quantity": "0.000",
        "status": "open",
        "time_in_force": "GTC",
        "expiry_time": None,
        "stop_price": None,
        "trail_value": None,
        "displayed_quantity": None,
    }
    data.update(changes)
    return data


ADDED = st.builds(
    lambda order_id, client_id, status, stop, display, trail, remaining: _added(
        order_id,
        client_order_id=client_id,
        status=status,
        stop_price=stop,
        displayed_quantity=display,
        trail_value=trail,
        remaining_quantity=remaining,
    ),
    order_id=st.sampled_from(["A", "B"]),
    client_id=st.one_of(st.none(), st.just("x")),
    status=st.sampled_from(["open", "partially_filled", "filled", "cancelled", "pending"]),
    stop=st.one_of(st.none(), st.just("99.0")),
    display=st.one_of(st.none(), st.just("0.500")),
    trail=st.one_of(st.none(), st.just("1.0")),
    remaining=st.sampled_from(["1.000", "0.250", "0.000"]),
)


def _view(orders: RecentOrders) -> tuple[Any, ...]:
    return list(orders.recent.items()), dict(orders.live_names), dict(orders.recent_names)


@settings(max_examples=200, deadline=None)
@given(data=ADDED, asked=st.sampled_from(["A", "B", None]))
def test_track_s_shortcut_for_one_added_event_is_its_loop(data: dict[str, Any], asked: str | None) -> None:
    shortcut, loop = RecentOrders(), RecentOrders()
    before = dict(data)
    events = [(EventType.ORDER_ADDED, data)]
    got = shortcut.track(events, asked)
    want = loop.track(iter(events), asked)  # an iterator, not a list: the loop's path
    assert got == want
    assert got is None or (got is not data and list(got) == list(want or {}))
    assert _view(shortcut) == _view(loop)
    assert data == before  # the payload is unchanged


def test_the_appended_line_is_encode_s_line(tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [
        {"op": "place", "ts": 1700000000.123456, "price": "97.5", "x": None, "check": [1, 2]},
        {"op": "deposit", "user_id": "odd\ud800user", "amount": "1"},  # orjson refuses: json writes it
        {"op": "big", "amount": 2**70},  # beyond 64 bits: json writes it
    ]
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    for record in records:
        journal.append(record)
    assert journal.wait(len(records), 10)
    journal.close()
    expected = b"".join(_encode(record) for record in records)  # records now hold their "n"
    assert b"".join(path.read_bytes() for path in sorted(tmp_path.glob("*.log"))) == expected


def test_an_order_record_puts_each_rare_field_in_its_place() -> None:
    book = OrderBook("BTC/USD", tick_size="0.5", lot_size="0.001")
    book.add_order("buy", "100", "1", order_id="A", user_id="u", client_order_id="mine", expiry_time=5e9)
    book.add_order(
        "sell", "200", "2", order_id="B", user_id="v", order_type="iceberg", displayed_quantity="0.5"
    )
    plain = book._orders
    a, b = plain["A"], plain["B"]
    assert a.extra is not None and b.extra is not None
    record_a = order_record(a, 7, 1, None)
    record_b = order_record(b, 8, 1, None)
    assert record_a[0] == RECORD_ORDER and len(record_a) == 26
    assert record_a[25] == "mine" and record_a[19] == a.extra.expiry == 5e9
    assert record_a[11:14] == (a.extra.peak, a.extra.trail, a.extra.trail_is_percent)
    assert record_a[20:24] == (a.extra.stop_price, a.extra.trail_ref, a.extra.triggered, a.extra.pending)
    assert record_b[11] == b.extra.peak == 500 and record_b[25] is None and record_b[19] is None
