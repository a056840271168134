"""The API's routes, one module per area, each an ``APIRouter`` whose routes ``create_app`` adds:

- :mod:`.orders`: place, read, modify and cancel orders (``/api/orders...``);
- :mod:`.market_data`: books, markets and trades (public);
- :mod:`.account`: the caller's fills, balances, API keys and session;
- :mod:`.admin`: deposits, withdrawals, markets and users (admin role);
- :mod:`.operations`: health and Prometheus metrics;
- :mod:`.stream`: the WebSocket stream ``/ws``;
- :mod:`.page`: the web page, its static files and the local Swagger UI.

Handlers reach the service through :mod:`.deps` (``request.app.state``); errors are answered by the
handlers of :mod:`.errors`.
"""
