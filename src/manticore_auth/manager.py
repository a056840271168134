"""AuthManager: users, API keys, HMAC-signed requests, passwords, sessions and roles over SQL."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import URL, Engine, RowMapping, delete, select, update
from sqlalchemy.exc import IntegrityError

from . import schema
from .database import open_engine
from .errors import AuthConfigError, AuthError
from .keycache import CachedKey, KeyCache
from .migrations import upgrade
from .models import ROLES, User, role_allows, validate_label, validate_role, validate_username
from .passwords import (
    MAX_PASSWORD_LENGTH,
    ScryptParams,
    hash_password,
    needs_rehash,
    password_bytes,
    verify_password,
)
from .replay import ReplayGuard, ReplayVerdict
from .secretbox import SecretBox
from .signing import (
    MAX_PATH_LENGTH,
    MAX_TIMESTAMP_DIGITS,
    PLAIN_METHODS,
    canonical_api_key,
    canonical_method,
    canonical_path,
    canonical_signature,
    canonical_timestamp,
    digest_of,
    mac_for_secret,
    request_body,
    signature_digest,
    signature_of,
    signing_message,
)

__all__ = ["AuthManager"]

_LOG = logging.getLogger("manticore_auth")

_SESSION_TOKEN = re.compile(r"[A-Za-z0-9_\-]{20,128}")
_MAX_ID_LENGTH = 64
_DEFAULT_SCRYPT = ScryptParams()


def _positive(value: object, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AuthConfigError(f"{name} must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        raise AuthConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'}")
    return float(value)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _secret_context(api_key: str, user_id: str) -> bytes:
    return b"manticore-auth/api-secret\x00" + api_key.encode("ascii") + b"\x00" + user_id.encode("utf-8")


def _user(row: RowMapping) -> User:
    return User(row["user_id"], row["username"], row["role"], float(row["created_at"]))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, (str, bytes)) and len(value) == 0)


class AuthManager:
    """Users, API keys, HMAC-SHA256 request signatures, password logins, sessions and roles.

    Args:
        engine_or_url: a SQLAlchemy ``Engine`` (used as is, never disposed here) or a URL such as
            ``sqlite:///data/auth.db`` or ``postgresql+psycopg://user@host/db`` (an engine is created and
            disposed by :meth:`close`). The auth tables are created or upgraded here, through the
            numbered migrations recorded in ``manticore_auth_schema_version``.
        master_key: 32 bytes that seal API secrets at rest (see ``load_or_create_master_key``).
        window_seconds: how old a request's timestamp may be, in seconds (default 30).
        max_future_seconds: how far a request's timestamp may be *ahead* of this server's clock, in
            seconds (default 1, like the major exchanges; at most ``window_seconds``). Kept short because
            a request accepted ahead of time is the one a restart could let through twice (docs/auth.md).
        clock: seconds since the epoch (``time.time``); inject one in tests.
        session_seconds: lifetime of a login session in seconds (default 12 h).
        scrypt_params: password hashing cost (default n=2**14, r=8, p=1).
        key_cache_seconds / key_cache_size: how long and how many decrypted keys are kept in memory. A
            key revoked by another process or instance stops working within ``key_cache_seconds``; one
            revoked through this instance stops at once.

    Raises:
        AuthConfigError: a bad argument, or API keys in the database sealed under another master key.

    Thread-safe: a server may call it from an event loop and from worker threads at once. Every method
    that takes caller input raises :class:`AuthError` for bad input, never another exception; database
    failures propagate as SQLAlchemy errors.
    """

    def __init__(
        self,
        engine_or_url: Engine | URL | str,
        *,
        master_key: bytes,
        window_seconds: float = 30.0,
        max_future_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        session_seconds: float = 12 * 3600.0,
        scrypt_params: ScryptParams = _DEFAULT_SCRYPT,
        key_cache_seconds: float = 5.0,
        key_cache_size: int = 10_000,
    ) -> None:
        self._box = SecretBox(master_key)
        self.window_seconds = _positive(window_seconds, "window_seconds")
        self.max_future_seconds = min(
            _positive(max_future_seconds, "max_future_seconds", allow_zero=True), self.window_seconds
        )
        self.session_seconds = _positive(session_seconds, "session_seconds")
        if not callable(clock):
            raise AuthConfigError("clock must be a callable returning seconds since the epoch")
        if not isinstance(scrypt_params, ScryptParams):
            raise AuthConfigError("scrypt_params must be a ScryptParams")
        if isinstance(key_cache_size, bool) or not isinstance(key_cache_size, int) or key_cache_size < 0:
            raise AuthConfigError("key_cache_size must be an int >= 0")
        self._clock = clock
        self._scrypt = scrypt_params
        # Verified against when a login names no user (or one without a password): the same work as a
        # wrong password. Made here, not lazily, so that the first such login costs no extra hash.
        self._dummy_hash = hash_password(secrets.token_bytes(16), scrypt_params)
        self._keys = KeyCache(
            key_cache_size, _positive(key_cache_seconds, "key_cache_seconds", allow_zero=True)
        )
        self._window_ms = self.window_seconds * 1000.0
        self._future_ms = self.max_future_seconds * 1000.0
        self._replay = ReplayGuard(self._window_ms)
        self.engine, self._owns_engine = open_engine(engine_or_url)
        try:
            self.schema_version = upgrade(self.engine)
            self._check_master_key()
        except BaseException:
            self.close()
            raise
        #: When this instance started (seconds, from ``clock``). Requests signed before it are refused.
        self.started_at = float(clock())
        self._started_ms = math.floor(self.started_at * 1000.0)

    # ------------------------------------------------------------------ lifecycle

    @property
    def key_id(self) -> str:
        """The public id of the master key (stored with every sealed secret; reveals nothing of the key)."""
        return self._box.key_id

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"AuthManager(url={url!r}, key_id={self.key_id!r}, window_seconds={self.window_seconds})"

    def close(self) -> None:
        """Forget cached keys and dispose the engine if this manager created it. Idempotent."""
        self._keys.clear()
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> AuthManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _now(self) -> float:
        return float(self._clock())

    def _check_master_key(self) -> None:
        query = (
            select(schema.api_keys.c.secret_key_id)
            .where(schema.api_keys.c.revoked_at.is_(None))
            .where(schema.api_keys.c.secret_key_id != self._box.key_id)
            .distinct()
        )
        with self.engine.connect() as connection:
            foreign = sorted(str(row[0]) for row in connection.execute(query))
        if foreign:
            raise AuthConfigError(
                f"active API keys in this database are sealed under master key id(s) {', '.join(foreign)}, "
                f"but this server's master key has id {self._box.key_id}: wrong master key file?"
            )

    # ------------------------------------------------------------------ users

    def create_user(self, username: str, role: str = "trader", *, password: str | None = None) -> User:
        """Create a user; ``password`` (optional) is set as by :meth:`set_password`.

        Usernames are 1-64 characters of ``[A-Za-z0-9_.-]`` and unique regardless of case.

        Raises:
            AuthError: ``invalid_argument`` (username, role or password), ``user_exists``.
        """
        name = validate_username(username)
        validate_role(role)
        encoded = None if password is None else hash_password(password_bytes(password), self._scrypt)
        user = User("u_" + secrets.token_hex(12), name, role, self._now())
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    schema.users.insert().values(
                        user_id=user.user_id,
                        username=name,
                        username_key=name.lower(),
                        role=role,
                        password_hash=encoded,
                        created_at=user.created_at,
                    )
                )
        except IntegrityError:
            raise AuthError("user_exists", f"username {name!r} is taken") from None
        _LOG.info("auth: created user %s (%s, role %s)", user.user_id, name, role)
        return user

    def get_user(self, user_id: str) -> User | None:
        """The user with this id, or None (also for an id that is not a string)."""
        if not isinstance(user_id, str) or len(user_id) > _MAX_ID_LENGTH:
            return None
        with self.engine.connect() as connection:
            row = connection.execute(select(schema.users).where(schema.users.c.user_id == user_id)).mappings()
            found = row.first()
        return None if found is None else _user(found)

    def get_user_by_name(self, username: str) -> User | None:
        """The user with this username (case-insensitive), or None."""
        try:
            key = validate_username(username).lower()
        except AuthError:
            return None
        with self.engine.connect() as connection:
            rows = connection.execute(select(schema.users).where(schema.users.c.username_key == key))
            found = rows.mappings().first()
        return None if found is None else _user(found)

    def list_users(self) -> list[User]:
        """Every user, oldest first (then by username)."""
        query = select(schema.users).order_by(schema.users.c.created_at, schema.users.c.username_key)
        with self.engine.connect() as connection:
            return [_user(row) for row in connection.execute(query).mappings()]

    def _require_user(self, user_id: object) -> User:
        if not isinstance(user_id, str):
            raise AuthError("invalid_argument", "user_id must be a string")
        user = self.get_user(user_id)
        if user is None:
            raise AuthError("unknown_user", "no such user")
        return user

    # ------------------------------------------------------------------ API keys

    def create_api_key(self, user_id: str, label: str = "") -> dict[str, str]:
        """Create an API key for a user and return ``{"api_key": ..., "api_secret": ...}``.

        The secret is shown here once and can never be read back; only its AES-GCM ciphertext is stored.
        Keep the returned dict out of logs.

        Raises:
            AuthError: ``invalid_argument`` (user id or label), ``unknown_user``.
        """
        validate_label(label)
        user = self._require_user(user_id)
        api_key = "mk_" + secrets.token_hex(16)
        api_secret = secrets.token_urlsafe(32)
        nonce, ciphertext = self._box.seal(api_secret.encode("ascii"), _secret_context(api_key, user.user_id))
        with self.engine.begin() as connection:
            connection.execute(
                schema.api_keys.insert().values(
                    api_key=api_key,
                    user_id=user.user_id,
                    label=label,
                    secret_ciphertext=ciphertext,
                    secret_nonce=nonce,
                    secret_key_id=self._box.key_id,
                    created_at=self._now(),
                    revoked_at=None,
                )
            )
        _LOG.info("auth: created API key %s for user %s", api_key, user.user_id)
        return {"api_key": api_key, "api_secret": api_secret}

    def revoke_api_key(self, api_key: str) -> bool:
        """Revoke a key; True if it was active, False if unknown or already revoked. Takes effect at once
        in this instance, and within ``key_cache_seconds`` in others sharing the database."""
        if not isinstance(api_key, str) or len(api_key) > _MAX_ID_LENGTH:
            return False
        with self.engine.begin() as connection:
            result = connection.execute(
                update(schema.api_keys)
                .where(schema.api_keys.c.api_key == api_key)
                .where(schema.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
        self._keys.invalidate(api_key)
        revoked = result.rowcount == 1
        if revoked:
            _LOG.info("auth: revoked API key %s", api_key)
        return revoked

    def list_api_keys(self, user_id: str) -> list[dict[str, Any]]:
        """A user's keys, oldest first, without secrets: ``api_key``, ``user_id``, ``label``,
        ``created_at``, ``revoked_at`` (None while active) and ``active``. Empty for an unknown user."""
        if not isinstance(user_id, str) or len(user_id) > _MAX_ID_LENGTH:
            return []
        table = schema.api_keys
        query = (
            select(table.c.api_key, table.c.user_id, table.c.label, table.c.created_at, table.c.revoked_at)
            .where(table.c.user_id == user_id)
            .order_by(table.c.created_at, table.c.api_key)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            {
                "api_key": row["api_key"],
                "user_id": row["user_id"],
                "label": row["label"],
                "created_at": float(row["created_at"]),
                "revoked_at": None if row["revoked_at"] is None else float(row["revoked_at"]),
                "active": row["revoked_at"] is None,
            }
            for row in rows
        ]

    # ------------------------------------------------------------------ signed requests

    def authenticate_request(
        self,
        *,
        api_key: str | None,
        timestamp: str | int | None,
        signature: str | None,
        method: str,
        path: str,
        body: bytes | bytearray | memoryview | str | None = b"",
    ) -> User:
        """Check a signed request and return its user.

        ``timestamp`` is integer milliseconds since the epoch as sent, ``path`` the path with its query
        string as sent, ``body`` the raw body; the signature is ``sign_request``'s over exactly these.
        Checks, in order: all credentials present; every part well formed; the timestamp no older than
        ``window_seconds`` and no more than ``max_future_seconds`` ahead; the key known and not revoked;
        the signature; the request not signed before this instance started and not accepted before.

        Raises:
            AuthError: ``missing_credentials``, ``malformed``, ``stale_timestamp``, ``unknown_key``,
                ``revoked_key``, ``bad_signature`` or ``replayed`` (all status 401).
            AuthConfigError: the key's stored secret cannot be opened with this master key.
        """
        user = self._accept_plain_request(api_key, timestamp, signature, method, path, body)
        if user is not None:
            return user
        if _is_missing(api_key) or _is_missing(timestamp) or _is_missing(signature):
            raise AuthError("missing_credentials", "api key, timestamp and signature are all required")
        key = canonical_api_key(api_key)
        timestamp_text = canonical_timestamp(timestamp)
        given = signature_digest(signature)
        message = signing_message(
            timestamp_text, canonical_method(method), canonical_path(path), request_body(body)
        )
        timestamp_ms = int(timestamp_text)
        now = self._now()
        now_ms = now * 1000.0
        if timestamp_ms < now_ms - self._window_ms:
            raise AuthError("stale_timestamp", f"timestamp is older than {self.window_seconds:g} s")
        if timestamp_ms > now_ms + self._future_ms:
            raise AuthError(
                "stale_timestamp",
                f"timestamp is more than {self.max_future_seconds:g} s ahead of the server clock",
            )
        entry = self._key(key, now)
        if entry.mac is None:  # never for a live key; kept for the type checker
            raise AuthError("revoked_key", "api key has been revoked")
        if not hmac.compare_digest(digest_of(entry.mac, message), given):
            raise AuthError("bad_signature", "signature does not match the request")
        if timestamp_ms < self._started_ms:
            raise AuthError("replayed", "request was signed before this server started")
        verdict = self._replay.accept(key, given, timestamp_ms, now_ms)
        if verdict is ReplayVerdict.REPLAYED:
            raise AuthError("replayed", "request was already accepted")
        if verdict is ReplayVerdict.STALE:
            raise AuthError("stale_timestamp", f"timestamp is older than {self.window_seconds:g} s")
        return entry.user

    def _accept_plain_request(
        self,
        api_key: object,
        timestamp: object,
        signature: object,
        method: object,
        path: object,
        body: object,
    ) -> User | None:
        """The user of a request that every check of :meth:`authenticate_request` accepts, in one frame
        (the request as servers pass it: ``str`` key, timestamp, signature, method and path, ``bytes``
        body, a cached key); None when any part is unusual or any check fails, and then nothing was
        recorded (the caller runs the full checks, which raise the right error). Only the last step,
        the replay guard's, records anything, and only for a request it accepts."""
        if not (
            type(api_key) is str
            and type(timestamp) is str
            and type(signature) is str
            and type(path) is str
            and type(body) is bytes
            and type(method) is str
            and method in PLAIN_METHODS
            and 0 < len(timestamp) <= MAX_TIMESTAMP_DIGITS
            and timestamp.isascii()
            and timestamp.isdigit()
            and len(signature) == 64
            and signature.isascii()
            and 0 < len(path) <= MAX_PATH_LENGTH
            and path[0] == "/"
            and path.isascii()
            and path.isprintable()
        ):
            return None
        now = float(self._clock())
        # Only canonical keys are cached (_key), so a hit needs no check of the key's characters.
        entry = self._keys.get(api_key, now)
        if entry is None or entry.revoked or entry.mac is None:
            return None
        try:
            given = bytes.fromhex(signature)
        except ValueError:
            return None
        timestamp_ms = int(timestamp)
        now_ms = now * 1000.0
        if (
            len(given) != 32  # fromhex skips whitespace: 32 bytes means 64 hex digits
            or timestamp_ms < now_ms - self._window_ms
            or timestamp_ms > now_ms + self._future_ms
            or timestamp_ms < self._started_ms
        ):
            return None
        mac = entry.mac.copy()
        mac.update(f"{timestamp}{method}{path}".encode("ascii") + body)
        if not hmac.compare_digest(mac.digest(), given):
            return None
        if self._replay.accept(api_key, given, timestamp_ms, now_ms) is not ReplayVerdict.ACCEPTED:
            return None
        return entry.user

    def verify_signature(self, *, api_key: str | None, message: bytes, signature: str | None) -> User:
        """Check an HMAC-SHA256 ``signature`` (hex, any case) of ``message`` under ``api_key``'s secret and
        return the key's user. For another signing scheme over the same keys (the Binance surface): the
        caller checks its own timestamp window; this checks no time and keeps no replay record.

        Raises:
            AuthError: ``missing_credentials``, ``malformed`` (key or signature), ``unknown_key``,
                ``revoked_key`` or ``bad_signature`` (all status 401).
        """
        if _is_missing(api_key) or _is_missing(signature):
            raise AuthError("missing_credentials", "api key and signature are both required")
        key = canonical_api_key(api_key)
        given = canonical_signature(signature)
        entry = self._key(key, self._now())
        if entry.mac is None:  # never for a live key; kept for the type checker
            raise AuthError("revoked_key", "api key has been revoked")
        if not hmac.compare_digest(signature_of(entry.mac, message), given):
            raise AuthError("bad_signature", "signature does not match the request")
        return entry.user

    def _key(self, api_key: str, now: float) -> CachedKey:
        entry = self._keys.get(api_key, now)
        if entry is None:
            entry = self._load_key(api_key, now)
            self._keys.put(api_key, entry)
        if entry.revoked:
            raise AuthError("revoked_key", "api key has been revoked")
        return entry

    def _load_key(self, api_key: str, now: float) -> CachedKey:
        keys, users = schema.api_keys, schema.users
        query = (
            select(
                keys.c.secret_ciphertext,
                keys.c.secret_nonce,
                keys.c.secret_key_id,
                keys.c.revoked_at,
                users.c.user_id,
                users.c.username,
                users.c.role,
                users.c.created_at,
            )
            .join(users, users.c.user_id == keys.c.user_id)
            .where(keys.c.api_key == api_key)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            raise AuthError("unknown_key", "unknown api key")
        user = _user(row)
        if row["revoked_at"] is not None:
            return CachedKey(user, None, True, now)
        secret = self._box.open(
            row["secret_nonce"],
            row["secret_ciphertext"],
            _secret_context(api_key, user.user_id),
            row["secret_key_id"],
        )
        return CachedKey(user, mac_for_secret(secret), False, now)

    # ------------------------------------------------------------------ passwords and sessions

    def set_password(self, user_id: str, password: str) -> None:
        """Set (or change) a user's password, 8-1024 characters, and end the user's existing sessions.

        Raises:
            AuthError: ``invalid_argument`` (password or user id), ``unknown_user``.
        """
        secret = password_bytes(password)
        user = self._require_user(user_id)
        encoded = hash_password(secret, self._scrypt)
        with self.engine.begin() as connection:
            result = connection.execute(
                update(schema.users)
                .where(schema.users.c.user_id == user.user_id)
                .values(password_hash=encoded)
            )
            if result.rowcount != 1:
                raise AuthError("unknown_user", "no such user")
            connection.execute(delete(schema.sessions).where(schema.sessions.c.user_id == user.user_id))
        _LOG.info("auth: password set for user %s", user.user_id)

    def login(self, username: str, password: str) -> str:
        """Check a username and password; return a new session token (43 URL-safe characters).

        The token is random (32 bytes) and stored only as its SHA-256; it expires after
        ``session_seconds``. An unknown user, a user without a password and a wrong password fail
        alike, after the same scrypt work.

        Raises:
            AuthError: ``bad_credentials``; ``malformed`` if either argument is not a string.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            raise AuthError("malformed", "username and password must be strings")
        if len(password) > MAX_PASSWORD_LENGTH or len(username) > _MAX_ID_LENGTH:
            raise AuthError("bad_credentials", "wrong username or password")
        try:
            secret = password.encode("utf-8")
        except UnicodeEncodeError:
            raise AuthError("bad_credentials", "wrong username or password") from None
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(schema.users).where(schema.users.c.username_key == username.lower())
            )
            row = rows.mappings().first()
        if row is None or row["password_hash"] is None:
            verify_password(secret, self._dummy_hash)  # the same work as for a wrong password
            _LOG.info("auth: login failed")
            raise AuthError("bad_credentials", "wrong username or password")
        stored: str = row["password_hash"]
        if not verify_password(secret, stored):
            _LOG.info("auth: login failed")
            raise AuthError("bad_credentials", "wrong username or password")
        user = _user(row)
        now = self._now()
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as connection:
            if needs_rehash(stored, self._scrypt):
                connection.execute(
                    update(schema.users)
                    .where(schema.users.c.user_id == user.user_id)
                    .where(schema.users.c.password_hash == stored)
                    .values(password_hash=hash_password(secret, self._scrypt))
                )
            connection.execute(delete(schema.sessions).where(schema.sessions.c.expires_at <= now))
            connection.execute(
                schema.sessions.insert().values(
                    token_hash=_token_hash(token),
                    user_id=user.user_id,
                    created_at=now,
                    expires_at=now + self.session_seconds,
                )
            )
        _LOG.info("auth: user %s logged in", user.user_id)
        return token

    def authenticate_session(self, token: str | None) -> User:
        """The user of a live session token.

        Raises:
            AuthError: ``missing_credentials`` (None or empty), ``malformed`` (not a string),
                ``bad_session`` (unknown, logged out, or ended by a password change),
                ``expired_session`` (older than ``session_seconds``; it is deleted).
        """
        if _is_missing(token):
            raise AuthError("missing_credentials", "a session token is required")
        if not isinstance(token, str):
            raise AuthError("malformed", "session token must be a string")
        if not _SESSION_TOKEN.fullmatch(token):
            raise AuthError("bad_session", "unknown session")
        digest = _token_hash(token)
        sessions, users = schema.sessions, schema.users
        query = (
            select(sessions.c.expires_at, users.c.user_id, users.c.username, users.c.role, users.c.created_at)
            .join(users, users.c.user_id == sessions.c.user_id)
            .where(sessions.c.token_hash == digest)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            raise AuthError("bad_session", "unknown session")
        if self._now() >= float(row["expires_at"]):
            with self.engine.begin() as connection:
                connection.execute(delete(sessions).where(sessions.c.token_hash == digest))
            raise AuthError("expired_session", "session has expired; log in again")
        return _user(row)

    def logout(self, token: str) -> bool:
        """End a session; True if it existed (expired or not), False otherwise (also for bad input)."""
        if not isinstance(token, str) or not _SESSION_TOKEN.fullmatch(token):
            return False
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(schema.sessions).where(schema.sessions.c.token_hash == _token_hash(token))
            )
        return result.rowcount == 1

    def end_sessions(self, user_id: str) -> int:
        """End every session of a user; return how many there were (0 for an unknown user)."""
        if not isinstance(user_id, str) or len(user_id) > _MAX_ID_LENGTH:
            return 0
        with self.engine.begin() as connection:
            result = connection.execute(delete(schema.sessions).where(schema.sessions.c.user_id == user_id))
        return int(result.rowcount)

    # ------------------------------------------------------------------ permissions

    def require_role(self, user: User, role: str) -> None:
        """Pass if ``user`` has ``role`` or a stronger one (``admin`` includes ``trader``).

        Raises:
            AuthError: ``forbidden`` (status 403) if not, or if ``user`` is not a :class:`User`;
                ``invalid_argument`` if ``role`` is not a known role.
        """
        validate_role(role)
        if not isinstance(user, User) or user.role not in ROLES:
            raise AuthError("forbidden", f"requires role {role}")
        if not role_allows(user.role, role):
            raise AuthError("forbidden", f"requires role {role}")
