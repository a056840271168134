"""The replay guard against a model that forgets every pair exactly when its window passes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_auth.replay import ReplayGuard, ReplayVerdict

WINDOW = 100.0


class ExactModel:
    """Pairs remembered until ``timestamp + window`` falls below the highest "now" seen."""

    def __init__(self, window_ms: float) -> None:
        self.window_ms = window_ms
        self.seen: dict[tuple[str, bytes], float] = {}
        self.high_water = float("-inf")

    def accept(self, api_key: str, signature: bytes, timestamp_ms: int, now_ms: float) -> ReplayVerdict:
        self.high_water = max(self.high_water, now_ms)
        self.seen = {pair: until for pair, until in self.seen.items() if until >= self.high_water}
        expires = timestamp_ms + self.window_ms
        if expires < self.high_water:
            return ReplayVerdict.STALE
        if (api_key, signature) in self.seen:
            return ReplayVerdict.REPLAYED
        self.seen[(api_key, signature)] = expires
        return ReplayVerdict.ACCEPTED


# Few keys, signatures and times, so that replays, stale requests and re-acceptances happen often;
# "now" mostly moves forward, sometimes back (a stepped clock); timestamps lead or lag it.
requests = st.lists(
    st.tuples(
        st.sampled_from(["k1", "k2"]),
        st.sampled_from([b"a", b"b", b"c"]),
        st.integers(-150, 20),  # timestamp relative to now
        st.integers(-30, 60),  # how far now moves
    ),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(requests)
def test_verdicts_are_those_of_exact_forgetting(steps: list[tuple[str, bytes, int, int]]) -> None:
    guard, model = ReplayGuard(WINDOW), ExactModel(WINDOW)
    now = 1_000
    for api_key, signature, lead, step in steps:
        now += step
        assert guard.accept(api_key, signature, now + lead, now) is model.accept(
            api_key, signature, now + lead, now
        )
        assert len(guard) >= len(model.seen)


def test_pairs_are_forgotten_in_arrival_order_within_a_window_and_lead() -> None:
    guard = ReplayGuard(WINDOW)
    # Accepted first with the latest window: the ones behind it are held until it expires.
    assert guard.accept("k", b"late", 1_020, 1_000) is ReplayVerdict.ACCEPTED
    assert guard.accept("k", b"early", 950, 1_000) is ReplayVerdict.ACCEPTED
    # "early" is past its window (1,050) but still held; it counts as stale, not replayed.
    assert guard.accept("k", b"early", 950, 1_060) is ReplayVerdict.STALE
    assert len(guard) == 2
    # Once "late" (1,120) has passed, both are gone: nothing held beyond a window after arrival.
    assert guard.accept("k", b"new", 1_121, 1_121) is ReplayVerdict.ACCEPTED
    assert len(guard) == 1


def test_a_pair_accepted_again_after_its_window_is_kept_for_its_new_window() -> None:
    guard = ReplayGuard(WINDOW)
    assert guard.accept("k", b"blocker", 1_050, 1_000) is ReplayVerdict.ACCEPTED
    assert guard.accept("k", b"s", 1_000, 1_000) is ReplayVerdict.ACCEPTED  # window ends at 1,100
    # A caller that signs nothing over the timestamp may pass the same signature again later.
    assert guard.accept("k", b"s", 1_120, 1_120) is ReplayVerdict.ACCEPTED  # window ends at 1,220
    assert guard.accept("k", b"x", 1_160, 1_160) is ReplayVerdict.ACCEPTED  # prunes the first "s"
    assert guard.accept("k", b"s", 1_120, 1_170) is ReplayVerdict.REPLAYED
