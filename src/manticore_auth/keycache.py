"""A small LRU cache of API keys ready for verification (owner and keyed HMAC), so that a signed request
needs no database round trip after the first for its key.

Entries expire after ``ttl_seconds`` so that a key revoked by *another* process (or instance) stops
working within that time; revocation through the same instance invalidates at once. The keyed HMAC
object holds the secret, and nothing here prints it. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .models import User
from .signing import Mac

__all__ = ["CachedKey", "KeyCache"]


class CachedKey:
    """A key's owner, whether it is revoked, and (for a live key) the HMAC keyed with its secret."""

    __slots__ = ("loaded_at", "mac", "revoked", "user")

    def __init__(self, user: User, mac: Mac | None, revoked: bool, loaded_at: float) -> None:
        self.user = user
        self.mac = mac
        self.revoked = revoked
        self.loaded_at = loaded_at

    def __repr__(self) -> str:
        return f"CachedKey(user_id={self.user.user_id!r}, revoked={self.revoked})"


class KeyCache:
    """At most ``max_entries`` keys, least recently used evicted first, each fresh for ``ttl_seconds``."""

    __slots__ = ("_entries", "_lock", "max_entries", "ttl_seconds")

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, CachedKey] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"KeyCache(entries={len(self)}, max_entries={self.max_entries}, ttl_seconds={self.ttl_seconds})"
        )

    def get(self, api_key: str, now: float) -> CachedKey | None:
        """The fresh entry for ``api_key`` (``now`` in seconds, the manager's clock), or None."""
        with self._lock:
            entry = self._entries.get(api_key)
            if entry is None:
                return None
            if not 0.0 <= now - entry.loaded_at <= self.ttl_seconds:
                del self._entries[api_key]
                return None
            self._entries.move_to_end(api_key)
            return entry

    def put(self, api_key: str, entry: CachedKey) -> None:
        """Remember ``entry`` (replacing an older one), evicting the least recently used beyond the bound."""
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[api_key] = entry
            self._entries.move_to_end(api_key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, api_key: str) -> None:
        """Forget ``api_key`` (after a revocation)."""
        with self._lock:
            self._entries.pop(api_key, None)

    def invalidate_user(self, user_id: str) -> None:
        """Forget every key of ``user_id``."""
        with self._lock:
            for api_key in [key for key, entry in self._entries.items() if entry.user.user_id == user_id]:
                del self._entries[api_key]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
