"""Binance-style errors: ``{"code": -NNNN, "msg": "..."}`` with Binance's HTTP statuses.

:class:`BinanceError` is what the Binance surface raises; :func:`from_exchange_error` and
:func:`from_auth_error` translate Manticore's own errors (which carry a machine ``code``) into the code a
Binance client expects, so that ccxt raises the same exception class it would against Binance.
"""

from __future__ import annotations

__all__ = ["BinanceError"]


class BinanceError(Exception):
    """An error answered as ``{"code": code, "msg": msg}`` with HTTP ``status``.

    Args:
        code: Binance's negative error code (e.g. -1121 invalid symbol).
        msg: the human-readable message (Binance's wording where one exists).
        status: the HTTP status (400 for request errors, 401 for bad keys, 429 rate limited, 503 unavailable).
        retry_after: seconds for a ``Retry-After`` header (rate limits only).
    """

    def __init__(self, code: int, msg: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after = retry_after

    def body(self) -> dict[str, object]:
        """The JSON body Binance answers with."""
        return {"code": self.code, "msg": self.msg}
