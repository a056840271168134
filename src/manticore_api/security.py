"""Who is calling: signed API-key requests, session tokens, and the loopback-only open mode.

A request proves its user in one of two ways:

- API key: headers ``X-MC-APIKEY``, ``X-MC-TIMESTAMP`` (integer milliseconds since the epoch) and
  ``X-MC-SIGNATURE`` = hex HMAC-SHA256 of ``timestamp + METHOD + path(?query) + body`` under the key's
  secret (:func:`manticore_auth.sign_request` computes it);
- session: ``Authorization: Bearer <token>`` from ``POST /api/session`` (the web page uses this).

With ``require_auth`` off (only allowed on a loopback address) a request without credentials acts as
the user named by the ``X-MC-User`` header (default ``local``) with admin rights.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request

from manticore_auth import AuthError

__all__ = ["KEY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Caller", "authenticate", "is_loopback"]

KEY_HEADER = "X-MC-APIKEY"
TIMESTAMP_HEADER = "X-MC-TIMESTAMP"
SIGNATURE_HEADER = "X-MC-SIGNATURE"
USER_HEADER = "X-MC-User"


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request."""

    user_id: str
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# A path or query made only of these characters is the same in ``request.url`` as in the ASGI scope
# (no character that the URL parsing would escape, split on or strip).
_PLAIN = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")


#: Signed paths of plain (path, query string) pairs already seen: the same few on the hot path.
_SIGNED_PATHS: dict[tuple[str, bytes], str] = {}
_MAX_SIGNED_PATHS = 1024


def signed_path(request: Request) -> str:
    """The path as signed: path plus ``?query`` when there is one (as ``request.url`` gives them;
    read straight from the ASGI scope when that is the same, which saves building the URL)."""
    scope = request.scope
    raw_query: bytes = scope.get("query_string", b"")
    seen = (scope["path"], raw_query)
    known = _SIGNED_PATHS.get(seen)
    if known is not None:
        return known
    path: str = scope["path"]
    query = raw_query.decode("latin-1")
    if _PLAIN.fullmatch(path) and _PLAIN.fullmatch(query) and not path.startswith("//"):
        signed = path + ("?" + query if query else "")
        if len(_SIGNED_PATHS) >= _MAX_SIGNED_PATHS:
            _SIGNED_PATHS.clear()
        _SIGNED_PATHS[seen] = signed  # a function of (path, query) alone: the same for every request
        return signed
    url = request.url
    return url.path + ("?" + url.query if url.query else "")


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The request's headers by lower-case name, the first of repeated ones winning (as
    ``request.headers.get``), without building Starlette's Headers."""
    if type(raw) is not list:
        raw = list(raw)
    headers = dict(raw)  # the last of a repeated name wins here: redone below when a name repeats
    if len(headers) != len(raw):
        headers = {}
        for name, value in raw:
            if name not in headers:
                headers[name] = value
    return headers


_KEY = KEY_HEADER.lower().encode()
_TIMESTAMP = TIMESTAMP_HEADER.lower().encode()
_SIGNATURE = SIGNATURE_HEADER.lower().encode()
_USER = USER_HEADER.lower().encode()


#: Callers by (user_id, username, role): one immutable Caller per user instead of one per request.
_CALLERS: dict[tuple[str, str, str], Caller] = {}
_MAX_CALLERS = 10_000


def _caller(user_id: str, username: str, role: str) -> Caller:
    key = (user_id, username, role)
    caller = _CALLERS.get(key)
    if caller is None:
        if len(_CALLERS) >= _MAX_CALLERS:
            _CALLERS.clear()
        caller = _CALLERS[key] = Caller(user_id, username, role)
    return caller


async def authenticate(request: Request) -> Caller:
    """The caller of ``request``; raises AuthError (401) without valid credentials."""
    scope = request.scope
    app = scope["app"]
    service = getattr(app, "exchange_service", None)  # see routes.deps.service_of
    if service is None:
        service = app.state.service
    headers = _headers(scope["headers"])
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("malformed", "Authorization must be 'Bearer <session token>'")
        user = service.auth.authenticate_session(token.strip())
        return _caller(user.user_id, user.username, user.role)
    api_key = headers.get(_KEY)
    if api_key is not None:
        timestamp = headers.get(_TIMESTAMP)
        signature = headers.get(_SIGNATURE)
        # The order routes read the body before authenticating: Starlette keeps it as ``_body``.
        body = request.__dict__.get("_body")
        if body is None:
            body = await request.body()
        user = service.auth.authenticate_request(
            api_key=api_key.decode("latin-1"),
            timestamp=None if timestamp is None else timestamp.decode("latin-1"),
            signature=None if signature is None else signature.decode("latin-1"),
            method=scope["method"],
            path=signed_path(request),
            body=body,
        )
        return _caller(user.user_id, user.username, user.role)
    if not service.require_auth:
        user_name = headers.get(_USER)
        name = "local" if not user_name else user_name.decode("latin-1")
        return _caller(name[:128], name[:128], "admin")
    raise AuthError("missing_credentials", "send an API key signature or a session token")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (name or address) only listens on the local machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
