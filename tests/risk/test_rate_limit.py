"""The rate limiter's retry-after: the wait until the oldest counted approval leaves the window."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from manticore_orderbook import OrderBook
from manticore_risk import RiskLimits, RiskManager
from manticore_risk.rate_limit import RateLimiter


def test_retry_after_is_when_the_oldest_counted_event_leaves() -> None:
    limiter = RateLimiter(limit=3, window=10.0)
    assert limiter.retry_after("alice", 0.0) == 0.0  # nothing recorded
    for t in (1.0, 2.0, 4.0):
        limiter.record("alice", t)
    assert limiter.retry_after("alice", 5.0) == 6.0  # 1.0 leaves at 11.0
    assert not limiter.allows("alice", 10.999)
    assert limiter.allows("alice", 11.0)
    assert limiter.retry_after("alice", 11.0) == 0.0
    assert limiter.retry_after("bob", 5.0) == 0.0  # per user


def test_retry_after_counts_only_events_inside_the_window() -> None:
    limiter = RateLimiter(limit=2, window=5.0)
    for t in (0.0, 6.0, 7.0):
        limiter.record("alice", t)
    # 0.0 no longer counts at 8.0; of 6.0 and 7.0, 6.0 leaves first (at 11.0)
    assert limiter.retry_after("alice", 8.0) == 3.0


@given(
    limit=st.integers(min_value=1, max_value=5),
    window=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=30),
    later=st.integers(min_value=0, max_value=30),
)
def test_waiting_retry_after_is_exactly_enough(limit: int, window: int, gaps: list[int], later: int) -> None:
    """Whole-number times keep the arithmetic exact: at ``now + retry_after`` the limiter allows one
    more event, and half a second earlier it still refuses (when there is a wait at all)."""
    limiter = RateLimiter(limit=limit, window=float(window))
    now = 0
    for gap in gaps:
        now += gap
        if limiter.allows("u", now):
            limiter.record("u", now)
    now += later
    wait = limiter.retry_after("u", now)
    assert (wait == 0) == limiter.allows("u", now)
    assert limiter.allows("u", now + wait)
    if wait > 0:
        assert not limiter.allows("u", now + wait - 0.5)


def test_a_rate_limited_decision_carries_the_wait_and_the_limit() -> None:
    book = OrderBook("BTC/USD", number_format="str", tick_size="0.01", lot_size="0.001")
    risk = RiskManager(limits=RiskLimits(rate_limit_orders=2, rate_limit_window=3.0))
    risk.register_market("BTC/USD", "BTC", "USD", book)
    risk.deposit("alice", "USD", Decimal("1000"))
    args = {"user_id": "alice", "symbol": "BTC/USD", "side": "buy", "order_type": "limit"}
    for now in (100.0, 100.5):
        assert risk.check_order(**args, price=Decimal("1"), quantity=Decimal("1"), now=now)["approved"]
    refused = risk.check_order(**args, price=Decimal("1"), quantity=Decimal("1"), now=101.25)
    assert refused["code"] == "rate_limited"
    assert refused["retry_after"] == 1.75 and refused["rate_limit"] == 2
    assert "1.75" in refused["reason"]


@given(
    limit=st.integers(min_value=1, max_value=5),
    window=st.integers(min_value=1, max_value=20),
    steps=st.lists(
        st.tuples(st.sampled_from(["u", "v"]), st.integers(min_value=0, max_value=8)), min_size=1, max_size=40
    ),
)
def test_take_is_allows_then_record(limit: int, window: int, steps: list[tuple[str, int]]) -> None:
    """``take`` (the fast path's one call) answers as ``allows`` and, when it allows, counts as
    ``record``: two limiters fed the same events, one each way, agree on every answer and export the
    same window; a refused ``take`` changes nothing."""
    one_call = RateLimiter(limit=limit, window=float(window))
    two_calls = RateLimiter(limit=limit, window=float(window))
    now = 0
    for user, gap in steps:
        now += gap
        before = one_call.export()
        allowed = two_calls.allows(user, now)
        if allowed:
            two_calls.record(user, now)
        assert one_call.take(user, now) == allowed
        if not allowed:
            assert one_call.export() == before
        assert one_call.export() == two_calls.export()
