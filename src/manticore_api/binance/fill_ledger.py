"""Executed quote and recent fills per order, for the Binance views of orders (``cummulativeQuoteQty``,
``fills``). Kept current from the exchange's durable ``fill`` messages."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from manticore_matching.feed import fee_text
from manticore_storage import schema

__all__ = ["Fill", "FillLedger", "decimal_or_zero"]


def decimal_or_zero(value: object) -> Decimal:
    """``value`` as a Decimal; 0 for None or anything that is not a number."""
    if value is None:
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


@dataclass(slots=True)
class Fill:
    """One fill of an order, from its owner's side (price, quantity and fee in the market's units)."""

    trade_id: str
    price: Decimal
    quantity: Decimal
    fee: Decimal


class FillLedger:
    """Executed quantity and quote (``cummulativeQuoteQty``) of every order, and the fills of recent ones.

    Loaded from the stored trades at start (:meth:`load`) and kept current from the exchange's durable
    ``fill`` messages (:meth:`on_messages`, a gateway's listener) or fill records (:meth:`on_fills`, the
    embedded exchange's fill listener), on the journal thread; either runs before the service releases
    the commands' waiters, so an answered order's fills are here. Thread-safe."""

    def __init__(self, keep_fills_of: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._quote: dict[str, Decimal] = {}
        self._fills: OrderedDict[str, list[Fill]] = OrderedDict()
        self._keep = keep_fills_of

    def load(self, storage: Any) -> None:
        """Add every stored trade to its maker's and taker's totals (call before following live fills)."""
        if storage is None:
            return
        trades = schema.trades
        query = select(trades.c.maker_order_id, trades.c.taker_order_id, trades.c.price, trades.c.quantity)
        with storage.engine.connect() as connection:
            for maker, taker, price, quantity in connection.execution_options(yield_per=5000).execute(query):
                self.add_trade(maker, taker, price, quantity)

    def add_trade(self, maker: str | None, taker: str | None, price: object, quantity: object) -> None:
        """Add one stored trade (its maker and taker order ids) to both orders' executed quote."""
        notional = Decimal(str(price)) * Decimal(str(quantity))
        with self._lock:
            for oid in (maker, taker):
                if oid is not None:
                    self._quote[oid] = self._quote.get(oid, Decimal(0)) + notional

    def on_messages(self, batch: Iterable[dict[str, Any]]) -> None:
        """Record the ``fill`` messages of one durable command (the owner's view of each fill: this fill's
        ``price`` and ``quantity``, its ``fee``, ``trade_id`` and ``order_id``)."""
        for message in batch:
            if message.get("type") != "fill":
                continue
            oid = str(message["order_id"])
            price, quantity = Decimal(str(message["price"])), Decimal(str(message["quantity"]))
            fill = Fill(str(message.get("trade_id")), price, quantity, decimal_or_zero(message.get("fee")))
            self._add(oid, fill)

    def on_fills(self, records: Iterable[tuple[Any, ...]]) -> None:
        """Record the fill records of one durable round (an exchange fill listener on the journal
        thread: :meth:`~manticore_matching.Exchange.add_fill_listener`, ``(user_id, order_id,
        trade_id, price, quantity, fee)`` each). The same as :meth:`on_messages` of those fills'
        ``fill`` messages (a fill without an owner has none: it is skipped)."""
        for user_id, order_id, trade_id, price_text, quantity_text, fee in records:
            if user_id is None:
                continue
            oid = str(order_id)
            price, quantity = Decimal(str(price_text)), Decimal(str(quantity_text))
            fill = Fill(str(trade_id), price, quantity, decimal_or_zero(fee_text(fee)))
            self._add(oid, fill)

    def _add(self, oid: str, fill: Fill) -> None:
        """Add ``fill`` to order ``oid``'s quote and fills (forgetting the oldest order's fills beyond
        the bound)."""
        with self._lock:
            self._quote[oid] = self._quote.get(oid, Decimal(0)) + fill.price * fill.quantity
            fills = self._fills.get(oid)
            if fills is None:
                fills = self._fills[oid] = []
                if len(self._fills) > self._keep:
                    self._fills.popitem(last=False)
            fills.append(fill)

    def quote(self, native_id: str) -> Decimal:
        """The quote amount the order has executed (price x quantity summed over its fills)."""
        with self._lock:
            return self._quote.get(native_id, Decimal(0))

    def fills(self, native_id: str) -> list[Fill]:
        """The fills of a recent order, oldest first."""
        with self._lock:
            return list(self._fills.get(native_id, ()))
