"""The user record, the roles, and validation of the names a caller chooses."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import AuthError

__all__ = ["ROLES", "User", "role_allows", "validate_label", "validate_role", "validate_username"]

#: Roles from least to most privileged; a role includes the permissions of the roles before it.
ROLES: tuple[str, ...] = ("trader", "admin")

_USERNAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_LABEL_LENGTH = 128


@dataclass(frozen=True, slots=True)
class User:
    """A user as stored: an opaque id, a unique username, a role and when it was created.

    ``created_at`` is seconds since the epoch, from the manager's clock. Users carry no credentials.
    """

    user_id: str
    username: str
    role: str
    created_at: float


def validate_username(username: object) -> str:
    """Return ``username`` if it is 1-64 characters of ``[A-Za-z0-9_.-]``; else ``invalid_argument``."""
    if not isinstance(username, str) or _USERNAME.fullmatch(username) is None:
        raise AuthError("invalid_argument", "username must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return username


def validate_role(role: object) -> str:
    """Return ``role`` if it is one of :data:`ROLES`; else ``invalid_argument``."""
    if not isinstance(role, str) or role not in ROLES:
        raise AuthError("invalid_argument", f"role must be one of {', '.join(ROLES)}")
    return role


def validate_label(label: object) -> str:
    """Return ``label`` if it is a string of at most 128 printable characters; else ``invalid_argument``."""
    if not isinstance(label, str) or len(label) > MAX_LABEL_LENGTH or not label.isprintable():
        raise AuthError("invalid_argument", f"label must be at most {MAX_LABEL_LENGTH} printable characters")
    return label


def role_allows(role: str, required: str) -> bool:
    """True if a user with ``role`` may do what needs ``required`` (admin includes trader)."""
    return ROLES.index(role) >= ROLES.index(required)
