"""Session 23 (h3): the journal's rotation creates the next segment, and syncs its directory entry,
without the writer's lock; the writer switches in the round that reaches the segment's first
position (fixed by its name in advance)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import journal as journal_module
from manticore_matching.journal import Journal


def _positions(path: Path) -> list[int]:
    return [json.loads(line[9:])["n"] for line in path.read_bytes().splitlines()]


def _assert_names_match(journal: Journal) -> None:
    """Every segment with lines begins at the position its name says, and positions rise by one
    across segments."""
    previous = None
    for path in journal.segments():
        positions = _positions(path)
        if positions:
            assert positions[0] == int(path.name[len("journal-") : -len(".log")])
            assert positions == list(range(positions[0], positions[-1] + 1))
            if previous is not None:
                assert positions[0] == previous + 1
            previous = positions[-1]


def _started(directory: Path, *, fsync: bool = True) -> Journal:
    journal = Journal(directory, fsync=fsync)
    list(journal.read())
    journal.start()
    return journal


def test_rounds_go_on_while_the_rotation_creates_and_syncs_the_next_segment(tmp_path: Path) -> None:
    """The rotation's directory sync does not hold the writer's lock: a record appended while it
    runs is made durable before it returns (before this session, the rounds waited for it)."""
    journal = _started(tmp_path)
    for i in range(3):
        journal.append({"i": i})
    assert journal.wait(3, 10)
    sync = journal._sync_directory
    durable_during_sync: list[bool] = []

    def slow_sync() -> None:
        if not durable_during_sync:
            position = journal.append({"i": "during"})
            durable_during_sync.append(journal.wait(position, 2))
        sync()

    journal._sync_directory = slow_sync  # type: ignore[method-assign]
    journal.rotate(3)
    assert durable_during_sync == [True]
    journal._sync_directory = sync  # type: ignore[method-assign]
    journal.append({"i": "after"})
    assert journal.wait(journal.appended, 10)
    journal.close()
    _assert_names_match(journal)
    assert [r["n"] for r in Journal(tmp_path).read(after=3)] == [4, 5]


def test_a_writer_that_passes_the_chosen_position_gets_a_segment_further_ahead(tmp_path: Path) -> None:
    """Records written while the segment was being created take its first position: the unused file
    goes and the next one begins beyond them; names still match the first records."""
    journal = _started(tmp_path)
    journal.append({"i": 0})
    assert journal.wait(1, 10)
    sync = journal._sync_directory
    calls = 0

    def busy_sync() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # during the first attempt the writer writes past the chosen position
            for i in range(3):
                journal.append({"i": i})
            assert journal.wait(journal.appended, 10)
        sync()

    journal._sync_directory = busy_sync  # type: ignore[method-assign]
    journal.rotate(1)
    journal._sync_directory = sync  # type: ignore[method-assign]
    assert calls >= 2
    names = [path.name for path in journal.segments()]
    # 2 was taken meanwhile (2-4 were written): the next try is twice those 3 records beyond 5
    assert names == ["journal-0000000000000001.log", "journal-0000000000000011.log"]
    for i in range(8):
        journal.append({"i": i})
    assert journal.wait(journal.appended, 10)
    journal.close()
    _assert_names_match(journal)
    assert [r["n"] for r in Journal(tmp_path).read(after=1)] == list(range(2, 13))
    assert _positions(tmp_path / "journal-0000000000000011.log") == [11, 12]


def _five_records_then_a_rotation(tmp_path: Path) -> tuple[Path, Path]:
    """Five durable records, a rotation at checkpoint 3 (the next segment created, empty), closed:
    the two segments."""
    journal = _started(tmp_path)
    for i in range(5):
        journal.append({"i": i})
    assert journal.wait(5, 10)
    journal.rotate(3)
    journal.close()
    old, fresh = Journal(tmp_path).segments()
    return old, fresh


def test_a_crash_before_the_new_segment_is_reached_repairs_the_old_ones_torn_tail(tmp_path: Path) -> None:
    """The rotation created the next segment (empty); a crash tore the last batch of the old one: it
    is a torn tail (never acknowledged), not corruption, and the journal continues in the new one."""
    old, fresh = _five_records_then_a_rotation(tmp_path)
    assert fresh.stat().st_size == 0
    with old.open("ab") as handle:
        handle.write(b'0badc0de {"n":6,"i"')
    reopened = Journal(tmp_path)
    assert [r["n"] for r in reopened.read(after=3)] == [4, 5]
    reopened.start()
    assert reopened.append({"i": 5}) == 6
    assert reopened.wait(6, 10)
    reopened.close()
    assert Journal(tmp_path).segments() == [old, fresh]
    assert _positions(fresh) == [6]
    _assert_names_match(reopened)


def test_an_empty_newest_segment_beyond_the_next_position_goes_at_start(tmp_path: Path) -> None:
    """A crash lost the last records before the new segment's first position (they were never
    durable): the empty segment's name no longer fits, so start() removes it and appends go on in
    the old segment."""
    old, fresh = _five_records_then_a_rotation(tmp_path)
    lines = old.read_bytes().splitlines(keepends=True)
    old.write_bytes(b"".join(lines[:-1]))  # position 5 never reached the disk
    reopened = Journal(tmp_path)
    assert [r["n"] for r in reopened.read()] == [1, 2, 3, 4]
    reopened.start()
    assert not fresh.exists()
    assert reopened.append({"i": 4}) == 5
    assert reopened.wait(5, 10)
    reopened.close()
    assert Journal(tmp_path).segments() == [old]
    _assert_names_match(reopened)


@settings(max_examples=20, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10)), min_size=1, max_size=8),
    fsync=st.booleans(),
)
def test_rotations_concurrent_with_appends_keep_names_and_records(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, int]], fsync: bool
) -> None:
    """A thread appends (a record every ~0.1 ms) while another rotates at checkpoints up to the durable
    position: every segment with lines begins at its name's position, positions rise by one across
    segments, every record after the last checkpoint is kept, and a reopened journal reads them all
    and continues."""
    directory = tmp_path_factory.mktemp("journal")
    journal = _started(directory, fsync=fsync)
    stop = threading.Event()

    def appender() -> None:
        while not stop.is_set():
            journal.append({"x": 1})
            time.sleep(0.0001)

    thread = threading.Thread(target=appender)
    thread.start()
    checkpoint = 0
    try:
        for appends, back in steps:
            target = journal.appended + appends
            while journal.appended < target:
                pass
            assert journal.wait(target, 10)
            checkpoint = max(checkpoint, target - back)
            journal.rotate(checkpoint)
    finally:
        stop.set()
        thread.join()
    end = journal.appended
    assert journal.wait(end, 10)
    journal.close()
    assert journal.records_written == end  # the lines of a round split between segments count too
    _assert_names_match(journal)
    reopened = Journal(directory, fsync=fsync)
    assert [r["n"] for r in reopened.read(after=checkpoint)] == list(range(checkpoint + 1, end + 1))
    reopened.start()
    assert reopened.append({"x": 2}) == end + 1
    assert reopened.wait(end + 1, 10)
    reopened.close()
    _assert_names_match(reopened)


# ---------------------------------------------------------------- one synchronous write per round


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the descriptor of every ``os.fsync`` call (each still syncs), in order."""
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    return synced


