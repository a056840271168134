"""manticore_api: the exchange server - REST + WebSocket API, web page, and the ``manticore`` CLI."""

from .app import create_app
from .service import ExchangeService

__all__ = ["ExchangeService", "create_app"]
