"""An Exchange on a JetStreamJournal: restarts replay the log with the fingerprint check, a process
killed mid-load loses nothing it reported durable, and a stale instance is fenced off."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from manticore_cluster.log import decode_batch
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import Exchange, JournalCorrupt, ServiceUnavailable
from tests.cluster.helpers import js_exchange, raw_messages, raw_records
from tests.matching.exchange_streams import (
    Clock,
    apply,
    crash_releases_lock,
    make_stream,
    new_exchange,
    state,
)

ROOT = Path(__file__).resolve().parents[2]


def crash(exchange: Exchange) -> None:
    """What a process death leaves: the log as it is, no checkpoint, storage not flushed."""
    exchange.journal.close()
    assert exchange.storage is not None
    exchange.storage.close()
    crash_releases_lock(exchange)


def test_a_restart_replays_the_log_to_the_same_state(tmp_path: Path, nats_options: NatsOptions) -> None:
    clock = Clock()
    exchange = js_exchange(tmp_path / "a", clock, nats_options)
    exchange.open()
    for command in make_stream(5, 300):
        apply(exchange, clock, command)
    assert exchange.wait_durable(exchange.journal.appended, 10)
    expected = state(exchange)
    appended = exchange.journal.appended
    assert exchange.journal.batches < appended  # group commit under a single client too
    crash(exchange)
    with js_exchange(tmp_path / "a", clock, nats_options) as restored:
        assert restored.replayed_records == appended
        assert state(restored) == expected
        for symbol in restored.markets:
            report = restored.storage.reconcile(restored.book(symbol))  # type: ignore[union-attr]
            assert report.ok, report
    # Another machine with an empty data directory rebuilds the same shard from the log alone.
    with js_exchange(tmp_path / "elsewhere", Clock(), nats_options) as rebuilt:
        assert state(rebuilt) == expected


def test_a_restart_after_a_checkpoint_replays_only_what_follows(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    stream = make_stream(9, 300)
    reference_clock = Clock()
    with new_exchange(tmp_path / "file", reference_clock) as reference:  # the file journal
        for command in stream:
            apply(reference, reference_clock, command)
        expected = state(reference)
        reference_appended = reference.journal.appended
    clock = Clock()
    exchange = js_exchange(tmp_path / "js", clock, nats_options, checkpoint_every=70)
    exchange.open()
    for command in stream:
        apply(exchange, clock, command)
    exchange.wait_durable(exchange.journal.appended, 10)
    assert exchange.journal.appended == reference_appended
    checkpoint = exchange.finish_checkpoint()  # automatic checkpoints are written in the background
    assert checkpoint == exchange._checkpoint_position > 0
    crash(exchange)
    with js_exchange(tmp_path / "js", clock, nats_options, checkpoint_every=70) as restored:
        assert restored.replayed_records == reference_appended - checkpoint
        assert state(restored) == expected
    # The log holds exactly the records the file journal would have held.
    records = raw_records(nats_options)
    assert [r["n"] for r in records] == list(range(1, reference_appended + 1))


async def _replace_last(options: NatsOptions, change: Any) -> None:
    import nats

    nc = await nats.connect(list(options.servers))
    try:
        js = nc.jetstream()
        subject = options.log_subject("main")
        last = await js.get_last_msg(options.log_stream, subject)
        before = await js.get_msg(options.log_stream, last.seq - 1, subject=subject)  # type: ignore[operator]
        del before  # (not needed: the fence of the rewritten message is the message before the last)
        records = decode_batch(last.data or b"")
        change(records[-1])
        await js.delete_msg(options.log_stream, int(last.seq or 0))
        import orjson

        await js.publish(subject, orjson.dumps(records))
    finally:
        await nc.close()


def test_a_tampered_log_is_detected_by_the_replay(tmp_path: Path, nats_options: NatsOptions) -> None:
    clock = Clock()
    exchange = js_exchange(tmp_path, clock, nats_options)
    exchange.open()
    for user in ("alice", "bob"):
        exchange.deposit(user, "USD", "100000")
        exchange.deposit(user, "BTC", "10")
    exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")
    receipt = exchange.place_order("bob", "BTC/USD", "buy", "1", price="100")
    exchange.wait_durable(receipt.position, 10)
    crash(exchange)

    def halve(record: dict[str, Any]) -> None:
        assert record["op"] == "place"
        record["quantity"] = "0.5"

    asyncio.run(_replace_last(nats_options, halve))
    with pytest.raises(JournalCorrupt, match="diverged"):
        js_exchange(tmp_path, clock, nats_options).open()


def test_a_stale_exchange_is_fenced_and_refuses_commands(tmp_path: Path, nats_options: NatsOptions) -> None:
    clock = Clock()
    old = js_exchange(tmp_path / "old", clock, nats_options)
    old.open()
    old.deposit("alice", "USD", "1000")
    assert old.wait_durable(old.journal.appended, 10)
    new = js_exchange(tmp_path / "new", clock, nats_options)  # a successor (e.g. after a failover)
    new.open()
    assert new.balances("alice")["balances"]["USD"]["available"] == "1000"
    receipt = new.deposit("alice", "USD", "1")
    assert new.wait_durable(receipt.position, 10)
    stale = old.deposit("alice", "USD", "5")  # applied in the old process's memory only
    with pytest.raises(ServiceUnavailable):
        old.wait_durable(stale.position, 10)
    assert old.journal.fenced  # type: ignore[attr-defined]
    with pytest.raises(ServiceUnavailable):
        old.deposit("alice", "USD", "7")
    assert new.wait_durable(new.deposit("alice", "USD", "2").position, 10)
    expected = state(new)
    new.close()
    with pytest.raises(ServiceUnavailable):
        old.close()  # no checkpoint of the stale state (it holds a deposit the log does not)
    assert not (tmp_path / "old" / "checkpoint.json").exists()
    with js_exchange(tmp_path / "old", clock, nats_options) as restarted:
        assert state(restarted) == expected  # the log's state, not the stale memory
        assert restarted.balances("alice")["balances"]["USD"]["available"] == "1003"
    assert [(r["op"], r["amount"]) for r in raw_records(nats_options) if r["op"] == "deposit"] == [
        ("deposit", "1000"),
        ("deposit", "1"),
        ("deposit", "2"),
    ]


def test_a_standby_exchange_tails_the_log_and_takes_over(tmp_path: Path, nats_options: NatsOptions) -> None:
    stream = make_stream(21, 200)
    clock = Clock()
    leader = js_exchange(tmp_path / "leader", clock, nats_options)
    leader.open()
    promote = threading.Event()
    standby = js_exchange(
        tmp_path / "standby", Clock(), nats_options, journal_kwargs={"follow_until": promote}
    )
    opening = threading.Thread(target=standby.open)
    opening.start()
    for command in stream:
        apply(leader, clock, command)
    leader.wait_durable(leader.journal.appended, 10)
    expected = state(leader)
    deadline = time.monotonic() + 20
    while standby.replayed_records < leader.journal.appended and time.monotonic() < deadline:
        time.sleep(0.05)
    assert standby.replayed_records == leader.journal.appended  # warm: caught up before promotion
    assert opening.is_alive()
    crash(leader)
    promote.set()
    opening.join(20)
    assert not opening.is_alive()
    assert state(standby) == expected
    assert standby.wait_durable(standby.deposit("alice", "USD", "1").position, 10)
    standby.close()


def test_a_process_killed_while_appending_loses_nothing_it_reported_durable(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    seed, count = 33, 3000
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster.appender_child",
            nats_options.servers[0],
            nats_options.prefix,
            str(tmp_path / "child"),
            str(seed),
            str(count),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    reported = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("durable "):
                reported = int(line.split()[1])
            assert line.strip() != "finished", "the child finished before it was killed: make it longer"
            if reported >= 400:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert reported >= 400
    records = raw_records(nats_options)
    positions = [r["n"] for r in records]
    assert positions == list(range(1, len(positions) + 1))  # in order, no gap, no duplicate
    assert len(positions) >= reported  # every position reported durable is in the stream
    stored = len(positions)
    # The same command stream on the file journal, up to the same position, gives the same state.
    reference_clock = Clock()
    with new_exchange(tmp_path / "reference", reference_clock) as reference:
        for command in make_stream(seed, count):
            if reference.journal.appended >= stored:
                break
            apply(reference, reference_clock, command)
        assert reference.journal.appended == stored
        expected = state(reference)
    with js_exchange(tmp_path / "child", Clock(), nats_options) as restored:
        assert restored.replayed_records == stored
        assert state(restored) == expected
    messages = raw_messages(nats_options)
    assert len(messages) < stored  # the child's records went out in groups


def test_an_unreachable_nats_fails_the_open_and_frees_the_directory(tmp_path: Path) -> None:
    from tests.cluster.conftest import free_port

    options = NatsOptions(servers=(f"nats://127.0.0.1:{free_port()}",), prefix="gone", connect_timeout=0.5)
    exchange = js_exchange(tmp_path, Clock(), options)
    with pytest.raises(ConnectionError, match="no NATS server"):
        exchange.open()
    new_exchange(tmp_path, Clock()).open()  # the directory lock was released
