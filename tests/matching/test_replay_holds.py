"""Replay holds a ``place`` record's funds through ``check_and_reserve`` when it approves (its cheaper
fast path) and through ``reserve`` when it refuses: either way the state after the replay is the state
before the crash, the rate limiter's window included.

A restart may run under other limits than the ones the records were approved under (a configuration
change): then ``check_and_reserve`` refuses, changing nothing, and the record is held without checks
and counted against the rate limit, as every replay did before."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from manticore_matching import Exchange
from manticore_risk import RiskLimits
from tests.matching.exchange_streams import (
    START,
    Clock,
    apply,
    crash_releases_lock,
    make_stream,
    new_exchange,
    state,
)

LIVE = RiskLimits(rate_limit_orders=1000, rate_limit_window=60.0, max_open_orders=1000)
#: Refuses most of the stream's orders: one order per user and minute, one open order per user.
STRICT = RiskLimits(rate_limit_orders=1, rate_limit_window=60.0, max_open_orders=1)


def _crash(exchange: Exchange) -> None:
    exchange.journal.close()
    assert exchange.storage is not None
    exchange.storage.close()
    crash_releases_lock(exchange)


def _full_state(exchange: Exchange) -> dict[str, Any]:
    result = state(exchange)
    result["trades"] = {symbol: list(exchange._markets[symbol].trades) for symbol in exchange.markets}
    return result


def _without_window(found: dict[str, Any]) -> dict[str, Any]:
    """The state without the rate limiter's window: a live order that risk approved and the book then
    refused was counted but never journaled, so no replay reproduces that count."""
    result = dict(found)
    result["risk"] = {key: value for key, value in found["risk"].items() if key != "rate_limiter"}
    return result


def _replayed(data_dir: Path, clock: Clock, limits: RiskLimits, records: int) -> dict[str, Any]:
    restarted = new_exchange(data_dir, clock, risk_limits=limits, checkpoint_every=0)
    restarted.open()
    try:
        assert restarted.replayed_records == records
        return _full_state(restarted)
    finally:
        restarted.close(checkpoint=False)


def test_replay_reproduces_the_state_whichever_way_it_holds(tmp_path: Path) -> None:
    clock = Clock(START)
    exchange = new_exchange(tmp_path / "live", clock, risk_limits=LIVE, checkpoint_every=0)
    exchange.open()
    placed = 0
    for command in make_stream(5, 300):
        position = apply(exchange, clock, command)
        placed += position is not None and command["op"] == "place"
    exchange.wait_durable(exchange.journal.appended)
    before = _full_state(exchange)
    assert placed > 50
    _crash(exchange)
    records = exchange.journal.appended
    for name in ("same", "strict"):
        shutil.copytree(tmp_path / "live", tmp_path / name)
    # Under the limits the records were approved under, check_and_reserve approves them (fast path);
    # under the strict ones it refuses most, and reserve holds them: the same state either way, the
    # rate limiter's window (counted by the approval or by count_command) included.
    same = _replayed(tmp_path / "same", clock, LIVE, records)
    strict = _replayed(tmp_path / "strict", clock, STRICT, records)
    assert same == strict
    assert same["risk"]["rate_limiter"]
    assert _without_window(same) == _without_window(before)
