"""The journal's ``appended``, ``durable`` and ``healthy``: plain attributes now (a property was a Python
call on every command), kept as the properties were: positions as they advance, healthy until the
writer fails or the journal closes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from manticore_matching.journal import Journal, JournalClosed


def test_positions_advance_and_closing_makes_it_unhealthy(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", fsync=False)
    assert (journal.appended, journal.durable, journal.healthy) == (0, 0, True)
    journal.start()
    assert journal.append({"op": "a"}) == 1 and journal.append({"op": "b"}) == 2
    assert journal.appended == 2
    assert journal.wait(2, 10)
    assert journal.durable == 2 and journal.healthy
    journal.close()
    assert not journal.healthy
    with pytest.raises(JournalClosed):
        journal.append({"op": "c"})
    assert (journal.appended, journal.durable) == (2, 2)


class _FailingFile:
    def __init__(self) -> None:
        self.failed = threading.Event()

    def write(self, data: bytes) -> int:
        self.failed.set()
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError(9, "Bad file descriptor")

    def close(self) -> None:
        pass


def test_a_failed_write_makes_it_unhealthy(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", fsync=False)
    journal.start()
    real = journal._file
    journal._file = _FailingFile()
    try:
        journal.append({"op": "a"})
        with pytest.raises(JournalClosed):
            journal.wait(1, 10)
        assert not journal.healthy and journal.durable == 0 and journal.appended == 1
    finally:
        journal._file = real
        journal.close()


def test_a_failure_recorded_directly_is_seen_by_healthy_until_cleared(tmp_path: Path) -> None:
    """What tests inject (``journal._failure = OSError(...)``, as a failed write records it) turns the
    journal unhealthy and refuses appends; clearing it makes it healthy again, unless it is closed."""
    journal = Journal(tmp_path / "journal", fsync=False)
    journal.start()
    try:
        journal._failure = OSError("the disk is gone")
        assert not journal.healthy
        with pytest.raises(JournalClosed):
            journal.append({"op": "a"})
        journal._failure = None
        assert journal.healthy and journal.append({"op": "b"}) == 1
    finally:
        journal.close()
    journal._failure = None
    assert not journal.healthy  # closed
