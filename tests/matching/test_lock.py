"""One owner per data directory: the lock, and the exchange taking it before it touches anything."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from manticore_matching import DataDirectoryLock, DataDirectoryLocked, Exchange, JournalCorrupt
from tests.matching.exchange_streams import Clock, new_exchange


def tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with the hash of its bytes."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _fund_and_trade(exchange: Exchange) -> None:
    for user in ("alice", "bob"):
        exchange.deposit(user, "USD", "100000")
        exchange.deposit(user, "BTC", "10")
    exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")
    exchange.place_order("bob", "BTC/USD", "buy", "0.5", price="100")
    exchange.place_order("bob", "BTC/USD", "buy", "1", price="90")
    exchange.wait_durable(exchange.journal.appended, 10)


def test_a_second_lock_fails_at_once_naming_the_directory_and_the_holder(tmp_path: Path) -> None:
    with DataDirectoryLock.acquire(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / "LOCK").read_text() == f"{os.getpid()}\n"
        with pytest.raises(DataDirectoryLocked) as caught:
            DataDirectoryLock.acquire(tmp_path)
        assert caught.value.directory == tmp_path.resolve()
        assert caught.value.pid == os.getpid()
        assert str(tmp_path.resolve()) in str(caught.value)
        assert f"process {os.getpid()}" in str(caught.value)
    assert not lock.held
    assert (tmp_path / "LOCK").read_text() == ""
    DataDirectoryLock.acquire(tmp_path).release()  # free again


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from manticore_matching import DataDirectoryLock\n"
        "DataDirectoryLock.acquire(sys.argv[1])\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(DataDirectoryLocked) as caught:
            DataDirectoryLock.acquire(tmp_path)
        assert caught.value.pid == holder.pid
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait(10)
    assert (tmp_path / "LOCK").read_text() == f"{holder.pid}\n"  # the stale content does not matter
    DataDirectoryLock.acquire(tmp_path).release()


def test_a_lock_left_to_a_forked_child_of_a_killed_holder_is_waited_for(tmp_path: Path) -> None:
    """Session 12: a background checkpoint writer is a forked child that shares the holder's flock until
    it closes its copy. Killed holder, child still holding: acquire() waits for the child (up to
    ORPHAN_WAIT) instead of refusing; a live holder is still refused at once (test above)."""
    script = (
        "import os, sys, time\n"
        "from manticore_matching import DataDirectoryLock\n"
        "DataDirectoryLock.acquire(sys.argv[1])\n"
        "if os.fork() == 0:\n"
        "    sys.stdout.close()\n"
        "    time.sleep(0.5)\n"  # the orphan keeps the descriptor a while, then exits
        "    os._exit(0)\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
    finally:
        holder.kill()
        holder.wait(10)
    DataDirectoryLock.acquire(tmp_path).release()  # the orphan still holds it at first: waited for


def test_a_second_exchange_on_a_directory_in_use_changes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    with new_exchange(tmp_path, clock, checkpoint_every=0) as first:
        _fund_and_trade(first)
        first.checkpoint()  # a checkpoint and a new journal segment: what a second owner used to clobber
        first.place_order("alice", "BTC/USD", "sell", "0.2", price="95")
        first.wait_durable(first.journal.appended, 10)
        assert first.storage is not None
        first.storage.flush()
        before = tree(tmp_path)
        second = new_exchange(tmp_path, clock)
        with pytest.raises(DataDirectoryLocked, match=str(os.getpid())):
            second.open()
        second.close()  # as a failed start's clean-up would: still nothing
        assert tree(tmp_path) == before
        receipt = first.place_order("alice", "BTC/USD", "sell", "0.2", price="96")  # the owner goes on
        assert first.wait_durable(receipt.position, 10)
        expected = first.open_orders("alice")
    with new_exchange(tmp_path, clock) as again:
        assert again.open_orders("alice") == expected


def test_close_releases_the_directory(tmp_path: Path) -> None:
    exchange = new_exchange(tmp_path, Clock())
    exchange.open()
    assert exchange.directory_lock is not None and exchange.directory_lock.held
    exchange.close()
    assert exchange.directory_lock is None
    DataDirectoryLock.acquire(tmp_path).release()


def test_close_without_checkpoint_leaves_checkpoint_and_journal_alone(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    _fund_and_trade(exchange)
    expected = exchange.open_orders("bob")
    exchange.close(checkpoint=False)
    assert not (tmp_path / "checkpoint.json").exists()
    with new_exchange(tmp_path, clock) as restored:
        assert restored.replayed_records == exchange.journal.appended
        assert restored.open_orders("bob") == expected


def test_a_failed_open_writes_nothing_and_frees_the_directory(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    _fund_and_trade(exchange)
    exchange.close(checkpoint=False)
    (segment,) = exchange.journal.segments()
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(b"".join([*lines[:2], b"00000000 damaged\n", *lines[3:]]))
    before = tree(tmp_path / "journal")
    with pytest.raises(JournalCorrupt):
        new_exchange(tmp_path, clock).open()
    assert tree(tmp_path / "journal") == before  # no rotation, nothing deleted or repaired
    assert not (tmp_path / "checkpoint.json").exists()
    DataDirectoryLock.acquire(tmp_path).release()  # and the failed owner let go


def test_an_exchange_given_a_lock_checks_it_and_leaves_it_to_the_caller(tmp_path: Path) -> None:
    other = tmp_path / "other"
    with DataDirectoryLock.acquire(other) as wrong, pytest.raises(RuntimeError, match="not held on"):
        new_exchange(tmp_path, Clock(), lock=wrong).open()
    with DataDirectoryLock.acquire(tmp_path) as lock:
        exchange = new_exchange(tmp_path, Clock(), lock=lock)
        exchange.open()
        exchange.close()
        assert lock.held  # the caller's to release
        with pytest.raises(DataDirectoryLocked):
            new_exchange(tmp_path, Clock()).open()
    released = new_exchange(tmp_path, Clock(), lock=lock)
    with pytest.raises(RuntimeError, match="not held on"):
        released.open()
