"""The two exception types of manticore_auth and the machine-readable error codes.

:class:`AuthError` is what a caller (a client, an operator) did wrong: it carries a stable ``code`` and
the HTTP ``status`` a server should answer with. :class:`AuthConfigError` is what the server's own set-up
got wrong (a bad master key, a key file readable by others); a server should answer 500 and log it.
Messages never contain a secret, a password, a token or a signature.
"""

from __future__ import annotations

__all__ = ["AUTH_ERROR_STATUS", "AuthConfigError", "AuthError"]

#: Every ``AuthError.code`` and the HTTP status that goes with it.
AUTH_ERROR_STATUS: dict[str, int] = {
    # Signed requests (authenticate_request).
    "missing_credentials": 401,
    "malformed": 401,
    "unknown_key": 401,
    "revoked_key": 401,
    "bad_signature": 401,
    "stale_timestamp": 401,
    "replayed": 401,
    # Passwords and sessions (login, authenticate_session).
    "bad_credentials": 401,
    "bad_session": 401,
    "expired_session": 401,
    # Permissions (require_role).
    "forbidden": 403,
    # Management calls (create_user, create_api_key, set_password ...).
    "invalid_argument": 400,
    "unknown_user": 404,
    "user_exists": 409,
}


class AuthError(Exception):
    """An authentication, permission or management request was refused.

    Attributes:
        code: one of the keys of :data:`AUTH_ERROR_STATUS` (stable, for programs).
        status: the HTTP status that goes with ``code`` (401, 403, 400, 404 or 409).
        message: a human-readable explanation that never contains secret material.
    """

    def __init__(self, code: str, message: str = "") -> None:
        if code not in AUTH_ERROR_STATUS:
            raise ValueError(f"unknown AuthError code {code!r}")
        self.code = code
        self.status = AUTH_ERROR_STATUS[code]
        self.message = message or code.replace("_", " ")
        super().__init__(f"{code}: {self.message}")

    def __repr__(self) -> str:
        return f"AuthError(code={self.code!r}, status={self.status}, message={self.message!r})"

    def __reduce__(self) -> tuple[type[AuthError], tuple[str, str]]:
        return (type(self), (self.code, self.message))


class AuthConfigError(Exception):
    """The server's auth configuration is unusable (master key, key file, arguments of ``AuthManager``)."""
