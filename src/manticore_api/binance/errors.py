"""Binance-style errors: ``{"code": -NNNN, "msg": "..."}`` with Binance's HTTP statuses.

:class:`BinanceError` is what the Binance surface raises; :func:`from_exchange_error` and
:func:`from_auth_error` translate Manticore's own errors (which carry a machine ``code``) into the code a
Binance client expects, so that ccxt raises the same exception class it would against Binance.
"""

from __future__ import annotations

import math

__all__ = ["BinanceError", "from_auth_error", "from_exchange_error"]


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


#: Manticore risk/exchange codes -> (Binance code, message). Messages ccxt matches exactly are Binance's own.
_CODES: dict[str, tuple[int, str]] = {
    "insufficient_balance": (-2010, "Account has insufficient balance for requested action."),
    "unknown_market": (-1121, "Invalid symbol."),
    "max_quantity": (-1013, "Filter failure: LOT_SIZE"),
    "max_notional": (-1013, "Filter failure: NOTIONAL"),
    "max_open_orders": (-2010, "Filter failure: MAX_NUM_ORDERS"),
    "price_band": (-2010, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    "no_liquidity": (-2010, "Order book liquidity is less than LOT_SIZE filter minimum quantity."),
    "unsupported_order": (-1014, "Unsupported order combination."),
    "duplicate_client_order_id": (-2010, "Duplicate order sent."),
    "unavailable": (-1001, "Internal error; unable to process your request. Please try again."),
}


def from_exchange_error(exc: Exception, *, cancelling: bool = False) -> BinanceError:
    """The Binance error for a Manticore :class:`~manticore_matching.ExchangeError` (or a risk
    rejection): unknown orders are -2011 "Unknown order sent." when ``cancelling`` else -2013 "Order does not
    exist."; rate limits -1003 with HTTP 429 and ``Retry-After``; the service being unable to journal -1001
    with 503; anything else not listed -1013 with Manticore's own message (a 400, never a 5xx)."""
    code = str(getattr(exc, "code", "") or "")
    message = str(getattr(exc, "message", "") or exc)
    status = int(getattr(exc, "status", 400) or 400)
    if code == "order_not_found":
        if cancelling:
            return BinanceError(-2011, "Unknown order sent.")
        return BinanceError(-2013, "Order does not exist.")
    if code == "rate_limited" or status == 429:
        retry = getattr(exc, "retry_after", None)
        seconds = max(1, math.ceil(float(retry))) if isinstance(retry, (int, float)) else 1
        return BinanceError(
            -1003, f"Too many requests; {message}".rstrip("; "), status=429, retry_after=seconds
        )
    if code in _CODES:
        binance_code, text = _CODES[code]
        return BinanceError(binance_code, text, status=503 if code == "unavailable" else 400)
    if status >= 500:
        return BinanceError(-1001, "Internal error; unable to process your request. Please try again.", 503)
    if "already used" in message or "duplicate" in message.lower():
        return BinanceError(-2010, "Duplicate order sent.")
    return BinanceError(-1013, message[:200] or "Invalid request.")


def from_auth_error(exc: Exception) -> BinanceError:
    """The Binance error for a Manticore :class:`~manticore_auth.AuthError`."""
    code = str(getattr(exc, "code", ""))
    if code == "bad_signature":
        return BinanceError(-1022, "Signature for this request is not valid.")
    if code == "stale_timestamp":
        return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
    if code == "malformed":
        return BinanceError(-2014, "API-key format invalid.", status=401)
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
