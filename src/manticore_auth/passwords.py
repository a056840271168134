"""Password hashing with scrypt (standard library), parameters stored with each hash.

Encoded form: ``scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>`` with a 16-byte random salt and a
32-byte derived key. Verification re-derives with the stored parameters and compares in constant time,
so hashes made with older parameters keep working and can be upgraded on the next successful login.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .errors import AuthConfigError, AuthError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ScryptParams",
    "hash_password",
    "needs_rehash",
    "password_bytes",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
_SALT_BYTES = 16
_KEY_BYTES = 32
# Bounds for parameters read back from the database: a corrupted or hostile row must not make one
# verification take minutes or gigabytes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters: ``n`` (CPU/memory cost, a power of two), ``r`` (block size), ``p``.

    The default (n=2**14, r=8, p=1: 16 MiB and roughly 50 ms per hash) is the usual interactive-login
    setting. Tests may use cheaper ones; production should use the default or stronger.

    Raises:
        AuthConfigError: ``n`` is not a power of two >= 2, or a parameter is out of range.
    """

    n: int = 2**14
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        for name in ("n", "r", "p"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise AuthConfigError(f"scrypt parameter {name} must be an int")
        if self.n < 2 or self.n & (self.n - 1) or self.n > _MAX_N:
            raise AuthConfigError(f"scrypt n must be a power of two between 2 and {_MAX_N}")
        if not 1 <= self.r <= _MAX_R or not 1 <= self.p <= _MAX_P:
            raise AuthConfigError(f"scrypt r must be 1..{_MAX_R} and p 1..{_MAX_P}")

    def encode_prefix(self) -> str:
        """The ``scrypt$n$r$p`` part of an encoded hash."""
        return f"scrypt${self.n}${self.r}${self.p}"


def password_bytes(password: object) -> bytes:
    """UTF-8 bytes of a password that ``set_password`` accepts (8-1024 characters).

    Raises:
        AuthError: ``invalid_argument`` for another type, length, or an unencodable string.
    """
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AuthError(
            "invalid_argument",
            f"password must be a string of {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters",
        )
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise AuthError("invalid_argument", "password is not valid Unicode text") from None


def _derive(secret: bytes, salt: bytes, params: ScryptParams) -> bytes:
    maxmem = 2 * 128 * params.r * (params.n + params.p + 2) + (1 << 20)
    return hashlib.scrypt(
        secret, salt=salt, n=params.n, r=params.r, p=params.p, maxmem=maxmem, dklen=_KEY_BYTES
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(secret: bytes, params: ScryptParams) -> str:
    """The encoded scrypt hash of ``secret`` with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"{params.encode_prefix()}${_b64(salt)}${_b64(_derive(secret, salt, params))}"


def _parse(encoded: str) -> tuple[ScryptParams, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        params = ScryptParams(int(parts[1]), int(parts[2]), int(parts[3]))
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except (ValueError, AuthConfigError, binascii.Error):
        return None
    if not salt or len(expected) != _KEY_BYTES:
        return None
    return params, salt, expected


def verify_password(secret: bytes, encoded: str) -> bool:
    """True if ``secret`` matches the encoded hash; False for a mismatch or an unreadable hash."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    params, salt, expected = parsed
    return hmac.compare_digest(_derive(secret, salt, params), expected)


def needs_rehash(encoded: str, params: ScryptParams) -> bool:
    """True if the hash was made with other parameters than ``params`` (or cannot be read)."""
    parsed = _parse(encoded)
    return parsed is None or parsed[0] != params
