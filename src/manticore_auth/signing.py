"""Request signatures: the canonical signed message, its parts' validation, and the client helper.

A request is signed with HMAC-SHA256 keyed by the API secret (its UTF-8 bytes) over::

    f"{timestamp}{METHOD}{path}".encode("utf-8") + body

``timestamp`` is integer milliseconds since the epoch written in decimal digits (the exact string the
client sends), ``METHOD`` the upper-cased HTTP method, ``path`` the request path *with* its query string
exactly as sent (e.g. ``/api/orders?symbol=BTC%2FUSD``), and ``body`` the raw request body (empty for
none). The signature is the 64-character hex digest. The parts cannot run into each other: a timestamp is
digits, a method letters, and a path starts with ``/``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Protocol

try:  # OpenSSL's HMAC object, whose copy/update/digest are C methods
    from _hashlib import hmac_new as _openssl_hmac
except ImportError:  # pragma: no cover - CPython without OpenSSL
    _openssl_hmac = None  # type: ignore[assignment]

from .errors import AuthError

__all__ = [
    "MAX_API_KEY_LENGTH",
    "MAX_PATH_LENGTH",
    "MAX_TIMESTAMP_DIGITS",
    "PLAIN_METHODS",
    "Mac",
    "canonical_api_key",
    "canonical_method",
    "canonical_path",
    "canonical_signature",
    "canonical_timestamp",
    "current_timestamp",
    "digest_of",
    "mac_for_secret",
    "request_body",
    "sign_request",
    "signature_digest",
    "signature_of",
    "signing_message",
]

MAX_API_KEY_LENGTH = 128
MAX_PATH_LENGTH = 8192
MAX_TIMESTAMP_DIGITS = 16
_API_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_METHOD = re.compile(r"[A-Za-z]{1,16}")
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Methods that are their own canonical form (checked by a set look-up instead of the pattern).
PLAIN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _malformed(what: str) -> AuthError:
    return AuthError("malformed", what)


def canonical_api_key(api_key: object) -> str:
    """The API key if it is 1-128 characters of ``[A-Za-z0-9_-]``; else ``malformed``."""
    if not isinstance(api_key, str) or len(api_key) > MAX_API_KEY_LENGTH or not _API_KEY.fullmatch(api_key):
        raise _malformed("api key must be 1-128 characters of A-Z a-z 0-9 _ -")
    return api_key


def canonical_timestamp(timestamp: object) -> str:
    """The timestamp as the decimal string that is signed: 1-16 ASCII digits, or a non-negative int.

    Raises:
        AuthError: ``malformed`` for anything else (floats, signs, spaces, bools, other digits).
    """
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        if 0 <= timestamp < 10**MAX_TIMESTAMP_DIGITS:
            return str(timestamp)
    elif (
        isinstance(timestamp, str)
        and len(timestamp) <= MAX_TIMESTAMP_DIGITS
        # isdigit() alone also takes other scripts' digits; an ASCII digit is exactly [0-9]
        and timestamp.isascii()
        and timestamp.isdigit()
    ):
        return timestamp
    raise _malformed("timestamp must be integer milliseconds since the epoch (decimal digits)")


def canonical_method(method: object) -> str:
    """The upper-cased HTTP method (1-16 ASCII letters); else ``malformed``."""
    if type(method) is str and method in PLAIN_METHODS:
        return method
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise _malformed("method must be 1-16 ASCII letters")
    return method.upper()


def canonical_path(path: object) -> bytes:
    """The UTF-8 bytes of a path with query (starts with ``/``, at most 8192 characters, no control
    characters); else ``malformed``."""
    if not isinstance(path, str) or not 1 <= len(path) <= MAX_PATH_LENGTH or not path.startswith("/"):
        raise _malformed(f"path must be a string starting with '/' of at most {MAX_PATH_LENGTH} characters")
    if path.isascii() and path.isprintable():  # ASCII without control characters: the common case
        return path.encode("ascii")
    if _CONTROL.search(path):
        raise _malformed("path must not contain control characters")
    try:
        return path.encode("utf-8")
    except UnicodeEncodeError:
        raise _malformed("path is not valid Unicode text") from None


def request_body(body: object) -> bytes:
    """The body as bytes: ``bytes``/``bytearray``/``memoryview`` as is, ``str`` as UTF-8, ``None`` as empty.

    Raises:
        AuthError: ``malformed`` for another type or an unencodable string.
    """
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            raise _malformed("body is not valid Unicode text") from None
    raise _malformed("body must be bytes or str")


def canonical_signature(signature: object) -> str:
    """The signature in lower case if it is 64 hex digits; else ``malformed``."""
    if not isinstance(signature, str) or len(signature) != 64 or not _HEX.fullmatch(signature):
        raise _malformed("signature must be 64 hexadecimal digits (HMAC-SHA256)")
    return signature.lower()


def signature_digest(signature: object) -> bytes:
    """The 32 bytes that ``signature`` spells if it is 64 hex digits (either case); else ``malformed``.
    Accepts exactly what :func:`canonical_signature` accepts; equal digests are equal signatures."""
    if isinstance(signature, str) and len(signature) == 64 and signature.isascii():
        try:
            digest = bytes.fromhex(signature)
        except ValueError:  # a character that is neither a hex digit nor whitespace
            digest = b""
        if len(digest) == 32:  # fromhex skips whitespace: 32 bytes means 64 hex digits, nothing else
            return digest
    raise _malformed("signature must be 64 hexadecimal digits (HMAC-SHA256)")


def signing_message(timestamp: str, method: str, path: bytes, body: bytes) -> bytes:
    """The exact bytes that are signed, from parts already made canonical."""
    return timestamp.encode("ascii") + method.encode("ascii") + path + body


class Mac(Protocol):
    """A keyed HMAC: ``copy()`` one, ``update()`` the copy with a message, read its ``digest()``."""

    def copy(self) -> Mac: ...

    def update(self, message: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


def mac_for_secret(api_secret: str | bytes) -> Mac:
    """A keyed HMAC-SHA256 object (the secret's UTF-8 bytes), to be ``copy()``-ed per message (saves
    re-keying on every request). OpenSSL's own object where there is one: ``hmac.HMAC`` wraps the same
    object in Python methods, ~3,900 instructions more per copy, update and digest."""
    key = api_secret.encode("utf-8") if isinstance(api_secret, str) else bytes(api_secret)
    if _openssl_hmac is not None:
        try:
            return _openssl_hmac(key, digestmod="sha256")
        except ValueError:  # pragma: no cover - an OpenSSL that refuses the digest here
            pass
    return hmac.new(key, digestmod=hashlib.sha256)


def signature_of(mac: Mac, message: bytes) -> str:
    """The hex HMAC of ``message`` under the key of ``mac`` (which is left unchanged)."""
    return digest_of(mac, message).hex()


def digest_of(mac: Mac, message: bytes) -> bytes:
    """The HMAC of ``message`` under the key of ``mac`` (which is left unchanged), as 32 bytes."""
    copy = mac.copy()
    copy.update(message)
    return copy.digest()


def sign_request(
    api_secret: str, timestamp: str | int, method: str, path: str, body: bytes | str | None = b""
) -> str:
    """Client side: the hex HMAC-SHA256 signature of a request (see the module docstring for the message).

    Args:
        api_secret: the secret returned once by ``AuthManager.create_api_key``.
        timestamp: integer milliseconds since the epoch, as sent (``current_timestamp()`` makes one).
        method: the HTTP method (case-insensitive).
        path: the path with its query string, exactly as sent.
        body: the raw body (``str`` is signed as UTF-8).

    Raises:
        AuthError: ``malformed`` if a part is not acceptable to ``authenticate_request``.
    """
    if not isinstance(api_secret, str) or not api_secret:
        raise _malformed("api_secret must be a non-empty string")
    message = signing_message(
        canonical_timestamp(timestamp), canonical_method(method), canonical_path(path), request_body(body)
    )
    return signature_of(mac_for_secret(api_secret), message)


def current_timestamp(clock: Callable[[], float] = time.time) -> str:
    """Client side: now as integer milliseconds since the epoch, as a string (``clock`` in seconds)."""
    return str(int(clock() * 1000))
