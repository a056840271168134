"""A new leader's takeover on a real nats-server: the claim absorbs a late message of the deposed leader
(lower term) and refuses one of another leader. Regression of a failure seen in CI: a successor
fenced by its predecessor's in-flight message (exit 4, the shard without a leader)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from manticore_cluster.log import FENCE_ERROR, TERM_HEADER, JetStreamJournal, JournalFenced, message_term
from manticore_cluster.natsconf import NatsOptions
from manticore_matching import Exchange, ServiceUnavailable
from tests.cluster.helpers import js_exchange, raw_messages, raw_records
from tests.cluster.shard_processes import (
    LEASE_TTL,
    ProtocolClient,
    ShardProcess,
    shard_processes,
    write_config,
)
from tests.matching.exchange_streams import Clock, state

pytestmark = pytest.mark.timeout(120)


def _follow(path: Path, options: NatsOptions) -> tuple[Exchange, threading.Event, threading.Thread]:
    """A standby exchange following the log (its ``open()`` runs in a thread until promoted)."""
    promote = threading.Event()
    standby = js_exchange(path, Clock(), options, journal_kwargs={"follow_until": promote})
    opening = threading.Thread(target=standby.open)
    opening.start()
    return standby, promote, opening


def _wait_caught_up(standby: Exchange, leader: Exchange) -> None:
    deadline = time.monotonic() + 20
    while standby.journal.stream_sequence < leader.journal.stream_sequence:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the standby did not catch up"
        time.sleep(0.02)


def _usd(exchange: Exchange, user: str) -> str:
    return str(exchange.balances(user)["balances"]["USD"]["available"])


def test_a_late_message_of_a_lower_term_is_absorbed_and_the_claim_goes_on_top(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    """The successor chose where to claim (the last message it had seen), then the deposed leader's
    in-flight message landed there: the claim is fenced, the message is of a lower term, so the
    follower applies it and the claim is made again on top; the successor then writes unfenced, and
    the deposed leader's next message is refused."""
    clock = Clock()
    old = js_exchange(tmp_path / "old", clock, nats_options)
    old.journal.claim(10, "old")  # type: ignore[attr-defined]
    old.open()
    old.deposit("alice", "USD", "1000")
    assert old.wait_durable(old.journal.appended, 10)
    standby, promote, opening = _follow(tmp_path / "new", nats_options)
    _wait_caught_up(standby, old)
    seen = standby.journal.stream_sequence  # type: ignore[attr-defined]
    late = old.deposit("alice", "USD", "5")  # in flight while the lease passed on; it lands now
    assert old.wait_durable(late.position, 10)
    claim = standby.journal.claim(20, "new", expected=seen)  # type: ignore[attr-defined]
    promote.set()
    opening.join(20)
    assert not opening.is_alive()
    assert _usd(standby, "alice") == "1005"  # the late deposit, applied as a follower applies it
    mine = standby.deposit("alice", "USD", "2")
    assert standby.wait_durable(mine.position, 10)
    assert mine.position == late.position + 1
    assert standby.journal.stream_sequence > claim  # type: ignore[attr-defined]
    with pytest.raises(ServiceUnavailable):  # the deposed leader writes on: fenced
        old.wait_durable(old.deposit("alice", "USD", "7").position, 10)
    expected = state(standby)
    standby.close()
    crash_old = old.journal
    crash_old.close()
    messages = raw_messages(nats_options)
    terms = [message_term(headers) for _, headers, _ in messages]
    # old's claim, markets and deposits (the late one last), then new's claim and deposit
    assert terms == [10] * (len(terms) - 2) + [20, 20]
    assert orjson.loads(messages[0][2]) == orjson.loads(messages[-2][2]) == []
    assert messages[-2][1]["Nats-Msg-Id"] == f"main:term20:{late.position + 1}"
    # A rebuild from the log alone, and a restart from the checkpoint: the same state.
    with js_exchange(tmp_path / "rebuilt", Clock(), nats_options) as rebuilt:
        assert state(rebuilt) == expected
    with js_exchange(tmp_path / "new", Clock(), nats_options) as restarted:
        assert restarted.replayed_records == 0 and state(restarted) == expected


@pytest.mark.parametrize("writer_term", [30, 20, None])
def test_a_message_of_another_leader_fences_the_claim(
    tmp_path: Path, nats_options: NatsOptions, writer_term: int | None
) -> None:
    """A message of an equal or higher term, or of no term (not a shard leader's), that lands where the
    successor claims means another writer is live: the claim fails (the process exits 4)."""
    clock = Clock()
    other = js_exchange(tmp_path / "other", clock, nats_options)
    if writer_term is not None:
        other.journal.claim(writer_term, "other")  # type: ignore[attr-defined]
    other.open()
    standby, promote, opening = _follow(tmp_path / "new", nats_options)
    other.deposit("alice", "USD", "1")
    assert other.wait_durable(other.journal.appended, 10)
    _wait_caught_up(standby, other)
    seen = standby.journal.stream_sequence  # type: ignore[attr-defined]
    other.deposit("alice", "USD", "2")
    assert other.wait_durable(other.journal.appended, 10)
    with pytest.raises(JournalFenced, match="another leader"):
        standby.journal.claim(20, "new", expected=seen)  # type: ignore[attr-defined]
    promote.set()
    opening.join(20)
    standby.close()
    other.close()
    assert not [payload for _, _, payload in raw_messages(nats_options) if payload == b"[]"][
        1 if writer_term is not None else 0 :
    ]  # no claim of term 20 was stored