@pytest.mark.skipif(not hasattr(os, "O_DSYNC"), reason="the platform has no O_DSYNC")
def test_segments_are_written_with_o_dsync_and_no_fsync_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``fsync`` every segment (the first, and the next one a rotation creates) is opened with
    ``O_DSYNC``, so a round is one ``write`` and no ``fsync`` of the segment."""
    journal = _started(tmp_path)
    synced = _count_fsyncs(monkeypatch)
    for i in range(3):
        journal.append({"i": i})
        assert journal.wait(journal.appended, 10)
    assert fcntl.fcntl(journal._file.fileno(), fcntl.F_GETFL) & os.O_DSYNC
    first_segment = journal._file.fileno()
    journal.rotate(3)
    journal.append({"i": 3})
    assert journal.wait(4, 10)
    assert journal._file_first == 4
    assert fcntl.fcntl(journal._file.fileno(), fcntl.F_GETFL) & os.O_DSYNC
    journal.close()
    assert first_segment not in synced  # the rounds were not fsynced
    assert len(synced) <= 2  # the directory syncs of the rotation
    assert [r["n"] for r in Journal(tmp_path).read(after=3)] == [4]


def test_without_o_dsync_each_round_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the platform has no ``O_DSYNC`` the journal syncs every round with ``os.fsync``."""
    monkeypatch.setattr(journal_module, "_O_DSYNC", 0)
    journal = _started(tmp_path)
    synced = _count_fsyncs(monkeypatch)
    for i in range(3):
        journal.append({"i": i})
        assert journal.wait(journal.appended, 10)
    segment = journal._file.fileno()
    journal.close()
    assert synced.count(segment) == journal.batches == 3


class _ShortWrites:
    """A segment whose ``write`` takes at most ``most`` bytes at a time."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        taken = bytes(data[: self.most])
        self.data += taken
        return len(taken)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return -1


@settings(max_examples=60, deadline=None)
@given(most=st.integers(1, 64), lines=st.lists(st.binary(min_size=0, max_size=80), max_size=8))
def test_a_short_write_is_continued(
    tmp_path_factory: pytest.TempPathFactory, most: int, lines: list[bytes]
) -> None:
    """An unbuffered write may take part of the round's bytes: the rest is written after it."""
    journal = Journal(tmp_path_factory.mktemp("journal"), fsync=True)
    journal._write_syncs = True  # no fsync of the fake's descriptor
    handle = _ShortWrites(most)
    data = b"".join(lines)
    journal._write(handle, data)
    assert bytes(handle.data) == data
