"""Orders the Binance way: ids, statuses, types, order and trade objects, and order entry (the fills per
order are kept by :mod:`.fill_ledger`).

Ids. Manticore's exchange names every order ``MC-<n>``; Binance's integer ``orderId`` is that ``n``
(:func:`order_no` / :func:`order_id`), so it is stable across restarts. A trade ``BTCUSD-T<n>`` has the
Binance trade id ``n`` (per market, as on Binance). ``clientOrderId`` is the order's client id (per user) and
``MC-<n>`` for an order placed without one.

Types (Binance -> Manticore, see docs/binance.md for the differences):

==================  ==================================================================================
LIMIT               limit (``icebergQty`` makes it an iceberg showing that much)
MARKET              market; ``quoteOrderQty`` is turned into the base quantity that much quote buys
                    (or sells for) against the book at that moment
LIMIT_MAKER         post_only (refused with -2010 "Order would immediately match and take." if it crosses)
STOP_LOSS           stop_market (a buy stop triggers when a trade prints at or above ``stopPrice``, a sell
                    at or below: Binance's direction)
STOP_LOSS_LIMIT     stop_limit
TAKE_PROFIT         Binance triggers these the other way (a sell when the price *rises* to ``stopPrice``).
TAKE_PROFIT_LIMIT   Manticore's stops trigger only in the stop-loss direction, so a take-profit whose trigger
                    is still ahead rests at once as a post-only limit order: TAKE_PROFIT at ``stopPrice``,
                    TAKE_PROFIT_LIMIT at ``price``. One whose trigger the last trade already reached is
                    refused with -2010 "Order would trigger immediately." (as Binance does).
==================  ==================================================================================

Statuses: open/pending -> NEW, partially_filled -> PARTIALLY_FILLED, filled -> FILLED, cancelled by the user
-> CANCELED, the unfilled rest of an IOC/FOK/market order -> EXPIRED, self-trade prevention ->
EXPIRED_IN_MATCH, a GTD expiry -> EXPIRED.
"""

from __future__ import annotations

import re
import time
import weakref
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool

from manticore_matching import ExchangeError

from ..service import ExchangeService
from .errors import BinanceError, from_exchange_error
from .fill_ledger import FillLedger, decimal_or_zero
from .history import TradeHistory
from .markets import BinanceMarkets

__all__ = [
    "ORDER_TYPES",
    "BinanceOrders",
    "binance_order",
    "cancel",
    "client_id",
    "orders_for",
    "place",
    "binance_status",
    "binance_type",
    "order_id",
    "order_no",
    "trade_no",
]

_PREFIX = "MC-"
_NUMBER = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_SIDES = {"BUY": "buy", "SELL": "sell"}
_TIFS = frozenset({"GTC", "IOC", "FOK"})
_STP_IN = {
    "NONE": "none",
    "EXPIRE_TAKER": "cancel_newest",
    "EXPIRE_MAKER": "cancel_oldest",
    "EXPIRE_BOTH": "cancel_both",
    "DECREMENT": "decrement",
}
_STP_OUT = {value: key for key, value in _STP_IN.items()}
_TYPES_OUT = {
    "LIMIT": "LIMIT",
    "MARKET": "MARKET",
    "POST_ONLY": "LIMIT_MAKER",
    "ICEBERG": "LIMIT",
    "STOP_LIMIT": "STOP_LOSS_LIMIT",
    "STOP_MARKET": "STOP_LOSS",
    "TRAILING_STOP": "STOP_LOSS",
}
#: Every order type this surface accepts (exchangeInfo's ``orderTypes``).
ORDER_TYPES = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
_EXPIRING_REASONS = frozenset({"ioc", "fok", "post_only", "market", "expired"})


# ---------------------------------------------------------------------- ids


def order_no(native_id: object) -> int:
    """``"MC-17"`` -> 17 (the exchange names every order so); -1 for anything else."""
    if isinstance(native_id, str) and native_id.startswith(_PREFIX) and native_id[3:].isdigit():
        return int(native_id[3:])
    return -1


