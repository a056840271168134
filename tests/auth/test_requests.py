"""authenticate_request: every error code, the signed parts, the window, replays, restarts, revocation."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from manticore_auth import AuthError, AuthManager, sign_request

from .conftest import CHEAP_SCRYPT, T0, FakeClock, ManagerFactory

PATH = "/api/orders?symbol=BTC%2FUSD&x=1"
BODY = b'{"side":"buy","price":"9000","quantity":"1"}'


def signed(
    creds: dict[str, str],
    clock: FakeClock,
    *,
    offset: float = 0.0,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
) -> dict[str, Any]:
    """The keyword arguments of authenticate_request for a correctly signed request."""
    timestamp = clock.ms(offset)
    signature = sign_request(creds["api_secret"], timestamp, method, path, body)
    return {
        "api_key": creds["api_key"],
        "timestamp": timestamp,
        "signature": signature,
        "method": method,
        "path": path,
        "body": body,
    }


def code_of(auth: AuthManager, **request: Any) -> str:
    with pytest.raises(AuthError) as info:
        auth.authenticate_request(**request)
    assert info.value.status == 401
    return info.value.code


@pytest.fixture
def creds(auth: AuthManager) -> dict[str, str]:
    return auth.create_api_key(auth.create_user("alice").user_id, label="bot")


def test_a_signed_request_authenticates_its_user(auth: AuthManager, clock: FakeClock) -> None:
    alice, bob = auth.create_user("alice"), auth.create_user("bob", role="admin")
    alice_key, bob_key = auth.create_api_key(alice.user_id), auth.create_api_key(bob.user_id)
    assert auth.authenticate_request(**signed(alice_key, clock)) == alice
    assert auth.authenticate_request(**signed(bob_key, clock)) == bob
    # Upper-case hex, an int timestamp, a str body and a lower-case method are the same request.
    request = signed(alice_key, clock, offset=0.001, method="DELETE", path="/api/orders/7", body=b"")
    request.update(
        signature=request["signature"].upper(), timestamp=int(request["timestamp"]), method="delete"
    )
    assert auth.authenticate_request(**request) == alice


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"path": "/api/orders?symbol=BTC%2FUSD&x=2"},  # query value
        {"path": "/api/orders?x=1&symbol=BTC%2FUSD"},  # query order
        {"path": "/api/orders"},  # query dropped
        {"path": "/api/order?symbol=BTC%2FUSD&x=1"},  # path
        {"body": BODY.replace(b"9000", b"9001")},
        {"body": BODY + b" "},
        {"body": b""},
        {"timestamp": "+1ms"},
        {"timestamp": "-1ms"},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))!r}"[:40],
)
def test_any_change_to_a_signed_part_fails(
    auth: AuthManager, clock: FakeClock, creds: dict[str, str], change: dict[str, Any]
) -> None:
    clock.advance(5)  # room for a timestamp 1 ms earlier, still after the manager's start
    request = signed(creds, clock)
    if "timestamp" in change:
        delta = 1 if change["timestamp"] == "+1ms" else -1
        change = {"timestamp": str(int(request["timestamp"]) + delta)}
    assert code_of(auth, **{**request, **change}) == "bad_signature"
    assert auth.authenticate_request(**request).username == "alice"  # the original still passes


def test_a_signature_made_with_another_secret_fails(auth: AuthManager, clock: FakeClock) -> None:
    user = auth.create_user("alice")
    first, second = auth.create_api_key(user.user_id), auth.create_api_key(user.user_id)
    request = signed(first, clock)
    assert code_of(auth, **{**request, "api_key": second["api_key"]}) == "bad_signature"


@pytest.mark.parametrize("field", ["api_key", "timestamp", "signature"])
@pytest.mark.parametrize("empty", [None, ""])
def test_missing_credentials(
    auth: AuthManager, clock: FakeClock, creds: dict[str, str], field: str, empty: object
) -> None:
    assert code_of(auth, **{**signed(creds, clock), field: empty}) == "missing_credentials"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key", 42),
        ("api_key", b"mk_bytes"),
        ("api_key", "mk_" + "a" * 200),
        ("api_key", "mk key with spaces"),
        ("timestamp", "17e11"),
        ("timestamp", "1700000000000.5"),
        ("timestamp", 1_700_000_000_000.0),
        ("timestamp", True),
        ("timestamp", "9" * 1000),
        ("timestamp", ["1700000000000"]),
        ("signature", "z" * 64),
        ("signature", "ab" * 31),
        ("signature", "ab" * 33),
        ("signature", "a" * 1_000_000),
        ("signature", bytes(32)),
        ("method", ""),
        ("method", None),
        ("method", "PO ST"),
        ("path", "api/orders"),
        ("path", "/" + "x" * 10_000),
        ("path", "/a\x00b"),
        ("path", b"/api/orders"),
        ("body", 12),
        ("body", {"side": "buy"}),
    ],
)
def test_malformed_input(
    auth: AuthManager, clock: FakeClock, creds: dict[str, str], field: str, value: object
) -> None:
    assert code_of(auth, **{**signed(creds, clock), field: value}) == "malformed"


def test_unknown_key(auth: AuthManager, clock: FakeClock, creds: dict[str, str]) -> None:
    forged = {"api_key": "mk_" + "0" * 32, "api_secret": creds["api_secret"]}
    assert code_of(auth, **signed(forged, clock)) == "unknown_key"


def test_revoked_key(auth: AuthManager, clock: FakeClock, creds: dict[str, str]) -> None:
    assert auth.authenticate_request(**signed(creds, clock)).username == "alice"  # now cached
    assert auth.revoke_api_key(creds["api_key"]) is True
    assert code_of(auth, **signed(creds, clock, offset=0.5)) == "revoked_key"
    assert auth.revoke_api_key(creds["api_key"]) is False
    assert auth.revoke_api_key("mk_unknown") is False
    assert auth.revoke_api_key(None) is False  # type: ignore[arg-type]
    alice = auth.get_user_by_name("alice")
    assert alice is not None
    [listed] = auth.list_api_keys(alice.user_id)
    assert listed["active"] is False and listed["revoked_at"] == T0


def test_revocation_by_another_instance_applies_within_the_cache_time(
    make_manager: ManagerFactory, clock: FakeClock
) -> None:
    server, admin = make_manager(key_cache_seconds=5.0), make_manager()
    creds = admin.create_api_key(admin.create_user("alice").user_id)
    assert server.authenticate_request(**signed(creds, clock)).username == "alice"
    assert admin.revoke_api_key(creds["api_key"])
    clock.advance(1)
    assert server.authenticate_request(**signed(creds, clock)).username == "alice"  # cached, as documented
    clock.advance(5)
    assert code_of(server, **signed(creds, clock)) == "revoked_key"


def test_no_database_round_trip_after_the_first_request(
    auth: AuthManager, clock: FakeClock, creds: dict[str, str]
) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(auth.engine, "before_cursor_execute", record)
    try:
        auth.authenticate_request(**signed(creds, clock))
        assert len(statements) == 1
        for i in range(1, 20):
            auth.authenticate_request(**signed(creds, clock, offset=i / 1000))
        assert len(statements) == 1
    finally:
        event.remove(auth.engine, "before_cursor_execute", record)


# ---------------------------------------------------------------------- the window


def test_window_edges(make_manager: ManagerFactory, clock: FakeClock) -> None:
    auth = make_manager()
    creds = auth.create_api_key(auth.create_user("alice").user_id)
    clock.advance(100)  # so that window-old timestamps are after the manager's start
    assert auth.authenticate_request(**signed(creds, clock, offset=-30.0)).username == "alice"
    assert code_of(auth, **signed(creds, clock, offset=-30.001)) == "stale_timestamp"
    assert auth.authenticate_request(**signed(creds, clock, offset=1.0)).username == "alice"
    assert code_of(auth, **signed(creds, clock, offset=1.001)) == "stale_timestamp"


def test_window_is_configurable_and_may_be_symmetric(make_manager: ManagerFactory, clock: FakeClock) -> None:
    auth = make_manager(window_seconds=5.0, max_future_seconds=5.0)
    creds = auth.create_api_key(auth.create_user("alice").user_id)
    clock.advance(100)
    assert auth.authenticate_request(**signed(creds, clock, offset=-5.0)).username == "alice"
    assert auth.authenticate_request(**signed(creds, clock, offset=5.0)).username == "alice"
    assert code_of(auth, **signed(creds, clock, offset=-5.001)) == "stale_timestamp"
    assert code_of(auth, **signed(creds, clock, offset=5.001)) == "stale_timestamp"
    assert make_manager(window_seconds=2.0, max_future_seconds=60.0).max_future_seconds == 2.0


# ---------------------------------------------------------------------- replays


def test_replay_within_the_window_is_refused(
    auth: AuthManager, clock: FakeClock, creds: dict[str, str]
) -> None:
    request = signed(creds, clock)
    assert auth.authenticate_request(**request).username == "alice"
    assert code_of(auth, **request) == "replayed"
    # The same request in other spellings is the same request.
    assert code_of(auth, **{**request, "signature": request["signature"].upper()}) == "replayed"
    respelled = {**request, "timestamp": int(request["timestamp"]), "method": "post"}
    assert code_of(auth, **respelled) == "replayed"
    assert code_of(auth, **{**request, "body": request["body"].decode()}) == "replayed"
    clock.advance(29)
    assert code_of(auth, **request) == "replayed"
    clock.advance(2)
    assert code_of(auth, **request) == "stale_timestamp"


def test_replay_memory_is_pruned_by_time(auth: AuthManager, clock: FakeClock, creds: dict[str, str]) -> None:
    for i in range(50):
        auth.authenticate_request(**signed(creds, clock, offset=i / 1000))
    assert len(auth._replay) == 50
    clock.advance(31)
    auth.authenticate_request(**signed(creds, clock))
    assert len(auth._replay) == 1


def test_a_clock_stepped_back_does_not_revive_a_forgotten_request(
    auth: AuthManager, clock: FakeClock, creds: dict[str, str]
) -> None:
    request = signed(creds, clock)
    auth.authenticate_request(**request)
    clock.advance(40)
    auth.authenticate_request(**signed(creds, clock))  # prunes the first request
    clock.advance(-35)  # the first request's timestamp looks fresh again
    assert code_of(auth, **request) in ("replayed", "stale_timestamp")


def test_replay_after_a_restart_is_refused(make_manager: ManagerFactory, clock: FakeClock) -> None:
    first = make_manager()
    creds = first.create_api_key(first.create_user("alice").user_id)
    clock.advance(10)
    accepted = signed(creds, clock)
    never_sent = signed(creds, clock, offset=0.5)
    assert first.authenticate_request(**accepted).username == "alice"
    first.close()
    clock.advance(1)
    restarted = make_manager()
    assert code_of(restarted, **accepted) == "replayed"
    assert code_of(restarted, **never_sent) == "replayed"  # signed before the start: refused too
    assert restarted.authenticate_request(**signed(creds, clock)).username == "alice"


def test_a_request_signed_in_the_starting_millisecond_is_accepted(
    make_manager: ManagerFactory, clock: FakeClock
) -> None:
    clock.now = T0 + 0.0004  # start in the middle of a millisecond
    auth = make_manager()
    creds = auth.create_api_key(auth.create_user("alice").user_id)
    request = signed(creds, clock)
    request["timestamp"] = str(int(T0 * 1000))
    request["signature"] = sign_request(creds["api_secret"], request["timestamp"], "POST", PATH, BODY)
    assert auth.authenticate_request(**request).username == "alice"


def test_concurrent_replays_accept_exactly_one(
    auth: AuthManager, clock: FakeClock, creds: dict[str, str]
) -> None:
    auth.authenticate_request(**signed(creds, clock))  # load the key once
    request = signed(creds, clock, offset=0.001)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            auth.authenticate_request(**request)
            outcomes.append("ok")
        except AuthError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["replayed"] * 7


# ---------------------------------------------------------------------- any input at all

_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.lists(st.integers(), max_size=3),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=60, max_size=70),
    st.text(alphabet="0123456789", min_size=1, max_size=20),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(
    api_key=_anything,
    timestamp=_anything,
    signature=_anything,
    method=_anything,
    path=_anything,
    body=_anything,
)
def test_any_input_raises_only_auth_error(
    memory_auth: AuthManager,
    api_key: Any,
    timestamp: Any,
    signature: Any,
    method: Any,
    path: Any,
    body: Any,
) -> None:
    with pytest.raises(AuthError) as info:
        memory_auth.authenticate_request(
            api_key=api_key, timestamp=timestamp, signature=signature, method=method, path=path, body=body
        )
    assert info.value.code in (
        "missing_credentials",
        "malformed",
        "stale_timestamp",
        "unknown_key",
        "bad_signature",
    )


@pytest.fixture
def memory_auth(master_key: bytes, clock: FakeClock) -> AuthManager:
    auth = AuthManager("sqlite://", master_key=master_key, clock=clock, scrypt_params=CHEAP_SCRYPT)
    creds = auth.create_api_key(auth.create_user("alice").user_id)
    auth.revoke_api_key(creds["api_key"])
    return auth
