"""Client order ids at the exchange: the exchange names every order MC-<n>; a client order id is the user's
own name, unique among that user's live orders, invisible to others, kept by the journal, replay and
checkpoints, and read from data directories written before it existed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_matching import Exchange, InvalidCommand, OrderNotFound
from manticore_matching.journal import _decode, _encode
from tests.matching.exchange_streams import Clock, crash_releases_lock, new_exchange


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def exchange(tmp_path: Path, clock: Clock) -> Any:
    with new_exchange(tmp_path, clock) as opened:
        for user in ("alice", "bob"):
            opened.deposit(user, "USD", "10000")
            opened.deposit(user, "BTC", "10")
        yield opened


def _place(exchange: Exchange, user: str, client_id: str | None, price: str = "90", **kwargs: Any) -> Any:
    return exchange.place_order(user, "BTC/USD", "buy", "1", price=price, client_order_id=client_id, **kwargs)


def test_the_exchange_names_orders_and_keeps_the_clients_name_beside(exchange: Exchange) -> None:
    first = _place(exchange, "alice", "mine-1")
    second = _place(exchange, "alice", None)
    assert (first.order_id, second.order_id) == ("MC-1", "MC-2")
    assert first.order is not None and first.order["client_order_id"] == "mine-1"
    assert second.order is not None and second.order["client_order_id"] is None
    assert exchange.get_order("alice", "MC-1")["client_order_id"] == "mine-1"  # type: ignore[index]
    assert exchange.get_order_by_client_id("alice", "mine-1")["order_id"] == "MC-1"  # type: ignore[index]
    assert exchange.wait_durable(exchange.journal.appended, 10)
    place = [r for r in exchange.journal.durable_records() if r["op"] == "place"]
    assert [(r["order_id"], r["client_order_id"]) for r in place] == [("MC-1", "mine-1"), ("MC-2", None)]


def test_a_live_duplicate_of_the_same_user_is_refused_and_changes_nothing(exchange: Exchange) -> None:
    _place(exchange, "alice", "dup")
    before = (exchange.journal.appended, exchange._next_order_no, exchange.balances("alice"))
    with pytest.raises(InvalidCommand) as refused:
        _place(exchange, "alice", "dup", price="80")
    assert refused.value.code == "duplicate_client_order_id" and refused.value.status == 400
    assert (exchange.journal.appended, exchange._next_order_no, exchange.balances("alice")) == before
    assert len(exchange.open_orders("alice")) == 1


def test_another_users_name_is_free_and_invisible(exchange: Exchange) -> None:
    alices = _place(exchange, "alice", "same").order_id
    bobs = _place(exchange, "bob", "same").order_id
    assert alices != bobs
    assert exchange.get_order_by_client_id("alice", "same")["order_id"] == alices  # type: ignore[index]
    assert exchange.get_order_by_client_id("bob", "same")["order_id"] == bobs  # type: ignore[index]
    assert exchange.get_order_by_client_id("carol", "same") is None
    with pytest.raises(OrderNotFound):
        exchange.cancel_order_by_client_id("carol", "same")
    exchange.cancel_order_by_client_id("bob", "same")
    assert exchange.get_order("alice", alices)["status"] == "open"  # type: ignore[index]
    assert exchange.get_order_by_client_id("bob", "same")["status"] == "cancelled"  # type: ignore[index]


def test_a_name_may_be_reused_once_its_order_ended_and_the_newest_is_found(exchange: Exchange) -> None:
    first = _place(exchange, "alice", "again").order_id
    receipt = exchange.cancel_order_by_client_id("alice", "again")
    assert receipt.order_id == first and receipt.order is not None and receipt.order["status"] == "cancelled"
    with pytest.raises(OrderNotFound):
        exchange.cancel_order_by_client_id("alice", "again")  # no live order by that name any more
    second = _place(exchange, "alice", "again").order_id
    assert second != first
    assert exchange.get_order_by_client_id("alice", "again")["order_id"] == second  # type: ignore[index]
    exchange.cancel_order("alice", second)
    third = exchange.place_order("alice", "BTC/USD", "sell", "1", price="200", client_order_id="again")
    assert exchange.get_order_by_client_id("alice", "again")["order_id"] == third.order_id  # type: ignore[index]


def test_filled_orders_free_their_name_and_stay_readable_from_storage(exchange: Exchange) -> None:
    exchange.place_order("bob", "BTC/USD", "sell", "1", price="100", client_order_id="ask")
    receipt = exchange.place_order("alice", "BTC/USD", "buy", "1", price="100", client_order_id="bid")
    assert exchange.wait_durable(receipt.position, 10)
    assert exchange.storage is not None and exchange.storage.flush(10)
    exchange._recent.clear()  # only storage can answer now
    exchange._recent_client_ids.clear()
    found = exchange.get_order_by_client_id("alice", "bid")
    assert found is not None and found["status"] == "filled" and found["order_id"] == "MC-2"
    _place(exchange, "alice", "bid")  # the name is free again


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "a/b", "é", 12])
def test_invalid_names_are_refused(exchange: Exchange, bad: Any) -> None:
    with pytest.raises(InvalidCommand, match="client_order_id"):
        _place(exchange, "alice", bad)
    assert exchange.get_order_by_client_id("alice", str(bad)) is None


@pytest.mark.parametrize("checkpoint", [False, True])
def test_restarts_keep_both_ids_and_the_uniqueness(tmp_path: Path, clock: Clock, checkpoint: bool) -> None:
    exchange = new_exchange(tmp_path, clock)
    exchange.open()
    exchange.deposit("alice", "USD", "1000")
    live = _place(exchange, "alice", "keep").order_id
    gone = _place(exchange, "alice", "gone").order_id
    exchange.cancel_order("alice", gone)
    if checkpoint:
        exchange.close()
    else:  # a crash: no checkpoint, the journal is replayed
        exchange.journal.close()
        assert exchange.storage is not None
        exchange.storage.close()
        crash_releases_lock(exchange)
    with new_exchange(tmp_path, clock) as again:
        assert again.replayed_records == (0 if checkpoint else 6)  # 2 markets, 4 commands
        assert again.get_order_by_client_id("alice", "keep")["order_id"] == live  # type: ignore[index]
        assert again.get_order_by_client_id("alice", "gone")["status"] == "cancelled"  # type: ignore[index]
        with pytest.raises(InvalidCommand):
            _place(again, "alice", "keep")
        assert _place(again, "alice", "gone").order_id == "MC-3"


def _rewrite_journal(directory: Path, change: Any) -> None:
    for segment in sorted(directory.glob("journal-*.log")):
        lines = segment.read_bytes().splitlines(keepends=True)
        records = [_decode(line) for line in lines]
        segment.write_bytes(b"".join(_encode(change(record)) for record in records if record is not None))


def test_an_old_journal_replays_and_a_client_given_order_id_stays_the_order_id(
    tmp_path: Path, clock: Clock
) -> None:
    """Before issue 13 a client_order_id became the order id and records had no client_order_id."""
    old = tmp_path / "old"
    exchange = new_exchange(old, clock)
    exchange.open()
    exchange.deposit("alice", "USD", "1000")
    _place(exchange, "alice", None)
    _place(exchange, "alice", "x")
    exchange.journal.close()
    assert exchange.storage is not None
    exchange.storage.close()
    crash_releases_lock(exchange)

    def to_old_form(record: dict[str, Any]) -> dict[str, Any]:
        record.pop("client_order_id", None)
        if record.get("order_id") == "MC-2":
            record["order_id"] = "legacy-order"
        return record

    copy = tmp_path / "copy"
    shutil.copytree(old / "journal", copy / "journal")
    _rewrite_journal(copy / "journal", to_old_form)
    with new_exchange(copy, clock) as again:
        assert again.get_order("alice", "legacy-order")["client_order_id"] == "legacy-order"  # type: ignore[index]
        assert again.get_order("alice", "MC-1")["client_order_id"] is None  # type: ignore[index]
        with pytest.raises(InvalidCommand):
            _place(again, "alice", "legacy-order")
        assert _place(again, "alice", "new").order_id == "MC-2"  # the counter went on from MC-1
        again.cancel_order_by_client_id("alice", "legacy-order")


def test_an_old_checkpoint_loads(tmp_path: Path, clock: Clock) -> None:
    with new_exchange(tmp_path, clock) as exchange:
        exchange.deposit("alice", "USD", "1000")
        _place(exchange, "alice", None)
        _place(exchange, "alice", "y")
    path = tmp_path / "checkpoint.json"
    state = json.loads(path.read_text())
    for order in state["books"]["BTC/USD"]["orders"]:
        del order["client_order_id"]
        if order["order_id"] == "MC-2":
            order["order_id"] = "old-name"
    path.write_text(json.dumps(state))
    with new_exchange(tmp_path, clock) as again:
        assert again.get_order_by_client_id("alice", "old-name")["order_id"] == "old-name"  # type: ignore[index]
        assert again.get_order("alice", "MC-1")["client_order_id"] is None  # type: ignore[index]
        with pytest.raises(InvalidCommand):
            _place(again, "alice", "old-name")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["place", "place", "cancel", "cross"]),
            st.sampled_from(["alice", "bob"]),
            st.sampled_from(["a", "b", "c"]),
        ),
        max_size=40,
    )
)
def test_names_follow_a_reference_model(tmp_path_factory: pytest.TempPathFactory, steps: list[Any]) -> None:
    """Against a model: a name is taken exactly while an order of that user with that name is live; a
    lookup by name finds the user's newest order of that name; nobody sees another user's names."""
    with new_exchange(tmp_path_factory.mktemp("model"), Clock()) as exchange:
        for user in ("alice", "bob", "carol"):
            exchange.deposit(user, "USD", "100000")
            exchange.deposit(user, "BTC", "100")
        live: dict[tuple[str, str], str] = {}
        newest: dict[tuple[str, str], str] = {}
        for action, user, name in steps:
            key = (user, name)
            if action == "place":
                if key in live:
                    with pytest.raises(InvalidCommand):
                        _place(exchange, user, name)
                    continue
                order_id = _place(exchange, user, name).order_id
                live[key] = newest[key] = order_id
            elif action == "cancel":
                if key in live:
                    assert exchange.cancel_order_by_client_id(user, name).order_id == live.pop(key)
                else:
                    with pytest.raises(OrderNotFound):
                        exchange.cancel_order_by_client_id(user, name)
            else:  # carol sells into every bid at 90: the user's live orders of that name fill and end
                resting = sum(1 for (owner, _), _ in live.items() if owner in ("alice", "bob"))
                if resting:
                    exchange.place_order("carol", "BTC/USD", "sell", str(resting), price="90")
                    live.clear()
            for (owner, label), order_id in newest.items():
                found = exchange.get_order_by_client_id(owner, label)
                assert found is not None and found["order_id"] == order_id
                assert found["client_order_id"] == label
                assert exchange.get_order_by_client_id("carol", label) is None
            assert exchange._live_client_ids == {key: oid for key, oid in live.items()}
