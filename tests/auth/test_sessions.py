"""Passwords (scrypt), logins, session tokens and their expiry."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from sqlalchemy import select

from manticore_auth import AuthConfigError, AuthError, AuthManager, ScryptParams
from manticore_auth import schema as auth_schema

from .conftest import CHEAP_SCRYPT, FakeClock, ManagerFactory

PASSWORD = "correct horse battery staple"


def code_of(call: object, *args: object) -> str:
    with pytest.raises(AuthError) as info:
        call(*args)  # type: ignore[operator]
    return info.value.code


def test_login_and_session(auth: AuthManager) -> None:
    alice = auth.create_user("alice")
    auth.set_password(alice.user_id, PASSWORD)
    token = auth.login("alice", PASSWORD)
    assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", token)
    assert auth.authenticate_session(token) == alice
    assert auth.login("Alice", PASSWORD) != token  # usernames are case-insensitive; each login is new
    assert auth.authenticate_session(token) == alice


def test_login_failures_are_indistinguishable(auth: AuthManager, monkeypatch: pytest.MonkeyPatch) -> None:
    auth.create_user("alice", password=PASSWORD)
    auth.create_user("nopassword")
    derivations: list[tuple[int, int, int]] = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(password: bytes, **kwargs: Any) -> bytes:
        derivations.append((kwargs["n"], kwargs["r"], kwargs["p"]))
        return real_scrypt(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    outcomes = []
    for username, password in [("alice", "wrong password"), ("mallory", PASSWORD), ("nopassword", PASSWORD)]:
        derivations.clear()
        with pytest.raises(AuthError) as info:
            auth.login(username, password)
        outcomes.append((info.value.code, info.value.status, info.value.message, list(derivations)))
    expected_work = [(CHEAP_SCRYPT.n, CHEAP_SCRYPT.r, CHEAP_SCRYPT.p)]
    assert outcomes == [("bad_credentials", 401, "wrong username or password", expected_work)] * 3


def test_bad_login_input(auth: AuthManager) -> None:
    auth.create_user("alice", password=PASSWORD)
    assert code_of(auth.login, None, PASSWORD) == "malformed"
    assert code_of(auth.login, "alice", b"bytes password") == "malformed"
    assert code_of(auth.login, "alice", "x" * 5000) == "bad_credentials"
    assert code_of(auth.login, "a" * 5000, PASSWORD) == "bad_credentials"
    assert code_of(auth.login, "alice", "\ud800" * 8) == "bad_credentials"
    assert code_of(auth.login, "", "") == "bad_credentials"


@pytest.mark.parametrize("password", ["short", "x" * 1025, None, 12345678, b"bytes-password", "\ud800" * 8])
def test_invalid_passwords(auth: AuthManager, password: object) -> None:
    alice = auth.create_user("alice")
    assert code_of(auth.set_password, alice.user_id, password) == "invalid_argument"
    if password is not None:  # None means "no password" when creating a user
        with pytest.raises(AuthError, match="invalid_argument"):
            auth.create_user("bob", password=password)  # type: ignore[arg-type]
        assert auth.get_user_by_name("bob") is None


def test_set_password_for_unknown_user(auth: AuthManager) -> None:
    assert code_of(auth.set_password, "u_nobody", PASSWORD) == "unknown_user"
    assert code_of(auth.set_password, 5, PASSWORD) == "invalid_argument"


def test_changing_the_password_ends_sessions(auth: AuthManager) -> None:
    alice = auth.create_user("alice", password=PASSWORD)
    token = auth.login("alice", PASSWORD)
    auth.set_password(alice.user_id, "a brand new password")
    assert code_of(auth.authenticate_session, token) == "bad_session"
    assert code_of(auth.login, "alice", PASSWORD) == "bad_credentials"
    assert auth.authenticate_session(auth.login("alice", "a brand new password")) == alice


def test_session_expiry(make_manager: ManagerFactory, clock: FakeClock) -> None:
    auth = make_manager(session_seconds=60.0)
    alice = auth.create_user("alice", password=PASSWORD)
    token = auth.login("alice", PASSWORD)
    clock.advance(59.999)
    assert auth.authenticate_session(token) == alice
    clock.advance(0.001)
    assert code_of(auth.authenticate_session, token) == "expired_session"
    assert code_of(auth.authenticate_session, token) == "bad_session"  # deleted once found expired


def test_default_session_lifetime_is_twelve_hours(make_manager: ManagerFactory, clock: FakeClock) -> None:
    auth = make_manager()
    assert auth.session_seconds == 12 * 3600
    auth.create_user("alice", password=PASSWORD)
    token = auth.login("alice", PASSWORD)
    clock.advance(12 * 3600 - 1)
    assert auth.authenticate_session(token).username == "alice"
    clock.advance(1)
    assert code_of(auth.authenticate_session, token) == "expired_session"


def test_expired_sessions_are_pruned_on_login(make_manager: ManagerFactory, clock: FakeClock) -> None:
    auth = make_manager(session_seconds=10.0)
    auth.create_user("alice", password=PASSWORD)
    for _ in range(3):
        auth.login("alice", PASSWORD)
    clock.advance(11)
    auth.login("alice", PASSWORD)
    with auth.engine.connect() as connection:
        assert len(connection.execute(select(auth_schema.sessions)).all()) == 1


def test_logout(auth: AuthManager) -> None:
    alice = auth.create_user("alice", password=PASSWORD)
    token, other = auth.login("alice", PASSWORD), auth.login("alice", PASSWORD)
    assert auth.logout(token) is True
    assert code_of(auth.authenticate_session, token) == "bad_session"
    assert auth.authenticate_session(other) == alice
    assert auth.logout(token) is False
    assert auth.logout(None) is False  # type: ignore[arg-type]
    assert auth.logout("!") is False
    assert auth.end_sessions(alice.user_id) == 1
    assert code_of(auth.authenticate_session, other) == "bad_session"


def test_bad_session_tokens(auth: AuthManager) -> None:
    assert code_of(auth.authenticate_session, None) == "missing_credentials"
    assert code_of(auth.authenticate_session, "") == "missing_credentials"
    assert code_of(auth.authenticate_session, 42) == "malformed"
    assert code_of(auth.authenticate_session, "not a token!") == "bad_session"
    assert code_of(auth.authenticate_session, "A" * 43) == "bad_session"
    assert code_of(auth.authenticate_session, "A" * 100_000) == "bad_session"


def test_tokens_and_passwords_are_stored_only_hashed(auth: AuthManager) -> None:
    alice = auth.create_user("alice", password=PASSWORD)
    token = auth.login("alice", PASSWORD)
    with auth.engine.connect() as connection:
        [session] = connection.execute(select(auth_schema.sessions)).mappings().all()
        [user] = connection.execute(select(auth_schema.users)).mappings().all()
    assert session["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert session["user_id"] == alice.user_id
    assert token not in str(dict(session))
    assert user["password_hash"].startswith(f"scrypt${CHEAP_SCRYPT.n}${CHEAP_SCRYPT.r}${CHEAP_SCRYPT.p}$")
    assert PASSWORD not in str(dict(user))


def test_hashes_are_upgraded_to_the_configured_parameters_on_login(make_manager: ManagerFactory) -> None:
    old = make_manager()
    old.create_user("alice", password=PASSWORD)
    stronger = make_manager(scrypt_params=ScryptParams(n=2**6, r=2, p=1))
    stronger.login("alice", PASSWORD)
    with stronger.engine.connect() as connection:
        stored = connection.execute(select(auth_schema.users.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$64$2$1$")
    assert old.login("alice", PASSWORD)  # hashes made with any parameters still verify


def test_default_scrypt_parameters_are_sound(make_manager: ManagerFactory) -> None:
    assert ScryptParams() == ScryptParams(n=2**14, r=8, p=1)
    auth = make_manager(scrypt_params=ScryptParams())
    auth.create_user("alice", password=PASSWORD)
    assert auth.authenticate_session(auth.login("alice", PASSWORD)).username == "alice"
    with auth.engine.connect() as connection:
        stored = connection.execute(select(auth_schema.users.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$16384$8$1$")


@pytest.mark.parametrize(
    "params", [{"n": 3}, {"n": 1}, {"n": 2**21}, {"r": 0}, {"p": 0}, {"n": True}, {"r": 1.5}]
)
def test_invalid_scrypt_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(AuthConfigError):
        ScryptParams(**params)
