"""The command journal: group commit, recovery of a torn tail, corruption detection, rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching.journal import Journal, JournalCorrupt


def _write(directory: Path, count: int) -> Journal:
    journal = Journal(directory)
    list(journal.read())
    journal.start()
    for i in range(count):
        journal.append({"op": "test", "i": i})
    assert journal.wait(journal.appended, 10)
    journal.close()
    return journal


def test_records_come_back_in_order_with_positions(tmp_path: Path) -> None:
    _write(tmp_path, 50)
    journal = Journal(tmp_path)
    records = list(journal.read())
    assert [r["n"] for r in records] == list(range(1, 51))
    assert [r["i"] for r in records] == list(range(50))
    assert journal.appended == journal.durable == 50


def test_appends_after_reopen_continue_the_positions(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    assert journal.append({"op": "more"}) == 4
    assert journal.wait(4, 10)
    journal.close()
    assert [r["n"] for r in Journal(tmp_path).read()] == [1, 2, 3, 4]


def test_group_commit_writes_many_records_per_fsync(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    for i in range(2000):
        journal.append({"i": i})
    assert journal.wait(2000, 30)
    journal.close()
    assert journal.records_written == 2000
    assert journal.batches < 2000


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_a_torn_last_line_is_cut_off(tmp_path: Path, cut: int) -> None:
    _write(tmp_path, 10)
    (segment,) = Journal(tmp_path).segments()
    data = segment.read_bytes()
    segment.write_bytes(data[:-cut])
    journal = Journal(tmp_path)
    assert [r["n"] for r in journal.read()] == list(range(1, 10))
    assert segment.read_bytes() == data[: data.rstrip(b"\n").rfind(b"\n") + 1]
    journal.start()
    assert journal.append({"op": "after repair"}) == 10
    assert journal.wait(10, 10)
    journal.close()
    assert [r["n"] for r in Journal(tmp_path).read()] == list(range(1, 11))


def test_a_damaged_line_before_the_end_is_corruption(tmp_path: Path) -> None:
    _write(tmp_path, 10)
    (segment,) = Journal(tmp_path).segments()
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"i":3', b'"i":4')  # checksum no longer matches
    segment.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match="line 4"):
        list(Journal(tmp_path).read())


def test_a_missing_position_is_corruption(tmp_path: Path) -> None:
    _write(tmp_path, 5)
    (segment,) = Journal(tmp_path).segments()
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(b"".join(lines[:2] + lines[3:]))
    with pytest.raises(JournalCorrupt, match="position 3 is missing"):
        list(Journal(tmp_path).read())


def test_rotation_keeps_only_what_follows_the_checkpoint(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    for i in range(5):
        journal.append({"i": i})
    assert journal.wait(5, 10)
    journal.rotate(5)
    journal.rotate(5)  # a second checkpoint at the same position keeps the fresh segment
    journal.append({"i": 5})
    assert journal.wait(6, 10)
    journal.close()
    segments = Journal(tmp_path).segments()
    assert len(segments) == 1
    assert [r["n"] for r in Journal(tmp_path).read(after=5)] == [6]
    with pytest.raises(JournalCorrupt, match="position 1 is missing"):
        list(Journal(tmp_path).read())


def test_rotate_refuses_a_checkpoint_beyond_the_durable_position(tmp_path: Path) -> None:
    """Session 12: rotate() no longer needs a quiet journal (background checkpoints rotate while
    records are appended), but a checkpoint must never be ahead of what the journal holds on disk."""
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    journal.append({"i": 0})
    journal.wait(1, 10)
    with pytest.raises(ValueError):
        journal.rotate(2)
    journal.rotate(0)  # covers nothing: nothing goes
    assert [r["i"] for r in journal.durable_records()] == [0]
    journal.close()


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 20)), min_size=1, max_size=12))
def test_rotate_keeps_every_record_after_the_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, int]]
) -> None:
    """Appends and rotations at checkpoints anywhere up to the durable position, as background
    checkpoints do: after each rotation the segments still hold every record after the checkpoint
    (a replay from it finds no gap), a segment goes only when all its records are covered, and a
    reopened journal reads the rest and continues the positions."""
    directory = tmp_path_factory.mktemp("journal")
    journal = Journal(directory, fsync=False)
    list(journal.read())
    journal.start()
    checkpoint = 0
    for appends, back in steps:
        for _ in range(appends):
            journal.append({"x": 1})
        assert journal.wait(journal.appended, 10)
        checkpoint = max(checkpoint, journal.durable - back)  # checkpoints only move forward
        journal.rotate(checkpoint)
        held = [r["n"] for r in journal.durable_records()]
        if held:
            assert held[0] <= checkpoint + 1  # nothing after the checkpoint went
            assert held == list(range(held[0], journal.durable + 1))
        else:
            assert journal.durable == checkpoint
        for path in journal.segments()[:-1]:  # every older segment holds a record after the checkpoint
            last = _last_position(path)
            assert last is None or last > checkpoint
    end = journal.appended
    journal.close()
    reopened = Journal(directory, fsync=False)
    assert [r["n"] for r in reopened.read(after=checkpoint)] == list(range(checkpoint + 1, end + 1))
    reopened.start()
    assert reopened.append({"x": 2}) == end + 1
    reopened.close()


def _last_position(path: Path) -> int | None:
    lines = path.read_bytes().splitlines()
    return json.loads(lines[-1][9:])["n"] if lines else None


def test_a_running_journal_is_read_without_repairs(tmp_path: Path) -> None:
    """Regression: read() on a running journal reset its counters and could cut a line being written."""
    journal = Journal(tmp_path)
    list(journal.read())
    journal.start()
    for i in range(5):
        journal.append({"i": i})
    assert journal.wait(5, 10)
    with pytest.raises(RuntimeError, match="before start"):
        list(journal.read())
    assert [r["i"] for r in journal.durable_records()] == [0, 1, 2, 3, 4]
    assert [r["n"] for r in journal.durable_records(after=3)] == [4, 5]
    assert (journal.appended, journal.durable) == (5, 5)
    journal.close()
