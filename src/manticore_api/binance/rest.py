"""Binance spot REST routes under ``/binance/api/v3`` over the exchange service.

The routes are left out of the OpenAPI schema (``/openapi.json`` describes the native API): their
parameters and answers are Binance's (docs/binance.md), read from the raw request, not from a model.

Parameters are read the Binance way: from the raw query string and, for POST/PUT/DELETE, a form-encoded
body (the query wins when a name is in both; the Content-Type header is ignored, python-binance labels its
forms JSON). SIGNED routes verify ``X-MBX-APIKEY`` + ``signature`` (:mod:`.signing`) with the caller's
Manticore key. Every error is ``{"code": -NNNN, "msg": ...}`` with Binance's status (:mod:`.errors`); a
client's mistake is never a 5xx. Orders are answered only once durable (:mod:`.orders`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from manticore_auth import AuthError
from manticore_matching import ExchangeError

from ..service import ExchangeService
from .errors import BinanceError, from_auth_error, from_exchange_error
from .klines import INTERVALS, Klines
from .markets import BinanceMarkets
from .orders import ORDER_TYPES, BinanceOrders, order_no, trade_no
from .signing import merged_params, split_signature, verify
from .tickers import avg_price, book_ticker, price_ticker, ticker_24hr

__all__ = ["PREFIX", "install_rest"]

PREFIX = "/binance/api/v3"
MAX_BODY = 16 * 1024
_STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"]

Handler = Callable[[Request], Awaitable[Any]]


def binance_errors(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Answer a route's result as JSON, and any error as Binance's ``{"code", "msg"}``."""

    async def run(request: Request) -> Response:
        try:
            result = await handler(request)
        except BinanceError as exc:
            return error_response(exc)
        except AuthError as exc:
            return error_response(from_auth_error(exc))
        except ExchangeError as exc:
            return error_response(from_exchange_error(exc))
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    run.__name__ = handler.__name__  # FastAPI reads the wrapper's own signature: one ``request``
    run.__doc__ = handler.__doc__
    return run


