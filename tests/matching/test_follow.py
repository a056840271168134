"""Exchange.follow: a standby applies another exchange's journal records as they appear."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import Exchange, JournalCorrupt
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange, state


def _standby(data_dir: Path) -> Exchange:
    """An exchange that creates no market of its own: every market comes from the followed records."""
    return Exchange(data_dir, clock=Clock(0.0), fsync=False)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 150), max_size=6))
def test_a_follower_reaches_the_leaders_state_at_every_step(
    tmp_path_factory: pytest.TempPathFactory, seed: int, cuts: list[int]
) -> None:
    stream = make_stream(seed, 150)
    clock = Clock()
    leader = new_exchange(tmp_path_factory.mktemp("leader"), clock)
    follower = _standby(tmp_path_factory.mktemp("follower"))
    with leader, follower:
        followed = 0

        def catch_up() -> None:
            nonlocal followed
            leader.wait_durable(leader.journal.appended, 10)
            for record in leader.journal.durable_records(after=followed):
                follower.follow(copy.deepcopy(record))
                followed = record["n"]
            assert state(follower) == state(leader)

        for index, command in enumerate(stream):
            if index in cuts:
                catch_up()
            apply(leader, clock, command)
        catch_up()
        assert follower.replayed_records == leader.journal.appended
        for asset in ("USD", "BTC", "ETH"):
            assert follower.risk.total(asset) == leader.risk.total(asset)
        assert follower.storage is not None
        follower.storage.flush()
        for symbol in follower.markets:
            report = follower.storage.reconcile(follower.book(symbol))
            assert report.ok, report


def test_the_followers_clock_never_falls_below_a_followed_record(tmp_path: Path) -> None:
    clock = Clock()
    with new_exchange(tmp_path / "leader", clock) as leader, _standby(tmp_path / "follower") as follower:
        leader.deposit("alice", "USD", "1000")
        leader.deposit("bob", "BTC", "5")
        clock.now += 50
        leader.place_order("alice", "BTC/USD", "buy", "1", price="100")
        leader.wait_durable(leader.journal.appended, 10)
        for record in leader.journal.durable_records():
            follower.follow(record)
        # The follower's own clock reads 0: a command it runs after taking over is stamped no earlier
        # than the last record it followed.
        receipt = follower.deposit("carol", "USD", "1")
        assert receipt.position >= 1
        assert follower._now == clock.now


def test_a_diverging_record_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    with new_exchange(tmp_path / "leader", clock) as leader, _standby(tmp_path / "follower") as follower:
        leader.deposit("alice", "USD", "1000")
        leader.deposit("bob", "BTC", "5")
        leader.place_order("bob", "BTC/USD", "sell", "1", price="100")
        leader.place_order("alice", "BTC/USD", "buy", "1", price="100")
        leader.wait_durable(leader.journal.appended, 10)
        records = list(leader.journal.durable_records())
        for record in records[:-1]:
            follower.follow(record)
        tampered = dict(records[-1], quantity="0.5")
        with pytest.raises(JournalCorrupt, match="diverged"):
            follower.follow(tampered)


def test_follow_needs_an_open_exchange(tmp_path: Path) -> None:
    follower = _standby(tmp_path)
    with pytest.raises(RuntimeError, match="not open"):
        follower.follow({"op": "deposit", "ts": 1.0, "user_id": "a", "asset": "USD", "amount": "1", "n": 1})
    with follower:
        follower.follow({"op": "deposit", "ts": 1.0, "user_id": "a", "asset": "USD", "amount": "1", "n": 1})
        assert follower.risk.total("USD") == Decimal("1")
