"""authenticate_request's one-frame path for plain requests decides exactly as the full checks do.

Two managers share one (SQLite) database, key and clock; one has the fast path switched off, so it runs only
the full checks. Every request (a correct one, or one with a part changed, retyped, replayed, stale,
early, signed before the start, for an unknown or revoked key) must get the same answer from both
(the user, or the same AuthError code) and leave both replay guards holding the same pairs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_auth import AuthError, AuthManager, sign_request

from .conftest import CHEAP_SCRYPT, FakeClock

PATH = "/api/orders"
BODY = b'{"symbol":"BTC/USD","side":"buy","price":"9000.5","quantity":"0.25"}'


def _outcome(manager: AuthManager, request: dict[str, Any]) -> str:
    try:
        return "user " + manager.authenticate_request(**request).user_id
    except AuthError as error:
        return "error " + error.code


def _full_checks_only(manager: AuthManager) -> AuthManager:
    def never(*_: object) -> None:
        return None

    manager._accept_plain_request = never  # type: ignore[method-assign]
    return manager


#: What a test request changes in a correctly signed one (None: nothing).
MUTATIONS = (
    None,
    "replay",
    "stale",
    "future",
    "edge_old",
    "edge_future",
    "past_edge_old",
    "past_edge_future",
    "flip_signature",
    "upper_signature",
    "short_signature",
    "spaced_signature",
    "nonhex_signature",
    "other_body",
    "other_path",
    "relative_path",
    "control_path",
    "unicode_path",
    "lower_method",
    "odd_method",
    "int_timestamp",
    "padded_timestamp",
    "signed_timestamp",
    "unicode_digits",
    "bytearray_body",
    "str_body",
    "none_body",
    "empty_key",
    "unknown_key",
    "bad_key",
    "bytes_key",
    "none_signature",
    "revoked",
    "before_start",
    "list_method",
)


#: Timestamps signed this many seconds from now (the window is 30 s back, 1 s ahead).
TIMESTAMP_OFFSETS = {
    "stale": -31.0,
    "future": 1.5,
    "edge_old": -30.0,
    "edge_future": 1.0,
    "past_edge_old": -30.001,
    "past_edge_future": 1.001,
}


def _mutate(
    request: dict[str, Any], mutation: str | None, clock: FakeClock, secret: str, sign_at: float
) -> dict[str, Any]:
    changed = dict(request)

    def resign(**parts: Any) -> None:
        changed.update(parts)
        changed["signature"] = sign_request(
            secret,
            changed["timestamp"],
            changed["method"],
            changed["path"],
            changed["body"],
        )

    if mutation in TIMESTAMP_OFFSETS or mutation == "before_start":
        offset = {**TIMESTAMP_OFFSETS, "before_start": sign_at}
        resign(timestamp=clock.ms(offset[mutation]))
    elif mutation == "flip_signature":
        first = "0" if changed["signature"][0] != "0" else "1"
        changed["signature"] = first + changed["signature"][1:]
    elif mutation == "upper_signature":
        changed["signature"] = changed["signature"].upper()
    elif mutation == "short_signature":
        changed["signature"] = changed["signature"][:-2]
    elif mutation == "spaced_signature":
        changed["signature"] = changed["signature"][:30] + " " + changed["signature"][31:]
    elif mutation == "nonhex_signature":
        changed["signature"] = "g" + changed["signature"][1:]
    elif mutation == "other_body":
        changed["body"] = BODY + b" "
    elif mutation == "other_path":
        resign(path="/api/orders?x=1")
    elif mutation == "relative_path":
        changed["path"] = "api/orders"
    elif mutation == "control_path":
        changed["path"] = "/api/\norders"
    elif mutation == "unicode_path":
        resign(path="/api/ordérs")
    elif mutation == "lower_method":
        resign(method="post")
    elif mutation == "odd_method":
        resign(method="PROPFIND")
    elif mutation == "list_method":
        changed["method"] = ["POST"]
    elif mutation == "int_timestamp":
        changed["timestamp"] = int(changed["timestamp"])
    elif mutation == "padded_timestamp":
        changed["timestamp"] = " " + changed["timestamp"]
    elif mutation == "signed_timestamp":
        changed["timestamp"] = "+" + changed["timestamp"]
    elif mutation == "unicode_digits":
        changed["timestamp"] = "\u0661" + changed["timestamp"][1:]
    elif mutation == "bytearray_body":
        changed["body"] = bytearray(changed["body"])
    elif mutation == "str_body":
        changed["body"] = changed["body"].decode()
    elif mutation == "none_body":
        resign(body=b"")
        changed["body"] = None
    elif mutation == "empty_key":
        changed["api_key"] = ""
    elif mutation == "unknown_key":
        changed["api_key"] = "mc_unknown_key_1234"
    elif mutation == "bad_key":
        changed["api_key"] = "mc key"
    elif mutation == "bytes_key":
        changed["api_key"] = changed["api_key"].encode()
    elif mutation == "none_signature":
        changed["signature"] = None
    return changed


@contextmanager
def _pair(clock: FakeClock) -> Iterator[tuple[AuthManager, AuthManager]]:
    """A manager and its full-checks-only twin on one new SQLite database, key and clock."""
    with tempfile.TemporaryDirectory() as directory:
        options: dict[str, Any] = {
            "master_key": bytes(range(32)),
            "clock": clock,
            "scrypt_params": CHEAP_SCRYPT,
        }
        url = f"sqlite:///{Path(directory) / 'auth.db'}"
        fast = AuthManager(url, **options)
        full = _full_checks_only(AuthManager(url, **options))
        try:
            yield fast, full
        finally:
            fast.close()
            full.close()


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(MUTATIONS), st.floats(min_value=0.0, max_value=6.0), st.integers(0, 9)),
        min_size=1,
        max_size=12,
    )
)
def test_the_fast_path_decides_as_the_full_checks(steps: list[Any]) -> None:
    clock = FakeClock()
    with _pair(clock) as (fast, full):
        _check_steps(fast, full, clock, steps)


def _check_steps(fast: AuthManager, full: AuthManager, clock: FakeClock, steps: list[Any]) -> None:
    user = fast.create_user(f"u{len(fast.list_users())}")
    keys = [fast.create_api_key(user.user_id) for _ in range(2)]
    last: dict[str, Any] | None = None
    for mutation, pause, nonce in steps:
        clock.advance(pause)
        creds = keys[nonce % 2]
        if mutation == "revoked":
            fast.revoke_api_key(creds["api_key"])
            full.revoke_api_key(creds["api_key"])
            mutation = None
        body = BODY + b" " * nonce
        timestamp = clock.ms()
        request = {
            "api_key": creds["api_key"],
            "timestamp": timestamp,
            "signature": sign_request(creds["api_secret"], timestamp, "POST", PATH, body),
            "method": "POST",
            "path": PATH,
            "body": body,
        }
        if mutation == "replay" and last is not None:
            request = last
        elif mutation != "replay":
            sign_at = (fast.started_at - clock.now) - 0.002
            request = _mutate(request, mutation, clock, creds["api_secret"], sign_at)
        answers = (_outcome(fast, request), _outcome(full, request))
        assert answers[0] == answers[1], (mutation, request)
        assert len(fast._replay) == len(full._replay)
        last = request


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_each_change_is_decided_as_the_full_checks_decide(mutation: str | None) -> None:
    clock = FakeClock()
    with _pair(clock) as (fast, full):
        clock.advance(2.0)
        _check_steps(fast, full, clock, [(None, 0.0, 1), (mutation, 0.5, 2), ("replay", 0.5, 3)])


def test_a_plain_request_is_accepted_without_the_full_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    with _pair(clock) as (fast, _):
        creds = fast.create_api_key(fast.create_user("alice").user_id)
        first = clock.ms()
        request = {
            "api_key": creds["api_key"],
            "timestamp": first,
            "signature": sign_request(creds["api_secret"], first, "POST", PATH, BODY),
            "method": "POST",
            "path": PATH,
            "body": BODY,
        }
        fast.authenticate_request(**request)  # loads the key into the cache (full checks)

        def full_checks(*_: object) -> None:
            raise AssertionError("the full checks ran")

        monkeypatch.setattr("manticore_auth.manager.canonical_api_key", full_checks)
        clock.advance(0.001)
        second = clock.ms()
        request["timestamp"] = second
        request["signature"] = sign_request(creds["api_secret"], second, "POST", PATH, BODY)
        assert fast.authenticate_request(**request).username == "alice"
        with pytest.raises(AssertionError, match="full checks"):
            fast.authenticate_request(**request)  # a replay goes to the full checks, which raise
