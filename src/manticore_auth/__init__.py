"""manticore_auth: users, API keys, HMAC-SHA256 signed requests, password sessions and roles.

The server creates one :class:`AuthManager` over its database and master key; clients sign requests
with :func:`sign_request`. See docs/auth.md for the signing scheme and how secrets are stored.
"""

from .errors import AUTH_ERROR_STATUS, AuthConfigError, AuthError
from .manager import AuthManager
from .masterkey import load_or_create_master_key
from .models import ROLES, User
from .passwords import ScryptParams
from .signing import current_timestamp, sign_request

__all__ = [
    "AUTH_ERROR_STATUS",
    "ROLES",
    "AuthConfigError",
    "AuthError",
    "AuthManager",
    "ScryptParams",
    "User",
    "current_timestamp",
    "load_or_create_master_key",
    "sign_request",
]
