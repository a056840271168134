"""The journal's minimum interval between group-commit rounds (``commit_interval``, issue 17).

Rounds start at least ``commit_interval`` apart while appends arrive concurrently (records were
waiting when the last round ended), so a steady flow of appends is gathered into fewer synced writes;
a record appended after a quiet interval, or after a round that left nothing waiting (a client that
sends its next command once the last is answered), is written at once; :meth:`Journal.close`
ends a round's wait; nothing is durable (``wait``) before its round has written it; the option reaches
the journal from :class:`~manticore_matching.Exchange`, ``ServerOptions`` and ``manticore serve``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_api import cli
from manticore_api.server import ServerOptions
from manticore_matching import Exchange
from manticore_matching.journal import DEFAULT_COMMIT_INTERVAL, SERVING_COMMIT_INTERVAL, Journal


def _started(directory: Path, interval: float, *, fsync: bool = False) -> Journal:
    journal = Journal(directory, fsync=fsync, commit_interval=interval)
    list(journal.read())
    journal.start()
    return journal


def _first_round_leaves_one_waiting(journal: Journal) -> None:
    """Append a first record and, while its round is being written, a second (as a concurrent appender
    would): the first round ends with a record waiting, so the next round waits out the interval.
    Returns once the first record is durable (position 1; the second is position 2)."""
    write = journal._write

    def write_while_another_arrives(handle: Any, data: bytes) -> None:
        del journal._write  # once: the class's method again
        journal.append({"op": "arrived during the first write"})
        write(handle, data)

    journal._write = write_while_another_arrives  # type: ignore[method-assign]
    journal.append({"op": "first"})
    assert journal.wait(1, 10)


def _burst(journal: Journal, seconds: float) -> int:
    """Append from another thread without pause for ``seconds``; the number of records appended."""
    count = 0

    def appender() -> None:
        nonlocal count
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            journal.append({"op": "burst", "i": count})
            count += 1
            if count % 64 == 0:
                time.sleep(0)  # let the writer have the GIL now and then, as the event loop does

    thread = threading.Thread(target=appender)
    thread.start()
    thread.join()
    return count


def test_the_default_interval_is_none_back_to_back_rounds(tmp_path: Path) -> None:
    assert DEFAULT_COMMIT_INTERVAL == 0.0
    assert Journal(tmp_path).commit_interval == DEFAULT_COMMIT_INTERVAL


def test_rounds_under_a_burst_start_at_least_the_interval_apart(tmp_path: Path) -> None:
    interval = 0.1
    journal = _started(tmp_path, interval)
    started = time.monotonic()
    count = _burst(journal, 0.6)
    assert journal.wait(count, 10)
    elapsed = time.monotonic() - started
    journal.close()
    # A round that followed a gathering round starts no sooner than the interval after it; one that
    # followed a round of a single record with nothing waiting (the appender had no turn) starts at
    # once, but carries what waited: at most every other round is not spaced.
    assert journal.batches <= 2 * (elapsed / interval + 1)
    assert journal.records_written == count
    assert count > 20 * journal.batches  # many records per round, not one fsync each
    assert [r["n"] for r in Journal(tmp_path).read()] == list(range(1, count + 1))


def test_without_an_interval_a_burst_takes_many_more_rounds(tmp_path: Path) -> None:
    journal = _started(tmp_path, 0.0)
    count = _burst(journal, 0.3)
    assert journal.wait(count, 10)
    journal.close()
    assert journal.batches > 0.3 / 0.1 + 1  # what the interval of the test above would allow
    assert journal.records_written == count


def test_the_first_record_is_written_at_once(tmp_path: Path) -> None:
    journal = _started(tmp_path, 30.0, fsync=True)
    try:
        assert journal.append({"op": "first"}) == 1
        assert journal.wait(1, 10)  # not after 30 s
    finally:
        journal.close()


def test_a_record_after_a_quiet_interval_is_written_at_once(tmp_path: Path) -> None:
    interval = 1.0
    journal = _started(tmp_path, interval)
    try:
        journal.append({"op": "first"})
        assert journal.wait(1, 10)
        time.sleep(interval * 1.1)  # quiet for longer than the interval
        position = journal.append({"op": "after the quiet"})
        assert journal.wait(position, interval * 0.9)  # no wait for another interval
        assert journal.batches == 2
    finally:
        journal.close()


def test_a_record_soon_after_a_round_waits_for_the_interval_and_is_durable_only_then(
    tmp_path: Path,
) -> None:
    journal = _started(tmp_path, 30.0, fsync=True)
    _first_round_leaves_one_waiting(journal)
    position = journal.append({"op": "gathered"})
    assert not journal.wait(position, 0.3)  # its round has not started: not durable, not acknowledged
    assert not journal.wait(2, 0.01)
    assert journal.durable == 1
    assert [r["n"] for r in journal.durable_records()] == [1]
    started = time.monotonic()
    journal.close()  # ends the wait and writes the gathered records
    assert time.monotonic() - started < 10
    assert journal.durable == 3
    assert journal.batches == 2
    assert [r["op"] for r in Journal(tmp_path).read()] == [
        "first",
        "arrived during the first write",
        "gathered",
    ]


def test_a_round_that_left_nothing_waiting_lets_the_next_record_go_at_once(tmp_path: Path) -> None:
    """A client that sends its next command once the last is answered is not held to the interval:
    every round ended with nothing waiting, so each record is written at once."""
    journal = _started(tmp_path, 30.0, fsync=True)
    try:
        for position in range(1, 6):
            assert journal.append({"op": "one at a time"}) == position
            assert journal.wait(position, 10)  # not after 30 s
        assert journal.batches == 5
    finally:
        journal.close()


def test_close_during_the_wait_of_a_round_does_not_wait_the_interval_out(tmp_path: Path) -> None:
    journal = _started(tmp_path, 60.0)
    _first_round_leaves_one_waiting(journal)
    for i in range(5):
        journal.append({"op": "gathered", "i": i})
    time.sleep(0.05)  # the writer is waiting for the round's start
    started = time.monotonic()
    journal.close(timeout=30)
    assert time.monotonic() - started < 10
    assert journal.durable == 7
    assert journal.batches == 2


def test_a_waiter_on_a_gathered_record_wakes_when_its_round_is_durable(tmp_path: Path) -> None:
    interval = 0.3
    journal = _started(tmp_path, interval, fsync=True)
    try:
        _first_round_leaves_one_waiting(journal)
        started = time.monotonic()
        position = journal.append({"op": "gathered"})
        assert journal.wait(position, 10)
        # Its round began ``interval`` after the first round's start at the soonest.
        assert time.monotonic() - started < 10
        assert journal.batches == 2
    finally:
        journal.close()


@pytest.mark.parametrize("interval", [-0.001, float("nan")])
def test_a_negative_or_undefined_interval_is_refused(tmp_path: Path, interval: float) -> None:
    with pytest.raises(ValueError, match="commit_interval"):
        Journal(tmp_path, commit_interval=interval)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    interval=st.sampled_from([0.0, 0.0005, 0.002, 0.01]),
    bursts=st.lists(
        st.tuples(st.integers(min_value=0, max_value=40), st.sampled_from([0.0, 0.001, 0.005])),
        min_size=1,
        max_size=8,
    ),
)
def test_every_record_comes_back_in_order_whatever_the_interval(
    tmp_path_factory: pytest.TempPathFactory, interval: float, bursts: list[tuple[int, float]]
) -> None:
    directory = tmp_path_factory.mktemp("journal")
    journal = _started(directory, interval)
    expected: list[dict[str, Any]] = []
    for size, pause in bursts:
        for _ in range(size):
            record: dict[str, Any] = {"op": "p", "i": len(expected)}
            journal.append(record)
            expected.append(record)
        time.sleep(pause)
    if expected:
        assert journal.wait(len(expected), 10)
    journal.close()
    assert journal.records_written == len(expected)
    assert list(Journal(directory).read()) == expected


# ---------------------------------------------------------------------- plumbing


def test_the_exchange_passes_the_interval_to_its_journal(tmp_path: Path) -> None:
    exchange = Exchange(tmp_path / "default")
    assert isinstance(exchange.journal, Journal)
    assert exchange.journal.commit_interval == DEFAULT_COMMIT_INTERVAL
    exchange = Exchange(tmp_path / "set", journal_commit_interval=0.004)
    assert isinstance(exchange.journal, Journal)
    assert exchange.journal.commit_interval == 0.004


def test_serve_passes_the_interval_through_its_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ServerOptions] = []

    def fake_run_server(options: ServerOptions, **_: Any) -> None:
        seen.append(options)

    monkeypatch.setattr(cli, "run_server", fake_run_server)
    data_dir = str(tmp_path / "d")
    result = CliRunner().invoke(cli.main, ["serve", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli.main, ["serve", "--data-dir", data_dir, "--journal-commit-interval", "0"])
    assert result.exit_code == 0, result.output
    assert [options.journal_commit_interval for options in seen] == [SERVING_COMMIT_INTERVAL, 0.0]
    assert ServerOptions(data_dir=tmp_path).journal_commit_interval == SERVING_COMMIT_INTERVAL
    assert SERVING_COMMIT_INTERVAL == 0.002
    result = CliRunner().invoke(
        cli.main, ["serve", "--data-dir", data_dir, "--journal-commit-interval", "-1"]
    )
    assert result.exit_code == 2


def test_open_data_dir_gives_the_exchange_the_interval(tmp_path: Path) -> None:
    from manticore_api.server import open_data_dir

    exchange, auth = open_data_dir(ServerOptions(data_dir=tmp_path, journal_commit_interval=0.003))
    try:
        assert isinstance(exchange.journal, Journal)
        assert exchange.journal.commit_interval == 0.003
    finally:
        auth.close()
        exchange.close(checkpoint=False)
