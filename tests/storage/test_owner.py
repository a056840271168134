"""One exchange per database: the ownership lock on each backend (SQLite file, PostgreSQL, MariaDB)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from manticore_storage import DatabaseInUse, StorageManager
from manticore_storage.owner import DatabaseOwner


def test_a_second_owner_is_refused_until_the_first_closes(storage_url: str) -> None:
    first = StorageManager(storage_url)
    second = StorageManager(storage_url)
    try:
        first.claim_ownership()
        first.claim_ownership()  # idempotent
        with pytest.raises(DatabaseInUse, match="in use by another Manticore exchange"):
            second.claim_ownership()
        first.close()
        second.claim_ownership()  # the first closed: free again
    finally:
        first.close()
        second.close()


def test_a_killed_owner_leaves_no_lock_behind(storage_url: str, tmp_path: Path) -> None:
    holder = textwrap.dedent(
        f"""
        import sys, time
        from manticore_storage import StorageManager
        storage = StorageManager({storage_url!r})
        storage.claim_ownership()
        print("held", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        storage = StorageManager(storage_url)
        try:
            with pytest.raises(DatabaseInUse):
                storage.claim_ownership()
            process.kill()  # kill -9: the server session / the flock ends with the process
            process.wait(10)
            deadline = time.monotonic() + 10  # a database server notices the closed socket at once
            while True:
                try:
                    storage.claim_ownership()
                    break
                except DatabaseInUse:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            storage.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_released_lock_is_free_at_once(storage_url: str) -> None:
    """Regression: release() only closed the session that held the lock, and a database server frees
    a closed session's lock when it gets to it, so a claim right after a close (a quick restart,
    here on a pooled connection, which skips the slow connect) was sometimes refused."""
    engines = [create_engine(storage_url), create_engine(storage_url)]
    try:
        for round_number in range(100):
            holder, waiter = engines[round_number % 2], engines[(round_number + 1) % 2]
            owner = DatabaseOwner.acquire(holder, "the test database")
            with pytest.raises(DatabaseInUse):
                DatabaseOwner.acquire(waiter, "the test database")  # leaves a connection in its pool
            owner.release()
            DatabaseOwner.acquire(waiter, "the test database").release()
    finally:
        for engine in engines:
            engine.dispose()
