"""Secrets at rest and in output: the master key file, sealed API secrets, and nothing secret in any repr,
str, error or log record."""

from __future__ import annotations

import base64
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from manticore_auth import AuthConfigError, AuthError, AuthManager, load_or_create_master_key, sign_request
from manticore_auth import schema as auth_schema

from .conftest import FakeClock, ManagerFactory

PASSWORD = "correct horse battery staple"


# ---------------------------------------------------------------------- the master key file


def test_master_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "master.key"
    key = load_or_create_master_key(path)
    assert isinstance(key, bytes) and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.urlsafe_b64decode(path.read_bytes().strip()) == key
    assert load_or_create_master_key(str(path)) == key
    assert load_or_create_master_key(tmp_path / "other.key") != key
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.key"]  # no temporary file left


def test_concurrent_creators_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        keys.append(load_or_create_master_key(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    load_or_create_master_key(path)
    path.chmod(0o644)
    with pytest.raises(AuthConfigError, match="chmod 600"):
        load_or_create_master_key(path)


@pytest.mark.parametrize("content", [b"", b"not base64 at all!", base64.urlsafe_b64encode(b"short") + b"\n"])
def test_a_corrupt_key_file_is_refused_without_echoing_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(AuthConfigError) as info:
        load_or_create_master_key(path)
    assert content.decode() not in str(info.value) or not content


@pytest.mark.parametrize("key", [b"", b"x" * 31, b"x" * 33, "x" * 32, None])
def test_master_key_must_be_32_bytes(key: object) -> None:
    with pytest.raises(AuthConfigError, match="32 bytes"):
        AuthManager("sqlite://", master_key=key)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- sealed API secrets


def test_secrets_are_not_stored_in_plain_text(auth: AuthManager, auth_url: str, master_key: bytes) -> None:
    alice = auth.create_user("alice", password=PASSWORD)
    creds = auth.create_api_key(alice.user_id, label="bot")
    token = auth.login("alice", PASSWORD)
    secrets = [creds["api_secret"], PASSWORD, token, master_key.hex(), base64.b64encode(master_key).decode()]

    dumped = []
    with auth.engine.connect() as connection:
        for table in auth_schema.metadata.sorted_tables:
            dumped.extend(repr(dict(row)) for row in connection.execute(select(table)).mappings())
        [row] = connection.execute(select(auth_schema.api_keys)).mappings().all()
    text = "\n".join(dumped)
    assert creds["api_key"] in text and alice.user_id in text  # the dump is real
    for secret in secrets:
        assert secret not in text
    assert len(row["secret_nonce"]) == 12
    assert row["secret_key_id"] == auth.key_id
    assert creds["api_secret"].encode() not in bytes(row["secret_ciphertext"])
    assert master_key not in bytes(row["secret_ciphertext"])

    if auth_url.startswith("sqlite:///"):  # the raw database files too (main file and write-ahead log)
        database = Path(auth_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert creds["api_key"].encode() in raw
        for secret in secrets:
            assert secret.encode() not in raw
        assert master_key not in raw


def test_a_wrong_master_key_is_refused_at_start(make_manager: ManagerFactory, master_key: bytes) -> None:
    first = make_manager()
    first.create_api_key(first.create_user("alice").user_id)
    other_key = bytes(reversed(master_key))
    with pytest.raises(AuthConfigError, match=first.key_id) as info:
        make_manager(master_key=other_key)
    assert master_key.hex() not in str(info.value) and other_key.hex() not in str(info.value)


def test_a_revoked_key_under_an_old_master_key_does_not_block_the_start(
    make_manager: ManagerFactory, master_key: bytes
) -> None:
    first = make_manager()
    creds = first.create_api_key(first.create_user("alice").user_id)
    first.revoke_api_key(creds["api_key"])
    assert make_manager(master_key=bytes(reversed(master_key))).list_users()


@pytest.mark.parametrize("tamper", ["flip", "swap"])
def test_an_altered_secret_row_fails_loudly(
    make_manager: ManagerFactory, clock: FakeClock, tamper: str
) -> None:
    auth = make_manager()
    alice = auth.create_user("alice")
    victim, other = auth.create_api_key(alice.user_id), auth.create_api_key(alice.user_id)
    table = auth_schema.api_keys
    with auth.engine.begin() as connection:
        rows = {row["api_key"]: row for row in connection.execute(select(table)).mappings()}
        source = rows[victim["api_key"]] if tamper == "flip" else rows[other["api_key"]]
        ciphertext = bytearray(source["secret_ciphertext"])
        if tamper == "flip":
            ciphertext[0] ^= 1
        connection.execute(
            update(table)
            .where(table.c.api_key == victim["api_key"])
            .values(secret_ciphertext=bytes(ciphertext), secret_nonce=source["secret_nonce"])
        )
    fresh = make_manager()  # nothing cached
    timestamp = clock.ms()
    with pytest.raises(AuthConfigError, match="failed authentication"):
        fresh.authenticate_request(
            api_key=victim["api_key"],
            timestamp=timestamp,
            signature=sign_request(victim["api_secret"], timestamp, "GET", "/", b""),
            method="GET",
            path="/",
        )


# ---------------------------------------------------------------------- nothing secret in output


def test_no_secret_in_any_repr_str_or_log_record(
    make_manager: ManagerFactory, master_key: bytes, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = make_manager()
    alice = auth.create_user("alice", password=PASSWORD)
    auth.create_user("root", role="admin")
    creds = auth.create_api_key(alice.user_id, label="bot")
    token = auth.login("alice", PASSWORD)
    outputs: list[object] = [auth, alice, auth.list_users(), auth.list_api_keys(alice.user_id)]

    timestamp = clock.ms()
    signature = sign_request(creds["api_secret"], timestamp, "POST", "/api/orders", b"{}")
    request: dict[str, Any] = {
        "api_key": creds["api_key"],
        "timestamp": timestamp,
        "signature": signature,
        "method": "POST",
        "path": "/api/orders",
        "body": b"{}",
    }
    outputs.append(auth.authenticate_request(**request))
    failures: list[tuple[Any, dict[str, Any]]] = [
        (auth.authenticate_request, request),  # replayed
        (auth.authenticate_request, {**request, "body": b"[]"}),
        (auth.authenticate_request, {**request, "signature": creds["api_secret"]}),
        (auth.authenticate_request, {**request, "api_key": creds["api_secret"]}),
        (auth.authenticate_request, {**request, "timestamp": creds["api_secret"]}),
        (auth.login, {"username": "alice", "password": PASSWORD + "!"}),
        (auth.login, {"username": PASSWORD, "password": PASSWORD}),
        (auth.authenticate_session, {"token": token[:-1]}),
        (auth.set_password, {"user_id": alice.user_id, "password": "short"}),
        (auth.create_user, {"username": PASSWORD}),
    ]
    for call, kwargs in failures:
        with pytest.raises(AuthError) as info:
            call(**kwargs)
        outputs.extend([info.value, info.value.message])
    outputs.extend([auth.authenticate_session(token), auth._keys, auth._box, auth._replay])
    outputs.extend(auth._keys._entries.values())
    auth.set_password(alice.user_id, PASSWORD[::-1])
    auth.revoke_api_key(creds["api_key"])
    auth.logout(token)
    auth.close()

    texts = [repr(item) for item in outputs] + [str(item) for item in outputs]
    for record in caplog.records:
        texts.extend([record.getMessage(), repr(record.args), record.exc_text or ""])
    assert any("created API key" in text for text in texts)  # the log was captured
    everything = "\n".join(texts)
    for secret in [
        creds["api_secret"],
        PASSWORD,
        PASSWORD[::-1],
        token,
        token[:-1],
        master_key.hex(),
        repr(master_key),
        base64.b64encode(master_key).decode(),
    ]:
        assert secret not in everything
