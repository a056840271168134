"""Binance request signing, verified with Manticore API keys.

A SIGNED Binance request carries the key in the ``X-MBX-APIKEY`` header and ``signature`` =
hex HMAC-SHA256(secret, payload) among its parameters, where the payload is the **raw query string
concatenated without separator to the raw body**, minus the ``signature=...`` pair itself. Nothing is
decoded, sorted or re-encoded (ccxt sends parameters in insertion order, python-binance sorts them).
The secret is the user's Manticore API secret, so one key works on both surfaces
(:meth:`manticore_auth.AuthManager.verify_signature`).

Timing, as Binance defines it: ``timestamp`` (ms, or µs when it has 16 digits or more) is accepted when
``timestamp < server_time + 1000`` and ``server_time - timestamp <= recvWindow``; ``recvWindow`` is in ms,
defaults to 5000 and may be at most 60000 (up to three decimals). Identical requests within the window are
accepted (Binance keeps no replay record; Manticore's own surface does).
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from manticore_auth import AuthError, AuthManager, User

from .errors import BinanceError

__all__ = [
    "DEFAULT_RECV_WINDOW",
    "MAX_RECV_WINDOW",
    "check_timestamp",
    "merged_params",
    "split_signature",
    "verify",
]

DEFAULT_RECV_WINDOW = Decimal(5000)
MAX_RECV_WINDOW = Decimal(60000)
_MICROSECONDS = 10**15  # a timestamp this large is in microseconds (ms reach it in year 33658)


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def split_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` (a query string or form body) without its ``signature=`` pair, and that pair's value.

    The other pairs keep their order and bytes: ``"a=1&signature=ab&b=2"`` -> ``("a=1&b=2", "ab")``."""
    if "signature=" not in raw:
        return raw, None
    kept: list[str] = []
    signature: str | None = None
    for pair in raw.split("&"):
        if pair.startswith("signature="):
            signature = pair[len("signature=") :]
        else:
            kept.append(pair)
    return "&".join(kept), signature


def merged_params(query: str, body: str) -> dict[str, str]:
    """The request's parameters from the query string and a form body; the query's value wins when a
    name is in both (Binance's rule). Values are URL-decoded; the ``signature`` pair is included."""
    params = dict(parse_qsl(body, keep_blank_values=True)) if body else {}
    params.update(parse_qsl(query, keep_blank_values=True))
    return params


def check_timestamp(timestamp: object, recv_window: object, now_ms: float | None = None) -> None:
    """Apply Binance's timing rule; BinanceError -1102 (missing/malformed ``timestamp``), -1131 (bad
    ``recvWindow``) or -1021 (outside the window)."""
    if not isinstance(timestamp, str) or not timestamp.isdigit() or len(timestamp) > 20:
        raise _mandatory("timestamp")
    stamp = Decimal(timestamp)
    if stamp >= _MICROSECONDS:
        stamp /= 1000
    window = DEFAULT_RECV_WINDOW
    if recv_window is not None:
        try:
            window = Decimal(str(recv_window))
        except InvalidOperation:
            raise BinanceError(-1131, "recvWindow must be less than 60000") from None
        exponent = window.as_tuple().exponent
        if (
            not window.is_finite()
            or window <= 0
            or window > MAX_RECV_WINDOW
            or (isinstance(exponent, int) and exponent < -3)
        ):
            raise BinanceError(-1131, "recvWindow must be less than 60000")
    now = Decimal(repr(time.time() * 1000 if now_ms is None else now_ms))
    if not (stamp < now + 1000 and now - stamp <= window):
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def verify(
    auth: AuthManager,
    api_key: str | None,
    payload: str,
    signature: str | None,
    timestamp: object,
    recv_window: object,
    now_ms: float | None = None,
) -> User:
    """Check a signed request and return its user.

    Args:
        auth: the key store.
        api_key: the ``X-MBX-APIKEY`` header (or the WS API's ``apiKey`` parameter).
        payload: exactly what was signed (for REST: raw query + raw body without the signature pair).
        signature: the hex signature sent.
        timestamp / recv_window: the ``timestamp`` and ``recvWindow`` parameters as sent (strings).
        now_ms: the server clock (default: now).

    Raises:
        BinanceError: -2014 (missing or malformed key), -1102 (missing signature or timestamp), -1131,
            -1021 (timestamp), -2015 (unknown or revoked key, HTTP 401), -1022 (bad signature).
    """
    if not api_key:
        raise BinanceError(-2014, "API-key format invalid.", status=401)
    if not signature:
        raise _mandatory("signature")
    check_timestamp(timestamp, recv_window, now_ms)
    try:
        return auth.verify_signature(api_key=api_key, message=payload.encode("utf-8"), signature=signature)
    except AuthError as exc:
        if exc.code == "bad_signature" or (exc.code == "malformed" and "signature" in exc.message):
            raise BinanceError(-1022, "Signature for this request is not valid.") from None
        if exc.code == "malformed":
            raise BinanceError(-2014, "API-key format invalid.", status=401) from None
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401) from None
