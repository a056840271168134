"""Which build of manticore_orderbook the suite is testing (``make test`` runs it on both)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from manticore_orderbook import book, events, numbers, price_index


@pytest.mark.skipif(not os.environ.get("MANTICORE_EXPECT_COMPILED"), reason="testing the pure-Python source")
def test_the_mypyc_build_is_the_one_under_test() -> None:
    for module in (book, events, numbers, price_index):
        assert Path(module.__file__ or "").suffix in (".so", ".pyd"), f"{module.__name__} is not compiled"


def test_the_numbers_module_knows_which_build_it_is() -> None:
    """``numbers._INTERPRETED`` picks the float memo (interpreter only); it must match the build."""
    compiled = Path(numbers.__file__ or "").suffix in (".so", ".pyd")
    assert numbers._INTERPRETED is not compiled
