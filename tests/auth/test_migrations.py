"""The auth schema's own numbered migrations, engines and URLs, and AuthManager's arguments."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from manticore_auth import AuthConfigError, AuthManager
from manticore_auth.migrations import CURRENT_VERSION, upgrade, version_table

from .conftest import AUTH_TABLES, CHEAP_SCRYPT, ManagerFactory


def test_tables_and_version_are_created_on_first_use(auth: AuthManager) -> None:
    assert auth.schema_version == CURRENT_VERSION == 1
    assert set(AUTH_TABLES) <= set(inspect(auth.engine).get_table_names())
    assert upgrade(auth.engine) == 1  # idempotent
    with auth.engine.connect() as connection:
        rows = connection.execute(select(version_table.c.version, version_table.c.description)).all()
    assert [tuple(row) for row in rows] == [(1, "users, api keys, sessions")]


def test_concurrent_start_ups_share_one_schema(auth_url: str, master_key: bytes) -> None:
    managers: list[AuthManager] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            managers.append(AuthManager(auth_url, master_key=master_key, scrypt_params=CHEAP_SCRYPT))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert {manager.schema_version for manager in managers} == {1}
        managers[0].create_user("alice")
        assert [user.username for user in managers[-1].list_users()] == ["alice"]
    finally:
        for manager in managers:
            manager.close()


def test_shares_a_database_with_storage(tmp_path: Path, master_key: bytes) -> None:
    from manticore_storage import StorageManager

    url = f"sqlite:///{tmp_path / 'exchange.db'}"
    storage = StorageManager(url)
    auth = AuthManager(url, master_key=master_key, scrypt_params=CHEAP_SCRYPT)
    try:
        tables = set(inspect(auth.engine).get_table_names())
        assert {"manticore_schema_version", "manticore_auth_schema_version", "manticore_orders"} <= tables
        auth.create_user("alice")
    finally:
        auth.close()
        storage.close()


def test_a_given_engine_is_used_and_not_disposed(tmp_path: Path, master_key: bytes) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'given.db'}")
    with AuthManager(engine, master_key=master_key, scrypt_params=CHEAP_SCRYPT) as auth:
        assert auth.engine is engine
        auth.create_user("alice")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT username FROM manticore_users")).scalar_one() == "alice"
    engine.dispose()


def test_in_memory_sqlite_keeps_one_database(master_key: bytes) -> None:
    with AuthManager("sqlite://", master_key=master_key, scrypt_params=CHEAP_SCRYPT) as auth:
        auth.create_user("alice")
        assert auth.get_user_by_name("alice") is not None


@pytest.mark.parametrize(
    "options",
    [
        {"window_seconds": 0},
        {"window_seconds": -1},
        {"window_seconds": math.nan},
        {"window_seconds": math.inf},
        {"window_seconds": "30"},
        {"max_future_seconds": -1},
        {"session_seconds": 0},
        {"clock": 5},
        {"scrypt_params": (2, 1, 1)},
        {"key_cache_seconds": -1},
        {"key_cache_size": -1},
        {"key_cache_size": 1.5},
    ],
)
def test_bad_arguments_are_refused(master_key: bytes, options: dict[str, object]) -> None:
    with pytest.raises(AuthConfigError):
        AuthManager("sqlite://", master_key=master_key, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", [42, "not a url at all", "nosuchdialect://x"])
def test_bad_urls_are_refused(master_key: bytes, url: object) -> None:
    with pytest.raises(AuthConfigError):
        AuthManager(url, master_key=master_key)  # type: ignore[arg-type]


def test_the_key_cache_can_be_disabled(make_manager: ManagerFactory) -> None:
    auth = make_manager(key_cache_size=0)
    assert auth.create_api_key(auth.create_user("alice").user_id)
    assert len(auth._keys) == 0
