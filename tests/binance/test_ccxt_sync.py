"""ccxt (sync) against a real ``manticore serve``: markets, book, trades, candles, tickers, balances, every
order type, fills between two users checked exactly against the native API, lookups by both ids,
cancel-all, and each error mapping to the exception class ccxt raises against Binance."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.binance.rest_support import Trader, Venue, ccxt_config, start_venue

SYMBOL = "BTC/USD"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    yield from start_venue(tmp_path_factory.mktemp("ccxt-sync"))


def client(venue: Venue, trader: Trader | None) -> Any:
    exchange = ccxt.binance(ccxt_config(venue.url, trader))
    exchange.load_markets()
    return exchange


@pytest.fixture
def alice(venue: Venue) -> Any:
    return client(venue, venue.alice)


@pytest.fixture
def bob(venue: Venue) -> Any:
    return client(venue, venue.bob)


@pytest.fixture(autouse=True)
def empty_books(venue: Venue) -> Iterator[None]:
    yield
    for trader in (venue.alice, venue.bob):
        for order in trader.native.get("/api/orders").json()["orders"]:
            trader.native.delete(f"/api/orders/{order['order_id']}")


def balances_via_ccxt(exchange: Any) -> dict[str, tuple[Decimal, Decimal]]:
    info = exchange.fetch_balance()["info"]["balances"]
    return {row["asset"]: (Decimal(row["free"]), Decimal(row["locked"])) for row in info}


def balances_via_native(trader: Trader) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        asset: (Decimal(amounts["available"]), Decimal(amounts["held"]))
        for asset, amounts in trader.balances().items()
    }


def total(balances: dict[str, tuple[Decimal, Decimal]], asset: str) -> Decimal:
    free, locked = balances.get(asset, (Decimal(0), Decimal(0)))
    return free + locked


def trade_at(alice: Any, bob: Any, price: str, amount: str = "0.01") -> None:
    """Make the last trade price ``price`` (alice sells to bob)."""
    alice.create_order(SYMBOL, "limit", "sell", amount, price)
    bob.create_order(SYMBOL, "limit", "buy", amount, price)


def test_markets_match_the_native_market_list(venue: Venue, alice: Any) -> None:
    native = {m["symbol"]: m for m in venue.http.get("/api/markets").json()["markets"]}
    assert set(alice.markets) == set(native)
    market = alice.market(SYMBOL)
    assert market["id"] == "BTCUSD"
    assert market["spot"] and market["active"]
    assert Decimal(str(market["precision"]["price"])) == Decimal(native[SYMBOL]["tick_size"])
    assert Decimal(str(market["precision"]["amount"])) == Decimal(native[SYMBOL]["lot_size"])
    assert Decimal(str(market["limits"]["amount"]["min"])) == Decimal(native[SYMBOL]["lot_size"])


def test_fills_between_two_users_move_balances_exactly(venue: Venue, alice: Any, bob: Any) -> None:
    before_a, before_b = balances_via_native(venue.alice), balances_via_native(venue.bob)
    sell = alice.create_order(SYMBOL, "limit", "sell", 0.5, 30000)
    assert sell["status"] == "open"
    buy = bob.create_order(SYMBOL, "limit", "buy", 0.2, 30100)
    assert buy["status"] == "closed"
    assert Decimal(buy["info"]["executedQty"]) == Decimal("0.2")
    assert Decimal(buy["info"]["cummulativeQuoteQty"]) == Decimal("6000")
    fills = buy["info"]["fills"]
    assert [(Decimal(f["price"]), Decimal(f["qty"])) for f in fills] == [(Decimal(30000), Decimal("0.2"))]
    assert Decimal(fills[0]["commission"]) == Decimal("12")  # taker 0.002 x 6000, in USD

    after_a, after_b = balances_via_native(venue.alice), balances_via_native(venue.bob)
    assert balances_via_ccxt(alice) == after_a
    assert balances_via_ccxt(bob) == after_b
    # maker alice: -0.5 BTC (0.3 still held), +6000 - 6 USD; taker bob: +0.2 BTC, -6000 - 12 USD
    assert after_a["BTC"] == (before_a["BTC"][0] - Decimal("0.5"), Decimal("0.3"))
    assert total(after_a, "USD") - total(before_a, "USD") == Decimal("5994")
    assert total(after_b, "BTC") - total(before_b, "BTC") == Decimal("0.2")
    assert total(after_b, "USD") - total(before_b, "USD") == Decimal("-6012")

    mine = alice.fetch_my_trades(SYMBOL)
    assert mine[-1]["takerOrMaker"] == "maker" and mine[-1]["side"] == "sell"
    assert mine[-1]["order"] == sell["id"] and mine[-1]["fee"]["cost"] == 6.0
    theirs = bob.fetch_my_trades(SYMBOL)
    assert theirs[-1]["takerOrMaker"] == "taker" and theirs[-1]["id"] == mine[-1]["id"]


def test_market_data(venue: Venue, alice: Any, bob: Any) -> None:
    trade_at(alice, bob, "30000", "0.03")
    alice.create_order(SYMBOL, "limit", "sell", 0.4, 30500)
    bob.create_order(SYMBOL, "limit", "buy", 0.25, 29500)

    book = alice.fetch_order_book(SYMBOL)
    native = venue.http.get("/api/orderbook", params={"symbol": SYMBOL, "depth": 0}).json()
    assert book["nonce"] == native["sequence"]
    assert book["bids"] == [[float(lv["price"]), float(lv["quantity"])] for lv in native["bids"]]
    assert book["asks"] == [[float(lv["price"]), float(lv["quantity"])] for lv in native["asks"]]

    trades = alice.fetch_trades(SYMBOL)
    native_trades = venue.http.get("/api/trades", params={"symbol": SYMBOL}).json()["trades"]
    assert trades[-1]["price"] == float(native_trades[0]["price"]) == 30000.0
    assert trades[-1]["amount"] == 0.03
    assert [t["id"] for t in trades] == sorted((t["id"] for t in trades), key=int)
    since = trades[-1]["timestamp"]
    assert alice.fetch_trades(SYMBOL, since=since)[0]["id"] == trades[-1]["id"]
    plain = alice.fetch_trades(SYMBOL, params={"fetchTradesMethod": "publicGetTrades"})
    assert plain[-1]["id"] == trades[-1]["id"]
    # Binance's fromId is the first trade id wanted: one before the first trade (0) starts at the first.
    for from_id in (0, 1):
        oldest = venue.http.get(
            "/binance/api/v3/historicalTrades", params={"symbol": "BTCUSD", "fromId": from_id, "limit": 1}
        )
        assert oldest.status_code == 200 and [t["id"] for t in oldest.json()] == [1], oldest.text

    ticker = alice.fetch_ticker(SYMBOL)
    assert ticker["last"] == 30000.0
    assert (ticker["bid"], ticker["ask"]) == (29500.0, 30500.0)
    assert ticker["baseVolume"] > 0
    tickers = alice.fetch_tickers()
    assert set(tickers) == set(alice.markets)
    assert alice.fetch_tickers([SYMBOL])[SYMBOL]["last"] == 30000.0
    assert alice.fetch_last_prices([SYMBOL])[SYMBOL]["price"] == 30000.0
    bids_asks = alice.fetch_bids_asks([SYMBOL])[SYMBOL]
    assert (bids_asks["bid"], bids_asks["ask"]) == (29500.0, 30500.0)

    for timeframe in ("1s", "1m", "1h", "1d", "1w", "1M"):
        candles = alice.fetch_ohlcv(SYMBOL, timeframe)
        assert candles, timeframe
        assert candles[-1][4] == 30000.0
    one_minute = alice.fetch_ohlcv(SYMBOL, "1m", since=since - 60_000, limit=5)
    assert one_minute[-1][0] <= since < one_minute[-1][0] + 60_000


def test_every_order_type(venue: Venue, alice: Any, bob: Any) -> None:
    trade_at(alice, bob, "30000")

    maker = alice.create_order(SYMBOL, "limit", "sell", 0.1, 30200, {"postOnly": True})
    assert maker["info"]["type"] == "LIMIT_MAKER" and maker["status"] == "open" and maker["postOnly"]
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        bob.create_order(SYMBOL, "limit", "buy", 0.1, 30200, {"postOnly": True})

    market = bob.create_order(SYMBOL, "market", "buy", 0.05)
    assert market["status"] == "closed" and market["filled"] == 0.05 and market["average"] == 30200.0

    # a market buy with a price spends amount x price of quote (quoteOrderQty): 0.02 x 30200 = 604 USD
    by_cost = bob.create_order(SYMBOL, "market", "buy", 0.02, 30200)
    assert Decimal(by_cost["info"]["origQuoteOrderQty"]) == Decimal("604")
    assert by_cost["filled"] == 0.02 and by_cost["cost"] == 604.0
    spent = bob.create_market_buy_order_with_cost(SYMBOL, 302)
    assert spent["filled"] == 0.01

    ioc = bob.create_order(SYMBOL, "limit", "buy", 0.1, 30200, {"timeInForce": "IOC"})
    assert ioc["status"] == "expired" and ioc["filled"] == pytest.approx(0.02)
    fok = bob.create_order(SYMBOL, "limit", "buy", 1, 30200, {"timeInForce": "FOK"})
    assert fok["status"] == "expired" and fok["filled"] == 0

    iceberg = alice.create_order(SYMBOL, "limit", "sell", 0.5, 30300, {"icebergAmount": 0.1})
    assert Decimal(iceberg["info"]["icebergQty"]) == Decimal("0.1")
    assert alice.fetch_order_book(SYMBOL)["asks"][0] == [30300.0, 0.1]

    stop_limit = alice.create_order(SYMBOL, "limit", "sell", 0.1, 29000, {"stopPrice": 29100})
    assert stop_limit["info"]["type"] == "STOP_LOSS_LIMIT" and stop_limit["status"] == "open"
    assert stop_limit["triggerPrice"] == 29100.0
    assert not alice.fetch_order(stop_limit["id"], SYMBOL)["info"]["isWorking"]
    stop_market = alice.create_order(SYMBOL, "market", "sell", 0.1, None, {"stopPrice": 29050})
    assert stop_market["info"]["type"] == "STOP_LOSS"
    with pytest.raises(ccxt.InvalidOrder):  # a stop-market buy has no bounded cost: refused up front
        bob.create_order(SYMBOL, "market", "buy", 0.1, None, {"stopPrice": 31000})

    take_profit = alice.create_order(SYMBOL, "limit", "sell", 0.1, 31000, {"takeProfitPrice": 31000})
    assert take_profit["info"]["type"] == "TAKE_PROFIT_LIMIT" and take_profit["status"] == "open"
    take_profit_market = alice.create_order(SYMBOL, "market", "sell", 0.1, None, {"takeProfitPrice": 31500})
    assert take_profit_market["info"]["type"] == "TAKE_PROFIT"
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # its trigger is already behind the last trade
        alice.create_order(SYMBOL, "market", "sell", 0.1, None, {"takeProfitPrice": 29900})

    # the stop-loss-limit triggers when a trade prints at or below 29100
    bob.create_order(SYMBOL, "limit", "buy", 0.3, 29100)
    alice.create_order(SYMBOL, "limit", "sell", 0.3, 29100)
    assert alice.fetch_order(stop_limit["id"], SYMBOL)["info"]["isWorking"]


def test_self_trade_prevention(venue: Venue, alice: Any, bob: Any) -> None:
    trade_at(alice, bob, "30000")
    resting = alice.create_order(SYMBOL, "limit", "sell", 0.1, 30000)
    alice.create_order(SYMBOL, "limit", "buy", 0.1, 30000, {"selfTradePrevention": "EXPIRE_MAKER"})
    assert alice.fetch_order(resting["id"], SYMBOL)["info"]["status"] == "EXPIRED_IN_MATCH"


def test_lookups_by_both_ids_and_cancel_all(venue: Venue, alice: Any, bob: Any) -> None:
    placed = alice.create_order(SYMBOL, "limit", "buy", 0.1, 29000, {"clientOrderId": "alice-lookup-1"})
    assert placed["clientOrderId"] == "alice-lookup-1"
    by_id = alice.fetch_order(placed["id"], SYMBOL)
    by_client = alice.fetch_order(None, SYMBOL, {"origClientOrderId": "alice-lookup-1"})
    assert by_id["id"] == by_client["id"] == placed["id"]
    assert by_client["clientOrderId"] == "alice-lookup-1"
    assert placed["id"] in [order["id"] for order in alice.fetch_open_orders(SYMBOL)]
    assert placed["id"] in [order["id"] for order in alice.fetch_open_orders()]
    assert placed["id"] in [order["id"] for order in alice.fetch_orders(SYMBOL)]

    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):  # live ids are unique per user
        alice.create_order(SYMBOL, "limit", "buy", 0.1, 29000, {"clientOrderId": "alice-lookup-1"})
    bobs = bob.create_order(SYMBOL, "limit", "buy", 0.1, 29000, {"clientOrderId": "alice-lookup-1"})
    assert bobs["id"] != placed["id"]  # another user's ids do not matter
    assert bob.fetch_order(None, SYMBOL, {"origClientOrderId": "alice-lookup-1"})["id"] == bobs["id"]

    cancelled = alice.cancel_order(None, SYMBOL, {"origClientOrderId": "alice-lookup-1"})
    assert cancelled["status"] == "canceled" and cancelled["info"]["origClientOrderId"] == "alice-lookup-1"
    assert alice.fetch_order(placed["id"], SYMBOL)["status"] == "canceled"
    assert placed["id"] in [order["id"] for order in alice.fetch_canceled_orders(SYMBOL)]
    again = alice.create_order(SYMBOL, "limit", "buy", 0.1, 29000, {"clientOrderId": "alice-lookup-1"})
    assert again["id"] != placed["id"]  # reusable once the order has ended
    assert alice.fetch_order(None, SYMBOL, {"origClientOrderId": "alice-lookup-1"})["id"] == again["id"]
    alice.cancel_order(again["id"], SYMBOL)

    ids = {alice.create_order(SYMBOL, "limit", "buy", 0.1, price)["id"] for price in (29001, 29002, 29003)}
    gone = alice.cancel_all_orders(SYMBOL)
    assert {order["id"] for order in gone} == ids
    assert alice.fetch_open_orders(SYMBOL) == []
    with pytest.raises(ccxt.OrderNotFound):
        alice.cancel_all_orders(SYMBOL)


def test_error_mapping(venue: Venue, alice: Any, bob: Any) -> None:
    with pytest.raises(ccxt.BadSymbol):
        alice.publicGetDepth({"symbol": "NOPEUSD"})
    with pytest.raises(ccxt.InsufficientFunds):
        alice.create_order(SYMBOL, "limit", "buy", 1000, 29000)
    # ccxt rounds to the market's precision itself; its raw endpoint call sends the numbers as given
    raw = {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        alice.private_post_order({**raw, "quantity": "0.1", "price": "29000.005"})
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        alice.private_post_order({**raw, "quantity": "0.100001", "price": "29000"})
    with pytest.raises(ccxt.OrderNotFound):
        alice.fetch_order("987654", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        alice.cancel_order("987654", SYMBOL)
    placed = bob.create_order(SYMBOL, "limit", "buy", 0.1, 29000)
    with pytest.raises(ccxt.OrderNotFound):  # another user's order does not exist for alice
        alice.fetch_order(placed["id"], SYMBOL)

    wrong_secret = ccxt.binance({**ccxt_config(venue.url, venue.alice), "secret": "not-the-secret"})
    with pytest.raises(ccxt.AuthenticationError):
        wrong_secret.fetch_balance()
    unknown_key = ccxt.binance({**ccxt_config(venue.url, venue.alice), "apiKey": "no-such-key"})
    with pytest.raises(ccxt.AuthenticationError):
        unknown_key.fetch_balance()
    late = client(venue, venue.alice)
    late.options["timeDifference"] = 20_000  # its clock 20 s behind: outside ccxt's 10 s recvWindow
    with pytest.raises(ccxt.InvalidNonce):
        late.fetch_balance()
