"""A Binance-spot-compatible surface over the same exchange service (docs/binance.md).

REST under ``/binance/api/v3`` (:mod:`.rest`), market streams under ``/binance/ws`` and ``/binance/stream``
(:mod:`.streams`) and the WebSocket API under ``/binance/ws-api/v3`` (:mod:`.ws_api`). The surface translates
requests and answers; every rule (risk, rate limits, journal, durability) is the native service's.
"""

from __future__ import annotations

from fastapi import FastAPI

from ..service import ExchangeService
from .errors import BinanceError
from .fill_ledger import FillLedger
from .klines import Klines
from .markets import BinanceMarkets
from .orders import BinanceOrders
from .rest import install_rest
from .streams import install_streams
from .ws_api import install_ws_api

__all__ = ["BinanceError", "BinanceMarkets", "Klines", "mount_binance"]


def mount_binance(app: FastAPI, service: ExchangeService) -> None:
    """Serve the Binance surface of ``service`` on ``app``.

    Call it while creating the app, before the service takes commands: the candles are loaded from
    storage here and follow the exchange from then on. ``app.state.binance_markets`` and
    ``app.state.binance_klines`` hold the shared :class:`BinanceMarkets` and :class:`Klines`, and
    ``app.state.binance_orders`` the :class:`~.orders.BinanceOrders` (order entry for REST and WS API)."""
    history = service.trade_history()
    markets = BinanceMarkets(history.market_source, history.risk_limits())
    klines = Klines(markets)
    ledger = FillLedger()
    history.load(klines, ledger)
    orders = BinanceOrders(service, markets, ledger, history)
    app.state.binance_markets = markets
    app.state.binance_klines = klines
    app.state.binance_orders = orders
    install_rest(app, service, markets, klines, orders)
    install_streams(app, service, markets)
    install_ws_api(app, service, markets)
