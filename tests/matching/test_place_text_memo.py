"""``Exchange.place_order``'s plain limit orders whose price and quantity strings the market has seen
(``Market.prices`` / ``Market.quantities``) journal the record that ``commands.order_args`` and
``commands.place_record`` give, and every other order raises what ``order_args`` raises, however the
strings recur and whatever the memo held before (also when it is emptied because it is full)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_matching import Exchange, InvalidCommand, MarketConfig, OrderRejected, market
from manticore_matching.commands import order_args, place_record
from tests.matching.exchange_streams import Clock

#: Strings on and off the markets' grids, malformed ones, and numbers whose record text differs from
#: the string (``"1e3"`` is ``"1E+3"``, ``".5"`` is ``"0.5"``).
TEXTS = st.one_of(
    st.sampled_from(
        ["30000.5", "30000.50", "30000", "0.5", ".5", "0.2", "0.4", "1", "+1", "1.", "1e3", "1E-1", "2.50E+1"]
    ),
    st.sampled_from(["30000.25", "0.01", "abc", "", "-1", "0", " 1", "1" * 70, "NaN"]),
)
#: Grids on which a price may be a valid price and not a valid quantity, and the other way round.
MEMO_MARKETS = (
    MarketConfig("BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.2"), Decimal("0.001"), Decimal("0.002")),
    MarketConfig(
        "ETH/USD", "ETH", "USD", Decimal("0.01"), Decimal("0.1"), Decimal("0.001"), Decimal("0.002")
    ),
)


@st.composite
def order_lists(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Orders whose prices and quantities come from a few strings, so that they recur."""
    pool = draw(st.lists(TEXTS, min_size=1, max_size=4))
    numbers = st.one_of(
        st.sampled_from(pool), st.sampled_from(pool), st.sampled_from([None, 30000.5, 1, True])
    )
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from([m.symbol for m in MEMO_MARKETS]),
                st.sampled_from(["buy", "sell", "buy", "sell", "BUY", "hold"]),
                numbers,
                numbers,
                st.sampled_from(["limit", "limit", "limit", "LIMIT", "market"]),
                st.sampled_from([None, None, None, "IOC"]),
            ),
            max_size=30,
        )
    )


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    made = Exchange(Path(tmp_path_factory.mktemp("memo")), markets=MEMO_MARKETS, clock=Clock(), fsync=False)
    made.open()
    for asset in ("USD", "BTC", "ETH"):
        made.deposit("alice", asset, "1000000000000")
    try:
        yield made
    finally:
        made.close(checkpoint=False)


def _expected(symbol: str, args: tuple[Any, ...]) -> dict[str, Any] | tuple[str, str | None]:
    config = next(m for m in MEMO_MARKETS if m.symbol == symbol)
    side, price, quantity, order_type, tif = args
    try:
        return order_args(config, side, quantity, price, order_type, tif, None, None, None, None, False, None)
    except InvalidCommand as exc:
        return (str(exc), exc.code)


@pytest.mark.parametrize("memo_size", [4096, 2])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=order_lists())
def test_place_records_are_order_args_records(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch, memo_size: int, orders: list[tuple[Any, ...]]
) -> None:
    monkeypatch.setattr(market, "TEXT_MEMO", memo_size)
    for held in exchange._markets.values():  # what an example of another memo size left
        held.prices.clear()
        held.quantities.clear()
    journaled: list[dict[str, Any]] = []
    rejected: list[int] = []
    append = exchange.journal.append

    def spy(record: dict[str, Any]) -> int:
        journaled.append(dict(record))
        return append(record)

    monkeypatch.setattr(exchange.journal, "append", spy)
    for symbol, side, price, quantity, order_type, tif in orders:
        expected = _expected(symbol, (side, price, quantity, order_type, tif))
        journaled.clear()
        try:
            receipt = exchange.place_order(
                "alice", symbol, side, quantity, price=price, order_type=order_type, time_in_force=tif
            )
        except InvalidCommand as exc:
            assert expected == (str(exc), exc.code)
            continue
        except OrderRejected:
            assert isinstance(expected, dict)  # risk refused what the arguments allow
            rejected.append(1)
            continue
        assert isinstance(expected, dict)
        record = journaled[-1]
        assert record["order_id"] == receipt.order_id
        want = place_record(record["ts"], record["order_id"], None, "alice", expected)
        got = {key: record[key] for key in record if key not in ("seq", "check", "n")}
        assert list(got.items()) == list(want.items())  # keys in order, values and types
        assert all(type(got[key]) is type(want[key]) for key in want)
        for memo in (exchange._markets[symbol].prices, exchange._markets[symbol].quantities):
            assert len(memo) <= memo_size
    exchange.wait_durable(exchange.journal.appended)


def test_seen_strings_are_remembered_with_their_texts(exchange: Exchange) -> None:
    exchange.place_order("alice", "ETH/USD", "buy", "0.10", price="1.50")
    memo = exchange._markets["ETH/USD"]
    assert memo.prices["1.50"] == "1.50" and memo.quantities["0.10"] == "0.10"
    # A string the market refused is never remembered.
    with pytest.raises(InvalidCommand):
        exchange.place_order("alice", "ETH/USD", "buy", "0.10", price="1.505")
    assert "1.505" not in memo.prices


def test_a_remembered_string_gives_its_text_again(exchange: Exchange) -> None:
    first = exchange.place_order("alice", "BTC/USD", "buy", ".4", price="1e3")
    again = exchange.place_order("alice", "BTC/USD", "buy", ".4", price="1e3")
    assert first.order is not None and again.order is not None
    exchange.wait_durable(again.position)
    for receipt in (first, again):
        record = exchange.journal.record_at(receipt.position)
        assert record is not None and (record["price"], record["quantity"]) == ("1E+3", "0.4")
    # "0.5" is a price on this grid and not a quantity: remembered as a price, it is still refused.
    exchange.place_order("alice", "BTC/USD", "buy", "0.4", price="0.5")
    with pytest.raises(InvalidCommand, match=r"quantity 0\.5 is not a multiple of 0\.2"):
        exchange.place_order("alice", "BTC/USD", "buy", "0.5", price="0.5")
