"""JetStreamJournal on a real nats-server: round trip, group commit, fence, de-duplication, replay."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_cluster.log import JetStreamJournal, JournalFenced, decode_batch
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import JournalClosed, JournalCorrupt
from manticore_matching.journal import CommandLog, Journal
from tests.cluster.conftest import NatsServer
from tests.cluster.helpers import raw_messages, raw_records


def test_both_journals_are_command_logs(tmp_path: Path, nats_options: NatsOptions) -> None:
    logs: list[CommandLog] = [Journal(tmp_path), JetStreamJournal(nats_options, "main")]
    assert all(log.appended == 0 and log.durable == 0 for log in logs)


def test_append_wait_read_round_trip(nats_options: NatsOptions) -> None:
    durable_seen: list[int] = []
    journal = JetStreamJournal(nats_options, "main", on_durable=durable_seen.append)
    assert list(journal.read()) == []
    assert journal.stream_sequence == 0
    journal.start()
    positions = [journal.append({"op": "x", "i": i, "text": "é\u2028"}) for i in range(50)]
    assert positions == list(range(1, 51))
    assert journal.wait(50, 10)
    assert journal.durable == 50 and journal.healthy and not journal.fenced
    assert durable_seen == sorted(durable_seen) and durable_seen[-1] == 50
    assert journal.stream_sequence == journal.last_stream_sequence() > 0
    assert [r["n"] for r in journal.durable_records(after=47)] == [48, 49, 50]
    journal.close()
    assert not journal.healthy
    with pytest.raises(JournalClosed):
        journal.append({"op": "late"})

    again = JetStreamJournal(nats_options, "main")
    records = list(again.read(after=20))
    assert [r["n"] for r in records] == list(range(21, 51))
    assert records[0] == {"op": "x", "i": 20, "text": "é\u2028", "n": 21}
    assert again.appended == again.durable == 50
    again.start()
    assert again.wait(again.append({"op": "y"}), 10)
    again.close()
    assert [r["n"] for r in raw_records(nats_options)] == list(range(1, 52))
    # Another shard of the same stream is another log.
    other = JetStreamJournal(nats_options, "other")
    assert list(other.read()) == []
    other.close()


def test_records_appended_during_a_publish_go_out_as_one_message(nats_options: NatsOptions) -> None:
    journal = JetStreamJournal(nats_options, "main")
    list(journal.read())
    journal.start()
    total = 3000
    threads = [
        threading.Thread(target=lambda k=k: [journal.append({"op": "x", "t": k, "i": i}) for i in range(750)])
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert journal.wait(total, 30)
    journal.close()
    assert journal.records_written == total
    assert journal.batches < total / 5, journal.batches  # group commit: many records per message
    messages = raw_messages(nats_options)
    assert len(messages) == journal.batches
    expected_last = 0
    position = 0
    for sequence, headers, payload in messages:
        records = decode_batch(payload)
        assert headers["Nats-Msg-Id"] == f"main:{records[0]['n']}"
        assert headers["Nats-Expected-Last-Subject-Sequence"] == str(expected_last)
        assert [r["n"] for r in records] == list(range(position + 1, position + len(records) + 1))
        position += len(records)
        expected_last = sequence
    assert position == total
    # Each thread's records are in its order.
    records = raw_records(nats_options)
    for k in range(4):
        assert [r["i"] for r in records if r["t"] == k] == list(range(750))


def test_a_large_backlog_is_split_into_bounded_messages(nats_options: NatsOptions) -> None:
    journal = JetStreamJournal(nats_options, "main", max_message_bytes=2000)
    list(journal.read())
    journal.start()
    for i in range(200):
        journal.append({"op": "x", "pad": "p" * 90, "i": i})
    assert journal.wait(200, 30)
    journal.close()
    messages = raw_messages(nats_options)
    assert all(len(payload) <= 2000 for _, _, payload in messages)
    assert [r["i"] for r in raw_records(nats_options)] == list(range(200))


def test_the_stale_writer_is_fenced_and_the_other_goes_on(nats_options: NatsOptions) -> None:
    fenced: list[JournalFenced] = []
    first = JetStreamJournal(nats_options, "main")
    second = JetStreamJournal(nats_options, "main", on_fenced=fenced.append)
    list(first.read())
    list(second.read())  # both saw the same (empty) log
    first.start()
    second.start()
    assert first.wait(first.append({"op": "a"}), 10)
    position = second.append({"op": "b"})  # second's view is stale now
    with pytest.raises(JournalFenced):
        second.wait(position, 10)
    assert second.fenced and not second.healthy
    assert len(fenced) == 1
    with pytest.raises(JournalFenced):
        second.append({"op": "c"})
    assert first.wait(first.append({"op": "a2"}), 10) and first.healthy
    first.close()
    second.close()
    assert [r["op"] for r in raw_records(nats_options)] == ["a", "a2"]


def test_a_zombie_is_fenced_after_a_successor_has_written(nats_options: NatsOptions) -> None:
    zombie = JetStreamJournal(nats_options, "main")
    list(zombie.read())
    zombie.start()
    assert zombie.wait(zombie.append({"op": "old"}), 10)
    successor = JetStreamJournal(nats_options, "main")
    assert [r["op"] for r in successor.read()] == ["old"]
    successor.start()
    assert successor.wait(successor.append({"op": "new"}), 10)
    position = zombie.append({"op": "zombie"})
    with pytest.raises(JournalFenced):
        zombie.wait(position, 10)
    assert successor.wait(successor.append({"op": "new2"}), 10)
    zombie.close()
    successor.close()
    assert [r["op"] for r in raw_records(nats_options)] == ["old", "new", "new2"]


def test_two_instances_writing_the_same_position_are_not_both_acknowledged(nats_options: NatsOptions) -> None:
    """Same message id (shard:1) from two instances: the second gets a duplicate ack for a message that
    is not its own, and must not take it as durable."""
    first = JetStreamJournal(nats_options, "main")
    second = JetStreamJournal(nats_options, "main")
    list(first.read())
    list(second.read())
    first.start()
    second.start()
    assert first.wait(first.append({"op": "first"}), 10)
    with pytest.raises(JournalFenced):
        second.wait(second.append({"op": "second"}), 10)
    first.close()
    second.close()
    assert [r["op"] for r in raw_records(nats_options)] == ["first"]


async def _publish_twice(options: NatsOptions) -> tuple[Any, Any, Any]:
    import nats

    from manticore_cluster.natsconf import ensure_log_stream

    nc = await nats.connect(list(options.servers))
    try:
        js = nc.jetstream()
        await ensure_log_stream(js, options)
        subject = options.log_subject("main")
        headers = {"Nats-Msg-Id": "main:1", "Nats-Expected-Last-Subject-Sequence": "0"}
        body = b'[{"op":"x","n":1}]'
        first = await js.publish(subject, body, headers=dict(headers))
        again = await js.publish(subject, body, headers=dict(headers))
        info = await js.stream_info(options.log_stream)
        return first, again, info.state.messages
    finally:
        await nc.close()


def test_a_resent_message_is_stored_once_even_with_its_old_expectation(nats_options: NatsOptions) -> None:
    """What the journal's retry relies on (nats-server 2.9): de-duplication comes before the fence."""
    first, again, stored = asyncio.run(_publish_twice(nats_options))
    assert not first.duplicate
    assert again.duplicate and again.seq == first.seq
    assert stored == 1


