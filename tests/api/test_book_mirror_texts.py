"""The Binance surface's book mirror (:class:`manticore_api.binance.book_mirror.MirrorSide`): its cache of
price keys with more distinct prices than it holds, and texts that are no number refused as before.
Any spelling and zeros of every form against a ``Decimal`` model: the property test in
tests/binance/test_ws_units.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from manticore_api.binance import book_mirror
from manticore_api.binance.book_mirror import MirrorSide


def test_more_prices_than_the_cache_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book_mirror, "KEY_CACHE_SIZE", 8)
    side = MirrorSide(descending=True)
    for round_ in range(3):
        for tick in range(1, 40):
            side.set(f"{tick}.{round_}", "1")
    assert len(side.levels) == 3 * 39
    assert side.best() == (Decimal("39.2"), "1")
    for tick in range(1, 40):
        side.set(f"{tick}.2", "0")
    assert side.best() == (Decimal("39.1"), "1")


@pytest.mark.parametrize("text", ["", ".", "abc", "1.2.3", "--1"])
def test_text_that_is_no_number_is_refused_as_before(text: str) -> None:
    side = MirrorSide(descending=False)
    with pytest.raises(ArithmeticError):
        side.set("1.00", text)
    with pytest.raises(ArithmeticError):
        side.set(text, "1")
    assert side.levels == {}