def order_id(number: int) -> str:
    """17 -> ``"MC-17"``."""
    return f"{_PREFIX}{number}"


def trade_no(trade_id: object) -> int:
    """``"BTCUSD-T17"`` -> 17 (the number after the last ``T``); -1 if there is none."""
    text = str(trade_id)
    tail = text.rsplit("T", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def client_id(order: dict[str, Any]) -> str:
    """The order's client id, else its exchange id."""
    value = order.get("client_order_id")
    return str(value) if value else str(order.get("order_id", ""))


def _ms(seconds: object) -> int:
    return int(float(seconds) * 1000) if isinstance(seconds, (int, float)) else 0


# ---------------------------------------------------------------------- statuses and types


def binance_status(order: dict[str, Any]) -> str:
    """The Binance status of a Manticore order dict (see the module docstring)."""
    status = str(order.get("status", "")).lower()
    if status in ("open", "pending"):
        return "PARTIALLY_FILLED" if decimal_or_zero(order.get("filled_quantity")) > 0 else "NEW"
    if status == "partially_filled":
        return "PARTIALLY_FILLED"
    if status == "filled":
        return "FILLED"
    if status == "expired":
        return "EXPIRED"
    if status == "cancelled":
        reason = order.get("reason") or order.get("cancel_reason")
        if reason == "self_trade_prevention":
            return "EXPIRED_IN_MATCH"
        if reason in _EXPIRING_REASONS:
            return "EXPIRED"
        return "CANCELED"
    return status.upper() or "NEW"


def binance_type(order: dict[str, Any]) -> str:
    """The Binance type of a Manticore order dict (take-profits placed here show as LIMIT_MAKER later)."""
    return _TYPES_OUT.get(str(order.get("order_type", "LIMIT")).upper(), "LIMIT")


# ---------------------------------------------------------------------- new orders


@dataclass
class NewOrder:
    """A validated Binance new-order request, in Manticore's terms."""

    symbol: str
    side: str
    binance_type: str
    order_type: str
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str | None = None
    displayed: Decimal | None = None
    client_order_id: str | None = None
    stp: str | None = None
    response_type: str = "FULL"
    quote_order_qty: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _number(params: dict[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _NUMBER.match(raw):
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return Decimal(raw)


def _not_allowed(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


class BinanceOrders:
    """Order entry and order views for one service (shared by REST and the WebSocket API)."""

    def __init__(
        self, service: ExchangeService, markets: BinanceMarkets, ledger: FillLedger, history: TradeHistory
    ) -> None:
        self.service = service
        self.trade_history = history
        self.exchange = service.exchange
        self.markets = markets
        self.ledger = ledger
        self.placed = 0
        _REGISTRY[markets] = self

    # ------------------------------------------------------------------ parsing

    def parse(self, params: dict[str, str]) -> NewOrder:
        """Validate a new-order request (Binance names and values); BinanceError on the first problem."""
        for name in ("symbol", "side", "type"):
            if not params.get(name):
                raise _mandatory(name)
        native = self.markets.native(params["symbol"])
        side = _SIDES.get(params["side"].upper())
        if side is None:
            raise BinanceError(-1117, "Invalid side.")
        kind = params["type"].upper()
        if kind not in ORDER_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        quantity = _number(params, "quantity")
        quote_qty = _number(params, "quoteOrderQty")
        price = _number(params, "price")
        stop = _number(params, "stopPrice")
        iceberg = _number(params, "icebergQty")
        tif = params.get("timeInForce") or None
        if tif is not None:
            tif = tif.upper()
            if tif not in _TIFS:
                raise BinanceError(-1115, "Invalid timeInForce.")
        if params.get("trailingDelta"):
            raise BinanceError(-1014, "Unsupported order combination.")
        response_type = (params.get("newOrderRespType") or "").upper()
        if response_type and response_type not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")
        if not response_type:
            response_type = "FULL" if kind in ("LIMIT", "MARKET") else "ACK"
        stp_mode = params.get("selfTradePreventionMode")
        stp = None
        if stp_mode:
            stp = _STP_IN.get(stp_mode.upper())
            if stp is None:
                raise BinanceError(-1130, "Data sent for parameter 'selfTradePreventionMode' is not valid.")
        client = params.get("newClientOrderId") or None
        if client is not None and not _CLIENT_ID.match(client):
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range "
                "is '^[a-zA-Z0-9-_.:]{1,64}$'.",
            )
        needs_price = kind in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
        needs_stop = kind in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
        needs_tif = kind in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
        if needs_price and price is None:
            raise _mandatory("price")
        if not needs_price and price is not None:
            raise _not_allowed("price")
        if needs_stop and stop is None:
            raise _mandatory("stopPrice")
        if not needs_stop and stop is not None:
            raise _not_allowed("stopPrice")
        if needs_tif and tif is None:
            raise _mandatory("timeInForce")
        if not needs_tif and tif is not None and kind != "MARKET":
            raise _not_allowed("timeInForce")
        if kind == "MARKET":
            if (quantity is None) == (quote_qty is None):
                raise BinanceError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                )
        elif quantity is None:
            raise _mandatory("quantity")
        elif quote_qty is not None:
            raise _not_allowed("quoteOrderQty")
        if iceberg is not None and kind not in ("LIMIT", "LIMIT_MAKER"):
            raise BinanceError(-1014, "Unsupported order combination.")
        config = self.markets.config(native)
        for value in (price, stop):
            if value is not None and (value <= 0 or value % config.tick_size != 0):
                raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
        for value in (quantity, iceberg):
            if value is not None and (value <= 0 or value % config.lot_size != 0):
                raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        if iceberg is not None and quantity is not None and iceberg >= quantity:
            raise BinanceError(-2010, "Iceberg quantity must be less than the order quantity.")
        order = NewOrder(
            symbol=native,
            side=side,
            binance_type=kind,
            order_type="limit",
            quantity=quantity if quantity is not None else Decimal(0),
            client_order_id=client,
            stp=stp,
            response_type=response_type,
            quote_order_qty=quote_qty,
        )
        if kind == "LIMIT":
            order.price, order.time_in_force = price, tif
            if iceberg is not None:
                if tif != "GTC":
                    raise BinanceError(-2010, "Iceberg orders must be GTC.")
                order.order_type, order.displayed = "iceberg", iceberg
        elif kind == "LIMIT_MAKER":
            if iceberg is not None:
                raise BinanceError(-1014, "Unsupported order combination.")
            order.order_type, order.price = "post_only", price
        elif kind == "MARKET":
            order.order_type = "market"
        elif kind == "STOP_LOSS":
            order.order_type, order.stop_price = "stop_market", stop
        elif kind == "STOP_LOSS_LIMIT":
            order.order_type, order.price, order.stop_price, order.time_in_force = (
                "stop_limit",
                price,
                stop,
                tif,
            )
        else:  # TAKE_PROFIT / TAKE_PROFIT_LIMIT: a post-only limit while the trigger is ahead
            if tif not in (None, "GTC"):
                raise BinanceError(-1014, "Unsupported order combination.")
            order.order_type, order.stop_price = "post_only", stop
            order.price = stop if kind == "TAKE_PROFIT" else price
        return order

    # ------------------------------------------------------------------ placing

    async def _take_profit_check(self, order: NewOrder) -> None:
        trades = await self.service.reads.recent_trades(order.symbol, 1)
        if not trades or order.stop_price is None:
            return
        last = Decimal(str(trades[0]["price"]))
        reached = last >= order.stop_price if order.side == "sell" else last <= order.stop_price
        if reached:
            raise BinanceError(-2010, "Order would trigger immediately.")

    async def _quote_quantity(self, order: NewOrder) -> Decimal:
        """The base quantity that ``quoteOrderQty`` buys (or sells for) against the book now."""
        assert order.quote_order_qty is not None
        config = self.markets.config(order.symbol)
        book = await self.service.reads.get_snapshot(order.symbol, None)
        levels = book["asks"] if order.side == "buy" else book["bids"]
        if not levels:
            raise BinanceError(-2010, "Order book liquidity is less than LOT_SIZE filter minimum quantity.")
        budget = order.quote_order_qty
        quantity = Decimal(0)
        for level in levels:
            price = Decimal(str(level["price"]))
            available = Decimal(str(level["quantity"]))
            affordable = (budget / price / config.lot_size).to_integral_value(ROUND_DOWN) * config.lot_size
            take = min(available, affordable)
            quantity += take
            budget -= take * price
            if take < available:
                break
        if quantity <= 0:
            raise BinanceError(-1013, "Filter failure: NOTIONAL")
        return quantity

    async def place(self, user_id: str, params: dict[str, str], *, test: bool = False) -> dict[str, Any]:
        """Place a Binance new-order request for ``user_id``; answered once durable, in the
        ``newOrderRespType`` shape. ``test`` validates only (``order/test``) and answers ``{}``."""
        order = self.parse(params)
        if test:
            return {}
        if order.binance_type in ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
            await self._take_profit_check(order)
        if order.quote_order_qty is not None:
            order.quantity = await self._quote_quantity(order)
        try:
            receipt = self.exchange.place_order(
                user_id,
                order.symbol,
                order.side,
                str(order.quantity),
                price=None if order.price is None else str(order.price),
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                stop_price=(
                    None
                    if order.stop_price is None or order.order_type == "post_only"
                    else str(order.stop_price)
                ),
                displayed_quantity=None if order.displayed is None else str(order.displayed),
                self_trade_prevention=order.stp,
                client_order_id=order.client_order_id,
            )
        except ExchangeError as exc:
            raise from_exchange_error(exc) from None
        await self._durable(receipt.position)
        self.placed += 1
        state = dict(receipt.order or {})
        state.setdefault("order_id", receipt.order_id)
        if order.order_type == "post_only" and state.get("reason") == "post_only":
            if order.binance_type == "LIMIT_MAKER":
                raise BinanceError(-2010, "Order would immediately match and take.")
            raise BinanceError(-2010, "Order would trigger immediately.")
        return self.new_order_response(state, order)

    async def _durable(self, position: int, *, cancelling: bool = False) -> None:
        # A gateway's exchange raises a command's refusal here, not at the call (see GatewayService).
        try:
            await self.service.durable(position)
        except ExchangeError as exc:
            raise from_exchange_error(exc, cancelling=cancelling) from None

    def new_order_response(self, state: dict[str, Any], order: NewOrder) -> dict[str, Any]:
        """The answer to a new order in ``order.response_type`` (ACK, RESULT or FULL)."""
        native = order.symbol
        markets = self.markets
        oid = str(state["order_id"])
        now_ms = _ms(state.get("timestamp")) or int(time.time() * 1000)
        answer: dict[str, Any] = {
            "symbol": markets.binance_symbol(native),
            "orderId": order_no(oid),
            "orderListId": -1,
            "clientOrderId": client_id(state),
            "transactTime": now_ms,
        }
        if order.response_type == "ACK":
            return answer
        view = self.order_view(state, binance_type=order.binance_type, stop_price=order.stop_price)
        for key in ("symbol", "orderId", "orderListId", "clientOrderId", "time", "updateTime", "isWorking"):
            view.pop(key, None)
        answer.update(view)
        if order.quote_order_qty is not None:
            answer["origQuoteOrderQty"] = markets.quote(native, order.quote_order_qty)
        if order.response_type == "FULL":
            asset = markets.config(native).quote_asset
            answer["fills"] = [
                {
                    "price": markets.price(native, fill.price),
                    "qty": markets.qty(native, fill.quantity),
                    "commission": markets.quote(native, fill.fee),
                    "commissionAsset": asset,
                    "tradeId": trade_no(fill.trade_id),
                }
                for fill in self.ledger.fills(oid)
            ]
        return answer

    # ------------------------------------------------------------------ views

    def order_view(
        self,
        state: dict[str, Any],
        *,
        binance_type: str | None = None,
        stop_price: Decimal | None = None,
    ) -> dict[str, Any]:
        """The Binance order object (``GET /api/v3/order``) of a Manticore order dict."""
        native = str(state["symbol"])
        markets = self.markets
        oid = str(state["order_id"])
        created = _ms(state.get("order_timestamp") or state.get("timestamp"))
        updated = _ms(state.get("timestamp")) or created
        kind = binance_type or binance_type_of(state)
        price = state.get("price")
        stop = stop_price if stop_price is not None else state.get("stop_price")
        displayed = (
            state.get("displayed_quantity") if str(state.get("order_type", "")).upper() == "ICEBERG" else None
        )
        pending = str(state.get("status", "")).lower() == "pending"
        stp = _STP_OUT.get(str(state.get("self_trade_prevention") or "none"), "NONE")
        tif = state.get("time_in_force") or "GTC"
        return {
            "symbol": markets.binance_symbol(native),
            "orderId": order_no(oid),
            "orderListId": -1,
            "clientOrderId": client_id(state),
            "price": markets.price(native, decimal_or_zero(price)),
            "origQty": markets.qty(native, decimal_or_zero(state.get("quantity"))),
            "executedQty": markets.qty(native, decimal_or_zero(state.get("filled_quantity"))),
            "cummulativeQuoteQty": markets.quote(native, self.ledger.quote(oid)),
            "status": binance_status(state),
            "timeInForce": str(tif).upper() if str(tif).upper() in _TIFS else "GTC",
            "type": kind,
            "side": str(state.get("side", "")).upper(),
            "stopPrice": markets.price(native, decimal_or_zero(stop)),
            "icebergQty": markets.qty(native, decimal_or_zero(displayed)),
            "time": created,
            "updateTime": updated,
            "isWorking": not pending,
            "workingTime": updated if pending else created,
            "origQuoteOrderQty": markets.quote(native, 0),
            "selfTradePreventionMode": stp,
        }

    def cancel_view(self, state: dict[str, Any], cancel_client_id: str) -> dict[str, Any]:
        """The answer to a cancel: the order object plus ``origClientOrderId`` and ``transactTime``;
        ``clientOrderId`` is the cancel request's own id, as on Binance."""
        view = self.order_view(state)
        answer: dict[str, Any] = {
            "symbol": view["symbol"],
            "origClientOrderId": view["clientOrderId"],
            "orderId": view["orderId"],
            "orderListId": -1,
            "clientOrderId": cancel_client_id,
            "transactTime": view["updateTime"],
        }
        for key in (
            "price",
            "origQty",
            "executedQty",
            "cummulativeQuoteQty",
            "status",
            "timeInForce",
            "type",
            "side",
            "stopPrice",
            "icebergQty",
            "origQuoteOrderQty",
            "selfTradePreventionMode",
        ):
            answer[key] = view[key]
        return answer

    # ------------------------------------------------------------------ lookups and cancels

    async def find(
        self, user_id: str, native: str, params: dict[str, str], *, cancelling: bool = False
    ) -> dict[str, Any]:
        """The caller's order named by ``orderId`` or ``origClientOrderId`` in market ``native``;
        BinanceError -2013 (-2011 when ``cancelling``) if there is none."""
        missing = (
            BinanceError(-2011, "Unknown order sent.")
            if cancelling
            else BinanceError(-2013, "Order does not exist.")
        )
        number = params.get("orderId")
        original = params.get("origClientOrderId")
        if not number and not original:
            raise BinanceError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        state: dict[str, Any] | None = None
        if number:
            if not number.isdigit() or len(number) > 19:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'orderId'; legal range is '^[0-9]{1,20}$'."
                )
            state = await self.service.reads.get_order(user_id, order_id(int(number)))
            if state is not None and original and client_id(state) != original:
                state = None
        else:
            assert original is not None
            if not _CLIENT_ID.match(original):
                raise missing
            state = await self.service.reads.get_order_by_client_id(user_id, original)
        if state is None or state.get("symbol") != native:
            raise missing
        return state

    async def cancel(self, user_id: str, params: dict[str, str]) -> dict[str, Any]:
        """Cancel one of the caller's orders (``DELETE /api/v3/order``); answered once durable."""
        if not params.get("symbol"):
            raise _mandatory("symbol")
        native = self.markets.native(params["symbol"])
        state = await self.find(user_id, native, params, cancelling=True)
        receipt = self._cancel(user_id, str(state["order_id"]))
        await self._durable(receipt.position, cancelling=True)
        final = {**state, **(receipt.order or {})}
        return self.cancel_view(final, params.get("newClientOrderId") or _cancel_id())

    def _cancel(self, user_id: str, native_id: str) -> Any:
        try:
            return self.exchange.cancel_order(user_id, native_id)
        except ExchangeError as exc:
            raise from_exchange_error(exc, cancelling=True) from None

    async def cancel_all(self, user_id: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Cancel every live order of the caller in ``symbol`` (``DELETE /api/v3/openOrders``);
        -2011 when there is none, as on Binance."""
        if not params.get("symbol"):
            raise _mandatory("symbol")
        native = self.markets.native(params["symbol"])
        live = await self.service.reads.open_orders(user_id, native)
        if not live:
            raise BinanceError(-2011, "Unknown order sent.")
        answers = []
        last = 0
        for state in live:
            receipt = self._cancel(user_id, str(state["order_id"]))
            last = max(last, receipt.position)
            answers.append(self.cancel_view({**state, **(receipt.order or {})}, _cancel_id()))
        await self._durable(last, cancelling=True)
        return answers

    async def history(self, user_id: str, native: str) -> list[dict[str, Any]]:
        """The caller's orders in ``native`` of every status, oldest first (storage made current first)."""
        await self.flush_storage()
        orders = await run_in_threadpool(self.exchange.order_history, user_id, native, 1000)
        orders.reverse()
        return orders

    async def flush_storage(self) -> None:
        """Wait until storage holds everything durable (the lists below read storage)."""
        await self.trade_history.flush()


_REGISTRY: weakref.WeakKeyDictionary[BinanceMarkets, BinanceOrders] = weakref.WeakKeyDictionary()


def orders_for(markets: BinanceMarkets) -> BinanceOrders:
    """The :class:`BinanceOrders` serving ``markets`` (made by ``mount_binance``)."""
    return _REGISTRY[markets]


async def place(
    service: ExchangeService, markets: BinanceMarkets, user_id: str, params: dict[str, str]
) -> dict[str, Any]:
    """:meth:`BinanceOrders.place` of the surface serving ``markets`` (for the WebSocket API)."""
    return await orders_for(markets).place(user_id, params)


async def cancel(
    service: ExchangeService, markets: BinanceMarkets, user_id: str, params: dict[str, str]
) -> dict[str, Any]:
    """:meth:`BinanceOrders.cancel` of the surface serving ``markets`` (for the WebSocket API)."""
    return await orders_for(markets).cancel(user_id, params)


def binance_order(markets: BinanceMarkets, order: dict[str, Any]) -> dict[str, Any]:
    """The Binance order object of a Manticore order dict (:meth:`BinanceOrders.order_view`)."""
    return orders_for(markets).order_view(order)


def binance_type_of(state: dict[str, Any]) -> str:
    """Alias of :func:`binance_type` (kept short for the views)."""
    return binance_type(state)


def _cancel_id() -> str:
    return f"cancel-{time.time_ns():x}"
