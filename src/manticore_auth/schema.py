"""The auth tables, in SQLAlchemy Core.

Timestamps are seconds since the epoch as double precision (the manager's clock). No column holds a
secret in plain text: passwords are scrypt hashes, session tokens SHA-256 hashes, and API secrets
AES-GCM ciphertexts under the server's master key (see ``secretbox``).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, LargeBinary, MetaData, String, Table

__all__ = ["api_keys", "metadata", "sessions", "users"]

metadata = MetaData()

users = Table(
    "manticore_users",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    # Lower-cased username: uniqueness is case-insensitive, so "Alice" cannot pose as "alice".
    Column("username_key", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # "scrypt$n$r$p$salt$hash" (base64), or NULL for a user who has no password (API keys only).
    Column("password_hash", String(256), nullable=True),
    Column("created_at", Float(precision=53), nullable=False),
)

api_keys = Table(
    "manticore_api_keys",
    metadata,
    Column("api_key", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("manticore_users.user_id"), nullable=False),
    Column("label", String(128), nullable=False),
    # AES-256-GCM of the secret; the tag is appended to the ciphertext. The key id names the master key.
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("secret_nonce", LargeBinary(12), nullable=False),
    Column("secret_key_id", String(32), nullable=False),
    Column("created_at", Float(precision=53), nullable=False),
    Column("revoked_at", Float(precision=53), nullable=True),
)
Index("ix_manticore_api_keys_user", api_keys.c.user_id)

sessions = Table(
    "manticore_sessions",
    metadata,
    # SHA-256 (hex) of the token: a stolen table does not yield usable tokens.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("manticore_users.user_id"), nullable=False),
    Column("created_at", Float(precision=53), nullable=False),
    Column("expires_at", Float(precision=53), nullable=False),
)
Index("ix_manticore_sessions_user", sessions.c.user_id)
Index("ix_manticore_sessions_expires", sessions.c.expires_at)
