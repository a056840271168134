"""Auth fixtures: every database test runs on SQLite, on PostgreSQL when MANTICORE_TEST_POSTGRES_URL is
set and on MariaDB when MANTICORE_TEST_MARIADB_URL is set (a server case starts by dropping the auth
tables, and only those). Clocks are injected; scrypt runs with cheap parameters except where a test
says otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from manticore_auth import AuthManager, ScryptParams
from tests.databases import drop_tables, server_url

AUTH_TABLES = ("manticore_sessions", "manticore_api_keys", "manticore_users", "manticore_auth_schema_version")
CHEAP_SCRYPT = ScryptParams(n=2**4, r=1, p=1)
#: An exact instant in seconds whose millisecond value is an integer.
T0 = 1_700_000_000.0


class FakeClock:
    """A settable clock in seconds since the epoch."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def ms(self, offset_seconds: float = 0.0) -> str:
        """The timestamp a client would send ``offset_seconds`` from now."""
        return str(round((self.now + offset_seconds) * 1000))


def reset_postgres(url: str) -> None:
    """Drop the auth tables (and only those) of the server database at ``url``."""
    drop_tables(url, AUTH_TABLES)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def auth_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty auth database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'auth.db'}"
        return
    url = server_url(request.param)
    reset_postgres(url)
    yield url
    reset_postgres(url)


@pytest.fixture
def master_key() -> bytes:
    return bytes(range(32))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


ManagerFactory = Callable[..., AuthManager]


@pytest.fixture
def make_manager(auth_url: str, master_key: bytes, clock: FakeClock) -> Iterator[ManagerFactory]:
    """Build managers on the test's database (same URL, key and clock unless overridden); all closed after."""
    made: list[AuthManager] = []

    def make(**overrides: object) -> AuthManager:
        options: dict[str, object] = {"master_key": master_key, "clock": clock, "scrypt_params": CHEAP_SCRYPT}
        options.update(overrides)
        manager = AuthManager(auth_url, **options)  # type: ignore[arg-type]
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def auth(make_manager: ManagerFactory) -> AuthManager:
    return make_manager()