def error_response(exc: BinanceError) -> JSONResponse:
    """The HTTP answer to a :class:`BinanceError` (with ``Retry-After`` for rate limits)."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _raw(request: Request) -> tuple[str, str]:
    query = request.scope.get("query_string", b"").decode("latin-1")
    body = ""
    if request.method in ("POST", "PUT", "DELETE"):
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise BinanceError(-1104, "Too many parameters sent for this endpoint.")
        body = raw.decode("utf-8", "replace")
    return query, body


async def public_params(request: Request) -> dict[str, str]:
    """The parameters of an unsigned request."""
    query, body = await _raw(request)
    return merged_params(query, body)


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(raw)


def _limit(params: dict[str, str], default: int, maximum: int) -> int:
    value = _int(params, "limit", default)
    assert value is not None
    if value <= 0:
        raise BinanceError(
            -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
        )
    return min(value, maximum)


def _symbol_list(params: dict[str, str]) -> list[str] | None:
    raw = params.get("symbols")
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise BinanceError(
            -1100,
            "Illegal characters found in parameter 'symbols'; "
            'legal range is \'^\\["[A-Z0-9]{1,20}"(,"[A-Z0-9]{1,20}"){0,}\\]$\'.',
        )
    return names


def _fmt(value: object) -> str:
    return format(Decimal(str(value)).normalize() if value is not None else Decimal(0), "f")


def install_rest(
    app: FastAPI,
    service: ExchangeService,
    markets: BinanceMarkets,
    klines: Klines,
    orders: BinanceOrders,
) -> None:
    """Add the REST routes to ``app``."""
    router = APIRouter(prefix=PREFIX, tags=["binance"])
    exchange = service.exchange
    reads = service.reads  # awaited: a gateway's reads are round trips to the shard
    auth = service.auth

    def route(path: str, *methods: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            router.add_api_route(
                path, binance_errors(handler), methods=list(methods), include_in_schema=False
            )
            return handler

        return register

    async def signed(request: Request) -> tuple[str, dict[str, str]]:
        """The caller's user id and the request's parameters (``signature`` removed)."""
        query, body = await _raw(request)
        unsigned_query, query_signature = split_signature(query)
        unsigned_body, body_signature = split_signature(body)
        params = merged_params(query, body)
        params.pop("signature", None)
        user = verify(
            auth,
            request.headers.get("x-mbx-apikey"),
            unsigned_query + unsigned_body,
            query_signature or body_signature,
            params.get("timestamp"),
            params.get("recvWindow"),
        )
        return user.user_id, params

    def symbol_param(params: dict[str, str]) -> str:
        raw = params.get("symbol")
        if not raw:
            raise BinanceError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        return markets.native(raw)

    def natives(params: dict[str, str]) -> tuple[list[str], bool]:
        """The markets a ticker request names, and whether it named exactly one with ``symbol``."""
        if params.get("symbol"):
            if params.get("symbols"):
                raise BinanceError(-1101, "Parameter 'symbol' and 'symbols' cannot be sent together.")
            return [markets.native(params["symbol"])], True
        names = _symbol_list(params)
        if names is None:
            return [config.symbol for config in markets.all()], False
        return [markets.native(name) for name in names], False

    async def many(params: dict[str, str], one: Callable[[str], Awaitable[dict[str, Any]]]) -> Any:
        chosen, single = natives(params)
        results = [await one(native) for native in chosen]
        return results[0] if single else results

    async def top_of_book(native: str) -> _TopOfBook:
        """The best levels of ``native``, read once (awaited) for the ticker functions."""
        return _TopOfBook(await reads.get_snapshot(native, 1))

    # ------------------------------------------------------------------ general

    @route("/ping", "GET")
    async def ping(_request: Request) -> Any:
        return {}

    @route("/time", "GET")
    async def server_time(_request: Request) -> Any:
        return {"serverTime": int(time.time() * 1000)}

    @route("/exchangeInfo", "GET")
    async def exchange_info(request: Request) -> Any:
        params = await public_params(request)
        if params.get("symbol"):
            chosen = [markets.native(params["symbol"])]
        elif params.get("symbols"):
            chosen = [markets.native(name) for name in _symbol_list(params) or []]
        else:
            chosen = [config.symbol for config in markets.all()]
        limits = markets.limits
        rate_limits = []
        if limits.rate_limit_orders is not None and limits.rate_limit_window is not None:
            rate_limits.append(
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": max(1, round(limits.rate_limit_window)),
                    "limit": limits.rate_limit_orders,
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": rate_limits,
            "exchangeFilters": [],
            "symbols": [symbol_info(native) for native in chosen],
        }

    def symbol_info(native: str) -> dict[str, Any]:
        config = markets.config(native)
        filters = markets.filters(native)
        if limits_open := markets.limits.max_open_orders:
            filters.append({"filterType": "MAX_NUM_ORDERS", "maxNumOrders": limits_open})
        base_digits = markets.qty_decimals(native)
        quote_digits = markets.quote_decimals(native)
        return {
            "symbol": markets.binance_symbol(native),
            "status": "TRADING",
            "baseAsset": config.base_asset,
            "baseAssetPrecision": base_digits,
            "quoteAsset": config.quote_asset,
            "quotePrecision": quote_digits,
            "quoteAssetPrecision": quote_digits,
            "baseCommissionPrecision": base_digits,
            "quoteCommissionPrecision": quote_digits,
            "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": True,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": True,
            "amendAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": filters,
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": _STP_MODES,
        }

    # ------------------------------------------------------------------ market data

    @route("/depth", "GET")
    async def depth(request: Request) -> Any:
        params = await public_params(request)
        native = symbol_param(params)
        limit = _limit(params, 100, 5000)
        book = await reads.get_snapshot(native, limit)
        price, qty = markets.price, markets.qty
        return {
            "lastUpdateId": book["sequence"],
            "bids": [
                [price(native, level["price"]), qty(native, level["quantity"])] for level in book["bids"]
            ],
            "asks": [
                [price(native, level["price"]), qty(native, level["quantity"])] for level in book["asks"]
            ],
        }

    def trade_view(native: str, trade: dict[str, Any]) -> dict[str, Any]:
        price, quantity = Decimal(str(trade["price"])), Decimal(str(trade["quantity"]))
        return {
            "id": trade_no(trade["trade_id"]),
            "price": markets.price(native, price),
            "qty": markets.qty(native, quantity),
            "quoteQty": markets.quote(native, price * quantity),
            "time": int(float(trade["timestamp"]) * 1000),
            "isBuyerMaker": trade.get("taker_side") == "sell",
            "isBestMatch": True,
        }

    def agg_view(native: str, trade: dict[str, Any]) -> dict[str, Any]:
        number = trade_no(trade["trade_id"])
        return {
            "a": number,
            "p": markets.price(native, trade["price"]),
            "q": markets.qty(native, trade["quantity"]),
            "f": number,
            "l": number,
            "T": int(float(trade["timestamp"]) * 1000),
            "m": trade.get("taker_side") == "sell",
            "M": True,
        }

    @route("/trades", "GET")
    async def trades(request: Request) -> Any:
        params = await public_params(request)
        native = symbol_param(params)
        limit = _limit(params, 500, 1000)
        recent = await reads.recent_trades(native, limit)
        return [trade_view(native, trade) for trade in reversed(recent)]

    async def stored_trades(
        native: str, from_no: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Trades of ``native`` from storage, oldest first: from trade number ``from_no`` on, or within
        ``[start_ms, end_ms]``; at most ``limit``. Trade numbers start at 1: a ``from_no`` below it
        starts at the first trade, as Binance answers a ``fromId`` older than every trade."""
        if from_no is not None and from_no < 1:
            from_no = 1
        return await orders.trade_history.stored_trades(native, from_no, start_ms, end_ms, limit)

    @route("/historicalTrades", "GET")
    async def historical_trades(request: Request) -> Any:
        params = await public_params(request)
        native = symbol_param(params)
        limit = _limit(params, 500, 1000)
        from_no = _int(params, "fromId")
        if from_no is None:
            return await trades(request)
        return [
            trade_view(native, trade) for trade in await stored_trades(native, from_no, None, None, limit)
        ]

    @route("/aggTrades", "GET")
    async def agg_trades(request: Request) -> Any:
        params = await public_params(request)
        native = symbol_param(params)
        limit = _limit(params, 500, 1000)
        from_no = _int(params, "fromId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        if from_no is None and start is None and end is None:
            return [agg_view(native, trade) for trade in reversed(await reads.recent_trades(native, limit))]
        found = await stored_trades(native, from_no, start, end, limit)
        return [agg_view(native, trade) for trade in found]

    @route("/klines", "GET")
    async def get_klines(request: Request) -> Any:
        params = await public_params(request)
        native = symbol_param(params)
        interval = params.get("interval")
        if not interval:
            raise BinanceError(
                -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = _limit(params, 500, 1000)
        return klines.klines(native, interval, _int(params, "startTime"), _int(params, "endTime"), limit)

    router.add_api_route("/uiKlines", binance_errors(get_klines), methods=["GET"], include_in_schema=False)

    @route("/ticker/24hr", "GET")
    async def ticker(request: Request) -> Any:
        params = await public_params(request)
        now = int(time.time() * 1000)

        async def one(native: str) -> dict[str, Any]:
            return ticker_24hr(await top_of_book(native), markets, klines, native, now)

        return await many(params, one)

    @route("/ticker/price", "GET")
    async def ticker_price(request: Request) -> Any:
        params = await public_params(request)

        async def one(native: str) -> dict[str, Any]:
            return price_ticker(markets, klines, native)

        return await many(params, one)

    @route("/ticker/bookTicker", "GET")
    async def ticker_book(request: Request) -> Any:
        params = await public_params(request)

        async def one(native: str) -> dict[str, Any]:
            return book_ticker(await top_of_book(native), markets, native)

        return await many(params, one)

    @route("/avgPrice", "GET")
    async def average_price(request: Request) -> Any:
        params = await public_params(request)
        return avg_price(markets, klines, symbol_param(params))

    # ------------------------------------------------------------------ account

    def commission_rates() -> dict[str, str]:
        configs = markets.all()
        maker = max((config.maker_fee_rate for config in configs), default=Decimal(0))
        taker = max((config.taker_fee_rate for config in configs), default=Decimal(0))
        return {"maker": _fmt(maker), "taker": _fmt(taker), "buyer": "0", "seller": "0"}

    @route("/account", "GET")
    async def account(request: Request) -> Any:
        user_id, params = await signed(request)
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        balances = []
        for asset, amounts in (await reads.balances(user_id))["balances"].items():
            free, locked = Decimal(str(amounts["available"])), Decimal(str(amounts["held"]))
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": _fmt(free), "locked": _fmt(locked)})
        rates = commission_rates()
        return {
            "makerCommission": int(Decimal(rates["maker"]) * 10_000),
            "takerCommission": int(Decimal(rates["taker"]) * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": rates,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": int(time.time() * 1000),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 0,
        }

    @route("/account/commission", "GET")
    async def commission(request: Request) -> Any:
        _user_id, params = await signed(request)
        config = markets.config(symbol_param(params))
        rates = {
            "maker": _fmt(config.maker_fee_rate),
            "taker": _fmt(config.taker_fee_rate),
            "buyer": "0",
            "seller": "0",
        }
        return {
            "symbol": markets.binance_symbol(config.symbol),
            "standardCommission": rates,
            "specialCommission": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
            "taxCommission": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": "0",
            },
        }

    # ------------------------------------------------------------------ orders

    def count_placed(request: Request) -> None:
        registry = getattr(request.app.state, "metrics", None)
        counter = getattr(registry, "orders_placed", None)
        if counter is not None:
            counter.inc()

    @route("/order", "POST")
    async def new_order(request: Request) -> Any:
        user_id, params = await signed(request)
        answer = await orders.place(user_id, params)
        count_placed(request)
        return answer

    @route("/order/test", "POST")
    async def test_order(request: Request) -> Any:
        _user_id, params = await signed(request)
        await orders.place(_user_id, params, test=True)
        if params.get("computeCommissionRates", "").lower() == "true":
            config = markets.config(markets.native(params["symbol"]))
            rates = {"maker": _fmt(config.maker_fee_rate), "taker": _fmt(config.taker_fee_rate)}
            return {
                "standardCommissionForOrder": rates,
                "taxCommissionForOrder": {"maker": "0", "taker": "0"},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": "0",
                },
            }
        return {}

    @route("/order", "GET")
    async def query_order(request: Request) -> Any:
        user_id, params = await signed(request)
        native = symbol_param(params)
        return orders.order_view(await orders.find(user_id, native, params))

    @route("/order", "DELETE")
    async def cancel_order(request: Request) -> Any:
        user_id, params = await signed(request)
        return await orders.cancel(user_id, params)

    @route("/order/cancelReplace", "POST")
    async def cancel_replace(request: Request) -> Any:
        user_id, params = await signed(request)
        mode = (params.get("cancelReplaceMode") or "").upper()
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise BinanceError(
                -1102, "Mandatory parameter 'cancelReplaceMode' was not sent, was empty/null, or malformed."
            )
        orders.parse(params)  # the new order must be valid before anything is cancelled
        cancel_params = {
            "symbol": params.get("symbol", ""),
            "orderId": params.get("cancelOrderId", ""),
            "origClientOrderId": params.get("cancelOrigClientOrderId", ""),
            "newClientOrderId": params.get("cancelNewClientOrderId", ""),
        }
        cancel_params = {key: value for key, value in cancel_params.items() if value}
        try:
            cancelled: dict[str, Any] | None = await orders.cancel(user_id, cancel_params)
            cancel_error = None
        except BinanceError as exc:
            cancelled, cancel_error = None, exc
        if cancel_error is not None and mode == "STOP_ON_FAILURE":
            return JSONResponse(
                {
                    "code": -2022,
                    "msg": "Order cancel-replace failed.",
                    "data": {
                        "cancelResult": "FAILURE",
                        "newOrderResult": "NOT_ATTEMPTED",
                        "cancelResponse": cancel_error.body(),
                        "newOrderResponse": None,
                    },
                },
                status_code=400,
            )
        new_params = {key: value for key, value in params.items() if not key.startswith("cancel")}
        try:
            placed: dict[str, Any] | None = await orders.place(user_id, new_params)
            place_error = None
        except BinanceError as exc:
            placed, place_error = None, exc
        if cancel_error is None and place_error is None:
            count_placed(request)
            return {
                "cancelResult": "SUCCESS",
                "newOrderResult": "SUCCESS",
                "cancelResponse": cancelled,
                "newOrderResponse": placed,
            }
        return JSONResponse(
            {
                "code": -2021 if cancel_error is None or place_error is None else -2022,
                "msg": "Order cancel-replace partially failed."
                if cancel_error is None or place_error is None
                else "Order cancel-replace failed.",
                "data": {
                    "cancelResult": "SUCCESS" if cancel_error is None else "FAILURE",
                    "newOrderResult": "SUCCESS" if place_error is None else "FAILURE",
                    "cancelResponse": cancelled if cancel_error is None else cancel_error.body(),
                    "newOrderResponse": placed if place_error is None else place_error.body(),
                },
            },
            status_code=409 if cancel_error is None or place_error is None else 400,
        )

    @route("/openOrders", "GET")
    async def open_orders(request: Request) -> Any:
        user_id, params = await signed(request)
        native = symbol_param(params) if params.get("symbol") else None
        return [orders.order_view(state) for state in await reads.open_orders(user_id, native)]

    @route("/openOrders", "DELETE")
    async def cancel_open_orders(request: Request) -> Any:
        user_id, params = await signed(request)
        return await orders.cancel_all(user_id, params)

    @route("/allOrders", "GET")
    async def all_orders(request: Request) -> Any:
        user_id, params = await signed(request)
        native = symbol_param(params)
        limit = _limit(params, 500, 1000)
        first = _int(params, "orderId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        chosen = []
        for state in await orders.history(user_id, native):
            view = orders.order_view(state)
            if first is not None and view["orderId"] < first:
                continue
            if start is not None and view["time"] < start:
                continue
            if end is not None and view["time"] > end:
                continue
            chosen.append(view)
        return chosen[:limit] if first is not None or start is not None else chosen[-limit:]

    @route("/myTrades", "GET")
    async def my_trades(request: Request) -> Any:
        user_id, params = await signed(request)
        native = symbol_param(params)
        limit = _limit(params, 500, 1000)
        only_order = _int(params, "orderId")
        from_no = _int(params, "fromId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        await orders.flush_storage()
        fills = await run_in_threadpool(exchange.fills, user_id, native, 1000)
        asset = markets.config(native).quote_asset
        chosen = []
        for fill in reversed(fills):
            view = fill_view(native, fill, asset)
            if only_order is not None and view["orderId"] != only_order:
                continue
            if from_no is not None and view["id"] < from_no:
                continue
            if start is not None and view["time"] < start:
                continue
            if end is not None and view["time"] > end:
                continue
            chosen.append(view)
        return chosen[:limit] if from_no is not None or start is not None else chosen[-limit:]

    def fill_view(native: str, fill: dict[str, Any], asset: str) -> dict[str, Any]:
        maker = fill["role"] == "maker"
        side = str(fill["side"]).lower()
        fee = fill.get("fee")
        native_id = str(fill["order_id"])
        price, quantity = Decimal(str(fill["price"])), Decimal(str(fill["quantity"]))
        return {
            "symbol": markets.binance_symbol(native),
            "id": trade_no(fill["trade_id"]),
            "orderId": order_no(native_id),
            "orderListId": -1,
            "price": markets.price(native, price),
            "qty": markets.qty(native, quantity),
            "quoteQty": markets.quote(native, price * quantity),
            "commission": markets.quote(native, Decimal(str(fee or 0))),
            "commissionAsset": fill.get("fee_asset") or asset,
            "time": int(float(fill["timestamp"]) * 1000),
            "isBuyer": side == "buy",
            "isMaker": maker,
            "isBestMatch": True,
        }

    # ------------------------------------------------------------------ anything else

    async def unknown(_request: Request) -> Response:
        return JSONResponse({"code": -1000, "msg": "Unknown endpoint."}, status_code=404)

    methods = ["GET", "POST", "PUT", "DELETE"]
    router.add_api_route("/{path:path}", unknown, methods=methods, include_in_schema=False)
    app.include_router(router)
    # sapi, fapi, api/v1 ...: not served, answered the Binance way (HTTP only; WebSockets pass through)
    app.add_api_route("/binance/{path:path}", unknown, methods=methods, include_in_schema=False)


class _TopOfBook:
    """One book snapshot read beforehand, served to the ticker functions as ``get_snapshot``."""

    __slots__ = ("_book",)

    def __init__(self, book: dict[str, Any]) -> None:
        self._book = book

    def get_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        return self._book
