"""Snapshots in the JetStream Object Store, and log retention below them (private nats-server).

Each test runs a reproducible command stream on an exchange whose journal is the shard's log and whose
checkpoints are published as snapshots, then opens other exchanges (a fresh directory, a restart) and
checks that they restore exactly the state the writer had, reading only the log after the snapshot.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from manticore_cluster.natsconf import NatsOptions
from manticore_cluster.snapshots import (
    SnapshotPublisher,
    SnapshotStore,
    _describe,
    local_checkpoint_position,
    open_snapshots,
    snapshot_name,
)
from manticore_matching import Exchange
from manticore_matching.journal import JournalCorrupt
from tests.cluster.conftest import NatsServer
from tests.cluster.helpers import js_exchange, raw_messages
from tests.matching.exchange_streams import Clock, apply, make_stream, state

pytestmark = pytest.mark.timeout(120)


def publishing(
    data_dir: Path,
    clock: Clock,
    options: NatsOptions,
    *,
    keep: int = 3,
    retention: bool = False,
    **kwargs: Any,
) -> tuple[Exchange, SnapshotPublisher]:
    """An exchange on the shard ``main`` that first restores the newest snapshot and publishes the
    checkpoints it writes (what ``manticore shard`` does)."""
    publisher = open_snapshots(options, "main", data_dir, keep=keep, retention=retention)
    exchange = js_exchange(
        data_dir, clock, options, journal_kwargs={"on_checkpoint": publisher.offer}, **kwargs
    )
    return exchange, publisher


def run(exchange: Exchange, clock: Clock, commands: list[dict[str, Any]]) -> None:
    for command in commands:
        apply(exchange, clock, command)


def test_a_fresh_instance_restores_the_newest_snapshot_and_reads_only_the_log_after_it(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    clock = Clock()
    commands = make_stream(11, 300)
    writer, publisher = publishing(tmp_path / "a", clock, nats_options, checkpoint_every=0)
    writer.open()
    run(writer, clock, commands[:200])
    position = writer.checkpoint()
    assert publisher.flush(30)
    run(writer, clock, commands[200:])
    expected, end = state(writer), writer.journal.appended
    writer.close(checkpoint=False)
    assert [info.position for info in publisher.store.snapshots()] == [position]
    publisher.close()
    assert 0 < position < end

    fresh_dir = tmp_path / "fresh"
    fresh, fresh_publisher = publishing(fresh_dir, Clock(clock.now), nats_options)
    assert local_checkpoint_position(fresh_dir) == position
    fresh.open()
    try:
        assert fresh.replayed_records == end - position
        assert state(fresh) == expected
        assert fresh.journal.appended == end
    finally:
        fresh.close(checkpoint=False)
        fresh_publisher.close()


def test_a_newer_local_checkpoint_is_kept(tmp_path: Path, nats_options: NatsOptions) -> None:
    clock = Clock()
    commands = make_stream(12, 200)
    writer, publisher = publishing(tmp_path / "a", clock, nats_options, checkpoint_every=0)
    writer.open()
    run(writer, clock, commands[:100])
    first = writer.checkpoint()
    assert publisher.flush(30)
    publisher.close()  # the next checkpoint is local only
    run(writer, clock, commands[100:])
    expected = state(writer)
    writer.close()  # local checkpoint at the end
    local = local_checkpoint_position(tmp_path / "a")
    assert local > first

    again, again_publisher = publishing(tmp_path / "a", Clock(clock.now), nats_options)
    assert local_checkpoint_position(tmp_path / "a") == local
    again.open()
    try:
        assert again.replayed_records == 0
        assert state(again) == expected
    finally:
        again.close(checkpoint=False)
        again_publisher.close()


def test_a_corrupt_snapshot_is_refused_and_an_older_one_is_used(
    tmp_path: Path, nats_options: NatsOptions, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    commands = make_stream(13, 300)
    writer, publisher = publishing(tmp_path / "a", clock, nats_options, checkpoint_every=0)
    writer.open()
    run(writer, clock, commands[:100])
    older = writer.checkpoint()
    assert publisher.flush(30)
    run(writer, clock, commands[100:200])
    newer = writer.checkpoint()
    assert publisher.flush(30)
    run(writer, clock, commands[200:])
    expected, end = state(writer), writer.journal.appended
    end_stamp = writer.journal.record_at(end)["ts"]  # type: ignore[attr-defined]
    writer.close(checkpoint=False)
    publisher.close()

    # The newest snapshot's bytes change under its recorded digest (a bit flip, a bad disk).
    store = SnapshotStore(nats_options, "main")
    try:
        info = store.snapshots()[-1]
        body, _ = store.fetch(info)
        damaged = body.replace(b'"position":', b'"position": ', 1)
        description = _describe("main", newer, hashlib.sha256(body).hexdigest(), info.stamp)
        store._call(store._put(snapshot_name("main", newer), damaged, description))
        # And one newer still that is not a checkpoint at all, with a matching digest and stamp.
        garbage = b'{"version": 1, "position": 5}'
        description = _describe("main", end, hashlib.sha256(garbage).hexdigest(), end_stamp)
        store._call(store._put(snapshot_name("main", end), garbage, description))
        assert [info.position for info in store.snapshots()] == [older, newer, end]
    finally:
        store.close()

    caplog.set_level(logging.WARNING, logger="manticore_cluster")
    fresh, fresh_publisher = publishing(tmp_path / "fresh", Clock(clock.now), nats_options)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 2, refused
    assert local_checkpoint_position(tmp_path / "fresh") == older
    fresh.open()
    try:
        assert fresh.replayed_records == end - older
        assert state(fresh) == expected
    finally:
        fresh.close(checkpoint=False)
        fresh_publisher.close()


def test_a_snapshot_of_another_history_is_refused(
    tmp_path: Path, nats_options: NatsOptions, caplog: pytest.LogCaptureFixture
) -> None:
    """The log stream is deleted and the shard starts again from nothing, with the same positions: the
    old snapshot's position exists in the new log but is another command there."""
    clock = Clock()
    writer, publisher = publishing(tmp_path / "a", clock, nats_options, checkpoint_every=0)
    writer.open()
    run(writer, clock, make_stream(18, 150))
    old = writer.checkpoint()
    assert publisher.flush(30)
    writer.close(checkpoint=False)
    publisher.close()
    asyncio.run(_delete_log(nats_options))

    clock = Clock(clock.now + 1000)
    second = js_exchange(tmp_path / "second", clock, nats_options, checkpoint_every=0)
    second.open()
    run(second, clock, make_stream(19, 250))
    expected, end = state(second), second.journal.appended
    second.close(checkpoint=False)
    assert end > old

    caplog.set_level(logging.WARNING, logger="manticore_cluster")
    fresh, fresh_publisher = publishing(tmp_path / "fresh", Clock(clock.now), nats_options)
    assert any("another history" in r.getMessage() for r in caplog.records)
    assert local_checkpoint_position(tmp_path / "fresh") == 0
    fresh.open()
    try:
        assert fresh.replayed_records == end
        assert state(fresh) == expected
    finally:
        fresh.close(checkpoint=False)
        fresh_publisher.close()


