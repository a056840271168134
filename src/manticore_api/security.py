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


def signed_path(request: Request) -> str:
    """The path as signed: path plus ``?query`` when there is one."""
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


async def authenticate(request: Request) -> Caller:
    """The caller of ``request``; raises AuthError (401) without valid credentials."""
    service = request.app.state.service
    auth = service.auth
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("malformed", "Authorization must be 'Bearer <session token>'")
        user = auth.authenticate_session(token.strip())
        return Caller(user.user_id, user.username, user.role)
    api_key = request.headers.get(KEY_HEADER)
    if api_key is not None:
        body = await request.body()
        user = auth.authenticate_request(
            api_key=api_key,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            method=request.method,
            path=signed_path(request),
            body=body,
        )
        return Caller(user.user_id, user.username, user.role)
    if not service.require_auth:
        name = request.headers.get(USER_HEADER) or "local"
        return Caller(name[:128], name[:128], "admin")
    raise AuthError("missing_credentials", "send an API key signature or a session token")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (name or address) only listens on the local machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