def test_a_claim_as_the_log_s_last_message_reads_back(tmp_path: Path, nats_options: NatsOptions) -> None:
    """A leader that claimed and stopped before writing: the claim is the log's last message. A restart
    from the checkpoint at the record before it, a fresh journal's start, and position lookups all
    treat it as holding no record."""
    clock = Clock()
    first = js_exchange(tmp_path / "a", clock, nats_options)
    first.open()
    first.deposit("alice", "USD", "3")
    assert first.wait_durable(first.journal.appended, 10)
    last = first.journal.appended
    first.close()  # checkpoint at ``last``
    journal = JetStreamJournal(nats_options, "main")
    try:
        journal.claim(7, "x")
    finally:
        journal.close()
    with js_exchange(tmp_path / "a", Clock(), nats_options) as restarted:  # reads from the claim
        assert restarted.replayed_records == 0 and _usd(restarted, "alice") == "3"
        assert restarted.journal.record_at(last + 1) is None
        assert restarted.journal.record_at(last)["op"] == "deposit"  # type: ignore[index]
        assert restarted.wait_durable(restarted.deposit("alice", "USD", "4").position, 10)
    fresh = JetStreamJournal(nats_options, "main")
    try:
        fresh.start()
        assert fresh.appended == last + 1
    finally:
        fresh.close()
    assert [r["n"] for r in raw_records(nats_options)] == list(range(1, last + 2))


def test_a_successor_is_not_fenced_by_its_predecessors_in_flight_message(
    tmp_path: Path, nats_options: NatsOptions
) -> None:
    """Regression (CI): the leader is frozen (SIGSTOP) with a message in flight, the standby takes over,
    and the frozen leader's message reaches the server after that. It used to land on top of the log
    the successor had read, fencing the successor's first command (exit 4, no leader). The message is
    sent here as the frozen leader would send it (its term, its expectation, its next position), at the
    worst moment: after the successor leads and before it has written any command."""
    config = write_config(tmp_path / "markets.toml")
    first = ShardProcess(nats_options, tmp_path / "a", config).start()
    second = ShardProcess(nats_options, tmp_path / "b", config)
    with shard_processes(first, second):
        first.wait_for(": leader ")
        second.start().wait_for("following the log")

        async def scenario() -> None:
            async with ProtocolClient(nats_options) as client:
                await client.wait_for_leader()
                await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "10"})
                sequence, headers, payload = (await asyncio.to_thread(raw_messages, nats_options))[-1]
                position = orjson.loads(payload)[-1]["n"] + 1
                first.signal(signal.SIGSTOP)
                await asyncio.to_thread(second.wait_for, ": leader ", 20.0)
                await client.wait_for_leader()
                late = {"op": "deposit", "ts": time.time(), "user_id": "late", "asset": "USD", "amount": "1"}
                refused = await _publish_late(nats_options, {**late, "n": position}, sequence, headers)
                assert refused, "the deposed leader's late message landed on top of the successor's log"
                answer = await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "5"})
                assert answer["position"] == position
                await asyncio.sleep(3 * LEASE_TTL)
                again = await client.command("deposit", {"user_id": "u0", "asset": "USD", "amount": "1"})
                assert again["position"] == position + 1
                balances = await client.query("balances", {"user_id": "u0"})
                assert balances["balances"]["USD"]["available"] == "16"

        asyncio.run(scenario())
        assert second.process is not None and second.process.poll() is None, second.text()
        assert "FENCED" not in second.text()
        first.signal(signal.SIGCONT)
        assert first.wait(15) in (3, 4)
    assert not [record for record in raw_records(nats_options) if record.get("user_id") == "late"]


async def _publish_late(
    options: NatsOptions, record: dict[str, Any], expected: int, headers: dict[str, str]
) -> bool:
    """Publish ``record`` as the frozen leader would (its term, expecting its last message); True if
    the fence refused it."""
    import nats
    from nats.js.errors import APIError

    nc = await nats.connect(list(options.servers))
    try:
        sent = {
            "Nats-Msg-Id": f"main:{record['n']}",
            "Nats-Expected-Last-Subject-Sequence": str(expected),
        }
        if TERM_HEADER in headers:
            sent[TERM_HEADER] = headers[TERM_HEADER]
        try:
            await nc.jetstream().publish(options.log_subject("main"), orjson.dumps([record]), headers=sent)
        except APIError as exc:
            return exc.err_code == FENCE_ERROR
        return False
    finally:
        await nc.close()


def test_a_claim_while_the_follower_is_still_connecting_waits_for_the_connection(
    nats_options: NatsOptions,
) -> None:
    """Regression: an account shard wins its lease within a millisecond of starting to follow; its
    claim ran on the journal's loop before the follower's connection was made ("the journal is not
    connected": exit 5). Whichever thread starts the loop, the other now waits for its connection."""
    for index in range(5):
        promote = threading.Event()
        journal = JetStreamJournal(nats_options, f"race{index}", follow_until=promote)
        read: list[Any] = []
        failures: list[BaseException] = []

        def follow(
            journal: JetStreamJournal = journal,
            read: list[Any] = read,
            failures: list[BaseException] = failures,
        ) -> None:
            try:
                read.extend(journal.read())
            except BaseException as exc:
                failures.append(exc)

        reading = threading.Thread(target=follow)
        reading.start()
        try:
            claim = journal.claim(1, "x")
        finally:
            promote.set()
            reading.join(20)
        assert not failures, failures
        assert read == [] and journal.stream_sequence == claim
        journal.start()
        assert journal.wait(journal.append({"op": "noop"}), 10)
        journal.close()
        assert [message_term(headers) for _, headers, _ in raw_messages(nats_options, f"race{index}")] == [
            1,
            1,
        ]
