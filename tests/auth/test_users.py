"""Users, API key management, roles, error codes, and persistence across manager instances."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from manticore_auth import AUTH_ERROR_STATUS, AuthError, AuthManager, User, sign_request

from .conftest import T0, FakeClock, ManagerFactory


def code_of(call: object, *args: object, **kwargs: object) -> tuple[str, int]:
    with pytest.raises(AuthError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value.code, info.value.status


def test_create_and_find_users(auth: AuthManager) -> None:
    alice = auth.create_user("alice")
    root = auth.create_user("Root.Admin-1_x", role="admin")
    assert alice == User(alice.user_id, "alice", "trader", T0)
    assert root.role == "admin" and root.username == "Root.Admin-1_x"
    assert alice.user_id != root.user_id
    assert auth.get_user(alice.user_id) == alice
    assert auth.get_user_by_name("alice") == alice
    assert auth.get_user_by_name("ROOT.ADMIN-1_X") == root  # case-insensitive lookup
    assert auth.list_users() == [alice, root]
    assert auth.get_user("u_missing") is None
    assert auth.get_user(None) is None  # type: ignore[arg-type]
    assert auth.get_user("x" * 1000) is None
    assert auth.get_user_by_name("nobody") is None
    assert auth.get_user_by_name("not a name") is None


def test_user_is_a_frozen_slotted_dataclass(auth: AuthManager) -> None:
    user = auth.create_user("alice")
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.role = "admin"  # type: ignore[misc]
    assert not hasattr(user, "__dict__")
    assert [field.name for field in dataclasses.fields(User)] == ["user_id", "username", "role", "created_at"]


def test_usernames_are_unique_regardless_of_case(auth: AuthManager) -> None:
    auth.create_user("alice")
    assert code_of(auth.create_user, "alice") == ("user_exists", 409)
    assert code_of(auth.create_user, "ALICE", role="admin") == ("user_exists", 409)
    assert len(auth.list_users()) == 1


@pytest.mark.parametrize("username", ["", "a" * 65, "a b", "ali\u00e7e", "a/b", "a\n", None, 7, b"alice"])
def test_invalid_usernames(auth: AuthManager, username: object) -> None:
    assert code_of(auth.create_user, username) == ("invalid_argument", 400)


@pytest.mark.parametrize("role", ["root", "Admin", "", None, 1])
def test_invalid_roles(auth: AuthManager, role: object) -> None:
    assert code_of(auth.create_user, "alice", role=role) == ("invalid_argument", 400)
    assert auth.list_users() == []


def test_api_key_management(auth: AuthManager, clock: FakeClock) -> None:
    alice = auth.create_user("alice")
    first = auth.create_api_key(alice.user_id, label="bot")
    clock.advance(1)
    second = auth.create_api_key(alice.user_id)
    assert set(first) == {"api_key", "api_secret"}
    assert first["api_key"].startswith("mk_") and len(first["api_secret"]) >= 43
    assert first["api_key"] != second["api_key"] and first["api_secret"] != second["api_secret"]
    listed = auth.list_api_keys(alice.user_id)
    assert listed == [
        {
            "api_key": first["api_key"],
            "user_id": alice.user_id,
            "label": "bot",
            "created_at": T0,
            "revoked_at": None,
            "active": True,
        },
        {
            "api_key": second["api_key"],
            "user_id": alice.user_id,
            "label": "",
            "created_at": T0 + 1,
            "revoked_at": None,
            "active": True,
        },
    ]
    assert auth.list_api_keys("u_nobody") == []
    assert auth.list_api_keys(None) == []  # type: ignore[arg-type]


def test_api_key_errors(auth: AuthManager) -> None:
    alice = auth.create_user("alice")
    assert code_of(auth.create_api_key, "u_nobody") == ("unknown_user", 404)
    assert code_of(auth.create_api_key, 12) == ("invalid_argument", 400)
    assert code_of(auth.create_api_key, alice.user_id, label="x" * 129) == ("invalid_argument", 400)
    assert code_of(auth.create_api_key, alice.user_id, label="new\nline") == ("invalid_argument", 400)
    assert code_of(auth.create_api_key, alice.user_id, label=None) == ("invalid_argument", 400)
    assert auth.list_api_keys(alice.user_id) == []


def test_require_role(auth: AuthManager) -> None:
    trader, admin = auth.create_user("trader"), auth.create_user("boss", role="admin")
    auth.require_role(admin, "admin")
    auth.require_role(admin, "trader")  # admin includes trader
    auth.require_role(trader, "trader")
    assert code_of(auth.require_role, trader, "admin") == ("forbidden", 403)
    assert code_of(auth.require_role, None, "trader") == ("forbidden", 403)
    assert code_of(auth.require_role, "admin", "trader") == ("forbidden", 403)
    assert code_of(auth.require_role, User("u", "x", "superuser", 0.0), "trader") == ("forbidden", 403)
    assert code_of(auth.require_role, admin, "root") == ("invalid_argument", 400)


def test_error_codes_and_statuses() -> None:
    assert {code for code, status in AUTH_ERROR_STATUS.items() if status == 401} == {
        "missing_credentials",
        "malformed",
        "unknown_key",
        "revoked_key",
        "bad_signature",
        "stale_timestamp",
        "replayed",
        "bad_credentials",
        "bad_session",
        "expired_session",
    }
    assert AUTH_ERROR_STATUS["forbidden"] == 403
    error = AuthError("forbidden", "requires role admin")
    assert (error.code, error.status, str(error)) == ("forbidden", 403, "forbidden: requires role admin")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.status, copy.message) == ("forbidden", 403, "requires role admin")
    with pytest.raises(ValueError):
        AuthError("no_such_code")


def test_everything_persists_across_instances(make_manager: ManagerFactory, clock: FakeClock) -> None:
    first = make_manager()
    alice = first.create_user("alice", password="correct horse battery")
    admin = first.create_user("root", role="admin")
    creds = first.create_api_key(alice.user_id, label="bot")
    token = first.login("alice", "correct horse battery")
    first.close()

    clock.advance(2)
    second = make_manager()
    assert second.list_users() == [alice, admin]
    assert second.get_user_by_name("root") == admin
    assert [key["api_key"] for key in second.list_api_keys(alice.user_id)] == [creds["api_key"]]
    assert second.authenticate_session(token) == alice
    assert second.login("alice", "correct horse battery")
    timestamp = clock.ms()
    signature = sign_request(creds["api_secret"], timestamp, "GET", "/api/orders", b"")
    user = second.authenticate_request(
        api_key=creds["api_key"], timestamp=timestamp, signature=signature, method="GET", path="/api/orders"
    )
    assert user == alice