@pytest.fixture
def own_server(tmp_path: Path) -> Any:
    server = NatsServer(tmp_path / "store")
    server.start()
    yield server
    server.kill()


def wait_until_stopped(pid: int, timeout: float = 10.0) -> None:
    """Until every thread of ``pid`` is stopped (SIGSTOP takes effect asynchronously)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            stat = (task / "stat").read_text()
            states.append(stat[stat.rindex(")") + 2])
        if all(state in "Tt" for state in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


def test_a_publish_that_timed_out_is_retried_without_a_duplicate(own_server: NatsServer) -> None:
    """The server is frozen (SIGSTOP) while a message is in flight: the publish times out and is sent
    again with the same id; after SIGCONT the server has the original and the retries: one copy."""
    import os
    import signal
    import time

    options = NatsOptions(servers=(own_server.url,), prefix="retry", request_timeout=2.0)
    journal = JetStreamJournal(options, "main", publish_timeout=0.3, publish_attempts=30)
    list(journal.read())
    journal.start()
    assert journal.wait(journal.append({"op": "before"}), 10)
    assert own_server.process is not None
    pid = own_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until_stopped(pid)
        position = journal.append({"op": "during"})
        deadline = time.monotonic() + 10
        while journal.publish_retries < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert journal.publish_retries >= 2
    finally:
        os.kill(pid, signal.SIGCONT)
    assert journal.wait(position, 20)
    assert journal.healthy
    assert journal.wait(journal.append({"op": "after"}), 10)
    journal.close()
    messages = raw_messages(options)
    stored = [r["op"] for _, _, payload in messages for r in decode_batch(payload)]
    assert stored == ["before", "during", "after"]
    assert len({headers["Nats-Msg-Id"] for _, headers, _ in messages}) == len(messages)


def test_a_log_that_ends_before_the_checkpoint_is_corrupt(nats_options: NatsOptions) -> None:
    journal = JetStreamJournal(nats_options, "main")
    list(journal.read())
    journal.start()
    assert journal.wait(journal.append({"op": "x"}), 10)
    journal.close()
    for shard, problem in (("main", "before the checkpoint"), ("empty", "empty")):
        reader = JetStreamJournal(nats_options, shard)
        with pytest.raises(JournalCorrupt, match=problem):
            list(reader.read(after=5))
        reader.close()


def test_a_standby_follows_the_log_until_promoted(nats_options: NatsOptions) -> None:
    leader = JetStreamJournal(nats_options, "main")
    list(leader.read())
    leader.start()
    leader.wait(leader.append({"op": "x", "i": 0}), 10)
    promote = threading.Event()
    standby = JetStreamJournal(nats_options, "main", follow_until=promote)
    seen: list[int] = []
    follower = threading.Thread(target=lambda: seen.extend(r["i"] for r in standby.read()))
    follower.start()
    for i in range(1, 30):
        leader.append({"op": "x", "i": i})
    assert leader.wait(30, 10)
    import time

    deadline = time.monotonic() + 10
    while len(seen) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == list(range(30))  # tailing, not yet promoted
    assert follower.is_alive()
    leader.wait(leader.append({"op": "x", "i": 30}), 10)
    leader.close()  # the leader stops (or dies); the standby takes over
    promote.set()
    follower.join(10)
    assert not follower.is_alive()
    assert seen == list(range(31))
    assert standby.appended == 31 and standby.stream_sequence == leader.stream_sequence
    standby.start()
    assert standby.wait(standby.append({"op": "x", "i": 31}), 10)
    standby.close()
    assert [r["i"] for r in raw_records(nats_options)] == list(range(32))


def test_reading_after_a_position_starts_at_its_message(nats_options: NatsOptions) -> None:
    journal = JetStreamJournal(nats_options, "main")
    other = JetStreamJournal(nats_options, "other")  # interleaved messages of another shard
    list(journal.read())
    list(other.read())
    journal.start()
    other.start()
    for i in range(120):
        assert journal.wait(journal.append({"op": "x", "i": i}), 10)  # one message per record
        if i % 3 == 0:
            other.wait(other.append({"op": "y"}), 10)
    journal.close()
    other.close()
    messages = raw_messages(nats_options)
    reader = JetStreamJournal(nats_options, "main")
    for position in (1, 2, 60, 119, 120, 121):
        sequence = reader.sequence_of(position)
        holding = [seq for seq, _, payload in messages if decode_batch(payload)[0]["n"] <= position]
        assert sequence == holding[-1]
    records = list(reader.read(after=100))
    assert [r["i"] for r in records] == list(range(100, 120))
    assert reader.messages_read == 20  # not the 100 before
    assert reader.appended == 120 and reader.stream_sequence == messages[-1][0]
    reader.close()
    at_end = JetStreamJournal(nats_options, "main")
    assert list(at_end.read(after=120)) == [] and at_end.appended == 120
    assert at_end.messages_read == 1
    at_end.start()
    assert [r["n"] for r in at_end.durable_records(after=117)] == [118, 119, 120]
    at_end.close()


def test_a_nats_server_killed_and_restarted_loses_no_acknowledged_record(own_server: NatsServer) -> None:
    """R1: kill -9 of nats-server while a shard appends; the server restarts on its store; the journal
    retries and goes on; every record acknowledged before or after is stored once, in order."""
    import time

    options = NatsOptions(servers=(own_server.url,), prefix="restart", request_timeout=1.0)
    journal = JetStreamJournal(options, "main", publish_timeout=1.0, publish_attempts=30)
    list(journal.read())
    journal.start()
    stop = threading.Event()

    def append() -> None:
        while not stop.is_set() and journal.healthy:
            journal.append({"op": "x"})
            time.sleep(0.001)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        while journal.durable < 200:
            time.sleep(0.01)
        acknowledged = journal.durable
        own_server.kill()
        time.sleep(0.5)
        own_server.start()
        deadline = time.monotonic() + 30
        while journal.durable < acknowledged + 200 and time.monotonic() < deadline:
            assert journal.healthy
            time.sleep(0.02)
    finally:
        stop.set()
        writer.join(10)
    assert journal.wait(journal.appended, 30) and journal.healthy
    total = journal.durable
    assert total >= acknowledged + 200
    journal.close()
    assert [r["n"] for r in raw_records(options)] == list(range(1, total + 1))


_example = iter(range(1_000_000))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rounds=st.lists(
        st.tuples(st.lists(st.text(max_size=40), max_size=40), st.booleans(), st.integers(0, 200)),
        min_size=1,
        max_size=4,
    ),
    limit=st.sampled_from([64, 300, 512 * 1024]),
)
def test_the_log_is_the_list_of_appended_records(
    nats_options: NatsOptions, rounds: list[tuple[list[str], bool, int]], limit: int
) -> None:
    """Model: the log is the list of every record appended by the successive writers (each writer
    starts where the previous one stopped); read(after) is its suffix; messages are bounded (a
    record larger than the bound goes alone) and each names its first position."""
    shard = f"p{next(_example)}"
    model: list[str] = []
    for texts, wait_each, after in rounds:
        journal = JetStreamJournal(nats_options, shard, max_message_bytes=limit)
        after = min(after, len(model))
        assert [r["v"] for r in journal.read(after=after)] == model[after:]
        assert journal.appended == len(model)
        journal.start()
        for text in texts:
            position = journal.append({"v": text})
            model.append(text)
            assert position == len(model)
            if wait_each:
                assert journal.wait(position, 10)
        assert journal.wait(len(model), 10)
        journal.close()
    messages = raw_messages(nats_options, shard)
    assert [r["v"] for _, _, payload in messages for r in decode_batch(payload)] == model
    for _, headers, payload in messages:
        records = decode_batch(payload)
        assert headers["Nats-Msg-Id"] == f"{shard}:{records[0]['n']}"
        assert len(payload) <= limit or len(records) == 1


def test_closing_a_following_standby_ends_its_read(nats_options: NatsOptions) -> None:
    import time

    standby = JetStreamJournal(nats_options, "main", follow_until=threading.Event())
    outcome: list[BaseException | None] = []

    def follow() -> None:
        try:
            list(standby.read())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.5)  # (closing while it still connects must end it too)
    assert follower.is_alive()
    standby.close()
    follower.join(15)
    assert not follower.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], JournalClosed), outcome


def test_record_at_finds_a_record_of_this_shard_only(nats_options: NatsOptions) -> None:
    """What a restart asks to check storage's position against the log (both journals answer it)."""
    empty = JetStreamJournal(nats_options, "main")
    assert empty.record_at(1) is None  # an empty log
    empty.close()
    other = JetStreamJournal(nats_options, "other")
    list(other.read())
    other.start()
    main = JetStreamJournal(nats_options, "main")
    list(main.read())
    main.start()
    for i in range(40):  # interleaved with another shard's messages in the same stream
        other.append({"op": "o", "i": i})
        assert main.wait(main.append({"op": "m", "i": i}), 10)
    assert other.wait(40, 10)
    main.close()
    other.close()
    reader = JetStreamJournal(nats_options, "main")
    assert reader.record_at(1) == {"op": "m", "i": 0, "n": 1}
    assert reader.record_at(27) == {"op": "m", "i": 26, "n": 27}
    assert reader.record_at(40) == {"op": "m", "i": 39, "n": 40}
    assert reader.record_at(41) is None
    assert reader.record_at(0) is None
    reader.close()
