"""``apply.place_plain`` (what ``Exchange.place_order`` calls for a plain GTC limit order whose price and
quantity texts the market remembers) does exactly what ``apply.place(..., check=True)`` does with that
order's ``place`` record: the same risk decision and holds, the same book state and events, the same
error (type, message, code) when risk or the book refuses, and nothing changed then."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_matching import Exchange, MarketConfig, apply
from manticore_matching.commands import order_args, place_record
from manticore_matching.errors import ExchangeError

MARKET = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.001"), Decimal("0.001"), Decimal("0.002")
)
USERS = ("alice", "bob", "carol")

#: One order: user, side, price (ticks from 30,000, some far outside the price band), quantity (lots,
#: some beyond the users' balances), client order id.
ORDERS = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(["buy", "sell"]),
        st.one_of(st.integers(-6, 6), st.sampled_from([-50_000, 40_000])),
        st.one_of(st.integers(1, 3_000), st.sampled_from([10_000_000])),
        st.one_of(st.none(), st.sampled_from(["a", "b", "c-1"])),
    ),
    min_size=1,
    max_size=25,
)


def _exchange(directory: Path) -> Exchange:
    exchange = Exchange(directory, markets=[MARKET], fsync=False, checkpoint_every=0)
    exchange.open()
    for user in USERS:
        exchange.deposit(user, "USD", "100000")
        exchange.deposit(user, "BTC", "3")
    return exchange


def _outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str, str | None] | None:
    try:
        call(*args, **kwargs)
    except ExchangeError as exc:
        return type(exc).__name__, str(exc), exc.code
    return None


def _state(exchange: Exchange) -> tuple[Any, ...]:
    market = exchange._markets[MARKET.symbol]
    risk = exchange.risk.export_state()
    risk.pop("rate_limiter", None)
    return market.book.export_state(), risk, market.capture.take()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=ORDERS)
def test_place_plain_is_place_of_the_plain_record(tmp_path_factory: Any, orders: list[Any]) -> None:
    root = tmp_path_factory.mktemp("plain")
    general, plain = _exchange(root / "general"), _exchange(root / "plain")
    try:
        assert _state(general)[:2] == _state(plain)[:2]
        for number, (user, side, ticks, lots, client_id) in enumerate(orders, 1):
            price = str(Decimal(30000) + Decimal("0.5") * ticks)
            quantity = str(Decimal("0.001") * lots)
            args = order_args(
                MARKET, side, quantity, price, "limit", None, None, None, None, None, False, None
            )
            now = 1_000.0 + number
            order_id = f"MC-{number}"
            record = place_record(now, order_id, client_id, user, args)
            general._now = plain._now = now
            market = general._markets[MARKET.symbol]
            expected = _outcome(apply.place, general.risk, market.book, record, check=True)
            book = plain._markets[MARKET.symbol].book
            price_text, quantity_text = args["price"], args["quantity"]
            found = _outcome(
                apply.place_plain,
                plain.risk,
                book,
                order_id,
                user,
                MARKET.symbol,
                side,
                price_text,
                quantity_text,
                client_id,
                now,
            )
            assert found == expected
            assert _state(plain) == _state(general)
    finally:
        general.close(checkpoint=False)
        plain.close(checkpoint=False)


def test_place_plain_refusals_change_nothing(tmp_path: Path) -> None:
    """A refusal by risk (a balance too small) and one by the book (an order id in use) leave the book,
    the ledger and the capture as they were."""
    exchange = _exchange(tmp_path)
    try:
        book = exchange._markets[MARKET.symbol].book
        before = _state(exchange)
        place = apply.place_plain
        refused = _outcome(
            place, exchange.risk, book, "MC-1", "alice", MARKET.symbol, "buy", "30000.0", "100.000", None, 1.0
        )
        assert refused is not None and refused[0] == "OrderRejected"
        assert _state(exchange) == before
        placed = _outcome(
            place, exchange.risk, book, "MC-1", "alice", MARKET.symbol, "buy", "29000.0", "0.001", None, 2.0
        )
        assert placed is None
        after = _state(exchange)
        again = _outcome(
            place, exchange.risk, book, "MC-1", "bob", MARKET.symbol, "sell", "31000.0", "0.001", None, 3.0
        )
        assert again is not None and again[0] in ("InvalidCommand", "OrderRejected")
        assert _state(exchange)[:2] == after[:2]
    finally:
        exchange.close(checkpoint=False)