async def _delete_log(options: NatsOptions) -> None:
    import nats

    nc = await nats.connect(list(options.servers))
    try:
        await nc.jetstream().delete_stream(options.log_stream)
    finally:
        await nc.close()


def test_retention_purges_the_log_below_the_oldest_kept_snapshot_only(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    clock = Clock()
    commands = make_stream(14, 500)
    writer, publisher = publishing(
        tmp_path / "a", clock, nats_options, keep=2, retention=True, checkpoint_every=0
    )
    writer.open()
    for start in range(0, 400, 100):
        run(writer, clock, commands[start : start + 100])
        writer.checkpoint()
        assert publisher.flush(30)
    run(writer, clock, commands[400:])
    expected, end = state(writer), writer.journal.appended
    writer.close(checkpoint=False)
    kept = [info.position for info in publisher.store.snapshots()]
    publisher.close()
    assert len(kept) == 2 and kept[-1] < end

    first_kept = min(int(h["Nats-Msg-Id"].rpartition(":")[2]) for _, h, _ in raw_messages(nats_options))
    assert 1 < first_kept <= kept[0]  # purged, but never above the oldest kept snapshot

    # A restart from the local checkpoint (here: older than every kept snapshot is impossible, so
    # use the directory as it is), a fresh directory, and one that cannot restore without snapshots.
    again, again_publisher = publishing(tmp_path / "a", Clock(clock.now), nats_options, keep=2)
    again.open()
    try:
        assert state(again) == expected
    finally:
        again.close(checkpoint=False)
        again_publisher.close()
    fresh, fresh_publisher = publishing(tmp_path / "fresh", Clock(clock.now), nats_options, keep=2)
    fresh.open()
    try:
        assert fresh.replayed_records == end - kept[-1]
        assert state(fresh) == expected
    finally:
        fresh.close(checkpoint=False)
        fresh_publisher.close()
    blind = js_exchange(tmp_path / "blind", Clock(clock.now), nats_options)
    with pytest.raises(JournalCorrupt):
        blind.open()


def test_retention_keeps_what_a_reporting_follower_still_needs(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    clock = Clock()
    commands = make_stream(16, 300)
    writer, publisher = publishing(
        tmp_path / "a", clock, nats_options, keep=1, retention=True, checkpoint_every=0
    )
    publisher.store.report_follower("storage", 7)  # a storage writer whose database is at 7
    writer.open()
    for start in range(0, 300, 100):
        run(writer, clock, commands[start : start + 100])
        writer.checkpoint()
        assert publisher.flush(30)
    assert publisher.store.follower_positions() == {"storage": 7}
    first_kept = min(int(h["Nats-Msg-Id"].rpartition(":")[2]) for _, h, _ in raw_messages(nats_options))
    assert first_kept <= 7
    assert len(publisher.store.snapshots()) == 1

    publisher.store.report_follower("storage", 120)  # it caught up: the next upload purges to it
    run(writer, clock, make_stream(17, 50)[9:])
    writer.checkpoint()
    assert publisher.flush(30)
    first_kept = min(int(h["Nats-Msg-Id"].rpartition(":")[2]) for _, h, _ in raw_messages(nats_options))
    assert 7 < first_kept <= 120
    writer.close(checkpoint=False)
    publisher.close()


def test_an_upload_killed_half_way_leaves_the_older_snapshot_usable(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    clock = Clock()
    commands = make_stream(15, 300)
    writer, publisher = publishing(tmp_path / "a", clock, nats_options, checkpoint_every=0)
    writer.open()
    run(writer, clock, commands[:150])
    older = writer.checkpoint()
    assert publisher.flush(30)
    publisher.close()
    run(writer, clock, commands[150:])
    newer = writer.checkpoint()  # local only; a child uploads it and is killed half-way
    expected, end = state(writer), writer.journal.appended
    writer.close(checkpoint=False)
    body_path = tmp_path / "a" / "checkpoint.json"
    body_path.write_bytes(body_path.read_bytes() + b" " * (1024 * 1024))  # several chunks
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster.snapshot_child",
            nats_options.servers[0],
            nats_options.prefix,
            "main",
            str(newer),
            str(body_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"half"
    finally:
        child.kill()
        child.wait(10)

    store = SnapshotStore(nats_options, "main")
    try:
        assert [info.position for info in store.snapshots()] == [older]
    finally:
        store.close()
    fresh, fresh_publisher = publishing(tmp_path / "fresh", Clock(clock.now), nats_options)
    assert local_checkpoint_position(tmp_path / "fresh") == older
    fresh.open()
    try:
        assert fresh.replayed_records == end - older
        assert state(fresh) == expected
    finally:
        fresh.close(checkpoint=False)
        fresh_publisher.close()


def test_a_store_that_could_not_connect_tries_again_on_its_next_call(tmp_path: Path) -> None:
    """Regression: a failed first connection closed the store for good, so a publisher that started
    during a NATS outage never uploaded anything."""
    server = NatsServer(tmp_path / "store")
    options = NatsOptions(servers=(server.url,), prefix="late", connect_timeout=0.5, request_timeout=1.0)
    store = SnapshotStore(options, "main")
    try:
        with pytest.raises(ConnectionError):  # nobody listens yet
            store.snapshots()
        server.start()
        assert store.snapshots() == []
        store.put(3, b'{"version": 1, "position": 3}')
        assert [info.position for info in store.snapshots()] == [3]
    finally:
        store.close()
        server.kill()
