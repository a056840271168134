"""Requests in flight at a leader's death are re-sent the moment its successor announces itself
(:mod:`manticore_cluster.leader_news`), not after their attempt timeout, and each still gets exactly
one result (the command id).

Real ``manticore shard`` processes (lease TTL 1 s) on the session's private nats-server; the gateway's
own :class:`~manticore_cluster.remote.RemoteExchange` sends the requests with an attempt timeout of
120 s, so a request re-sent only after its timeout would not be answered within the test's waits."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from manticore_cluster.natsconf import NatsOptions
from manticore_cluster.remote import RemoteExchange
from manticore_matching import ExchangeError
from tests.cluster.helpers import raw_records
from tests.cluster.shard_processes import ShardProcess, shard_processes, write_config

pytestmark = pytest.mark.slow

ATTEMPT_TIMEOUT = 120.0  # far beyond every wait below: only the announcement can re-send in time


@pytest.fixture
def pair(tmp_path: Path, nats_options: NatsOptions) -> Iterator[tuple[ShardProcess, ShardProcess]]:
    config = write_config(tmp_path / "markets.toml")
    first = ShardProcess(nats_options, tmp_path / "a", config)
    second = ShardProcess(nats_options, tmp_path / "b", config)
    with shard_processes(first, second):
        first.start()
        first.wait_for(": leader ", 30)
        second.start()
        second.wait_for("following the log", 30)
        yield first, second


def _remote(options: NatsOptions, shard: str = "main") -> RemoteExchange:
    remote = RemoteExchange(
        list(options.servers),
        shard,
        options.prefix,
        attempt_timeout=ATTEMPT_TIMEOUT,
        deadline=ATTEMPT_TIMEOUT,
    )
    remote.open()
    return remote


def _answer(remote: RemoteExchange, ticket: int, timeout: float = 40.0) -> Any:
    return remote.ticket(ticket).result(timeout)


def test_requests_sent_to_a_frozen_leader_are_answered_once_by_its_successor(
    pair: tuple[ShardProcess, ShardProcess], nats_options: NatsOptions
) -> None:
    """The leader is stopped (SIGSTOP) with deposits in flight to it, then killed (kill -9): the
    standby leads, announces itself, and the gateway re-sends every deposit at once; each is applied
    once (the balance is their sum, each answered at its own position)."""
    leader, standby = pair
    remote = _remote(nats_options)
    try:
        assert remote.balances("alice")["balances"] == {}
        leader.signal(signal.SIGSTOP)
        receipts = [remote.deposit("alice", "USD", str(amount)) for amount in range(1, 21)]
        time.sleep(0.5)  # published: in the stopped leader's socket, unanswered
        assert not any(remote.ticket(receipt.position).done() for receipt in receipts)
        leader.signal(signal.SIGKILL)
        leader.wait(10)
        standby.wait_for(": leader ", 30)
        for receipt in receipts:
            _answer(remote, receipt.position)
        assert remote.leader_news.announcements >= 1
        assert remote.leader_news.abandoned >= len(receipts)  # re-sent on the announcement, not timed out
        balances = remote.balances("alice")["balances"]
        assert Decimal(balances["USD"]["available"]) == sum(Decimal(amount) for amount in range(1, 21))
    finally:
        remote.close()
    records = [record for record in raw_records(nats_options) if record.get("op") == "deposit"]
    assert sorted(Decimal(record["amount"]) for record in records) == list(range(1, 21))
    assert len({record["cid"] for record in records}) == 20


def test_orders_in_flight_at_a_kill_get_one_result_each(
    pair: tuple[ShardProcess, ShardProcess], nats_options: NatsOptions
) -> None:
    """Four clients place orders (each with a client order id) one after the other through the
    gateway's remote exchange; the leader is stopped mid-load (SIGSTOP) and killed (kill -9). Every
    order is answered (those in flight at the kill by the successor, on its announcement), and is in
    the log exactly once with the order id it was answered with."""
    leader, standby = pair
    remote = _remote(nats_options)
    answered: dict[str, str] = {}  # client order id -> answered order id
    failures: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()

    def place(client: int) -> None:
        number = 0
        while not stop.is_set():
            number += 1
            name = f"c{client}-{number}"
            try:
                receipt = remote.place_order(
                    f"u{client}", "BTC/USD", "sell", "0.1", price="1000", client_order_id=name
                )
                _answer(remote, receipt.position)
            except (ExchangeError, TimeoutError) as exc:
                failures.append(exc)
                return
            with lock:
                answered[name] = str(receipt.order_id)

    try:
        for client in range(4):
            remote.deposit(f"u{client}", "BTC", "10000")
        threads = [threading.Thread(target=place, args=(client,)) for client in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        with lock:
            before = len(answered)
        # Stopped first, so that every client's next order is surely in flight to it at the kill
        # (killed while idle between two answers, it left nothing in flight: each request then
        # found no responder and waited out a pause instead, and the check below could not hold).
        leader.signal(signal.SIGSTOP)
        time.sleep(0.5)
        leader.signal(signal.SIGKILL)
        leader.wait(10)
        standby.wait_for(": leader ", 30)
        deadline = time.monotonic() + 30
        while len(answered) < before + 40 and time.monotonic() < deadline and not failures:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert not failures, failures
        assert len(answered) >= before + 40  # the load went on after the failover
        assert remote.leader_news.abandoned >= 4  # each client's order in flight was re-sent on it
    finally:
        stop.set()
        remote.close()
    places = [record for record in raw_records(nats_options) if record.get("op") == "place"]
    by_name: dict[str, list[str]] = {}
    for record in places:
        by_name.setdefault(record["client_order_id"], []).append(record["order_id"])
    for name, order_id in answered.items():
        assert by_name.get(name) == [order_id], name
