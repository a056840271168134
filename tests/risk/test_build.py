"""Which build of manticore_risk is under test: compiled with the order book (mypyc) or the pure source.

``make test-compiled`` sets ``MANTICORE_EXPECT_COMPILED=1`` and runs tests/risk against the installed
mypyc build (risk is compiled in the same build as the book, setup.py's ``ALSO_COMPILED``); the plain
run tests the editable (pure-Python) install. The list of compiled modules is setup.py's own.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import pytest

import manticore_orderbook
import manticore_risk

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "src" / "manticore_risk"
EXPECT_COMPILED = bool(os.environ.get("MANTICORE_EXPECT_COMPILED"))


def _load_setup() -> ModuleType:
    """A fresh copy of setup.py as a module (its ``setup()`` only runs when the file is executed)."""
    spec = importlib.util.spec_from_file_location("manticore_setup_risk", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP = _load_setup()
INTERPRETED: dict[str, str] = SETUP.ALSO_COMPILED["manticore_risk"]


def _is_extension(module: ModuleType) -> bool:
    return (module.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))


def test_compiled_says_which_build_is_loaded() -> None:
    assert manticore_risk.COMPILED is EXPECT_COMPILED
    assert manticore_risk.COMPILED is manticore_orderbook.COMPILED  # one build compiles both


@pytest.mark.parametrize("name", SETUP.compiled_modules_of("manticore_risk"))
def test_every_compiled_module_is_of_the_build_under_test(name: str) -> None:
    module = importlib.import_module(f"manticore_risk.{name}")
    assert _is_extension(module) is EXPECT_COMPILED, module.__file__


@pytest.mark.parametrize("name", sorted(INTERPRETED))
def test_the_named_exclusions_stay_interpreted(name: str) -> None:
    module = importlib.import_module("manticore_risk" if name == "__init__" else f"manticore_risk.{name}")
    assert Path(module.__file__ or "").suffix == ".py"


def test_the_compiled_list_is_the_package_minus_its_named_exclusions() -> None:
    modules = {path.stem for path in SOURCES.glob("*.py")}
    assert set(INTERPRETED) <= modules, "an exclusion names a module that no longer exists"
    assert all(reason.strip() for reason in INTERPRETED.values())
    assert set(SETUP.compiled_modules_of("manticore_risk")) == modules - set(INTERPRETED)
    assert {"manager", "ledger", "settlement", "tracking"} <= set(SETUP.compiled_modules_of("manticore_risk"))
    paths = SETUP.compiled_paths()
    assert "src/manticore_risk/manager.py" in paths and "src/manticore_orderbook/book.py" in paths


def test_no_compiled_module_sits_next_to_the_sources() -> None:
    """An editable install must run the edited ``.py`` files, never a stale extension module beside them."""
    stale = [p.name for p in SOURCES.iterdir() if p.name.endswith(tuple(EXTENSION_SUFFIXES))]
    assert stale == []


def test_tracked_orders_and_balances_are_not_tracked_by_the_cyclic_gc_when_compiled() -> None:
    """``TrackedOrder`` and ``Balance`` hold no container that could lead back to them (``acyclic``): the
    compiled classes carry no GC header and are never traversed by a collection (thousands of tracked
    orders live at once); the interpreted ones are ordinary slotted objects, tracked as usual."""
    import gc
    from decimal import Decimal

    from manticore_orderbook import OrderBook
    from manticore_risk import RiskManager

    book = OrderBook("BTC/USD", number_format="str", tick_size="0.01", lot_size="0.001")
    risk = RiskManager()
    risk.register_market("BTC/USD", "BTC", "USD", book)
    risk.deposit("u", "USD", "1000")
    decision = risk.check_and_reserve(
        "o1",
        user_id="u",
        symbol="BTC/USD",
        side="buy",
        order_type="limit",
        price="10",
        quantity="1",
        now=1.0,
    )
    assert decision["approved"]
    order = risk._registry.by_id["o1"]
    assert order.balance is not None and order.balance.held == Decimal("10.0000")
    compiled = manticore_risk.COMPILED
    assert gc.is_tracked(order) is not compiled
    assert gc.is_tracked(order.balance) is not compiled
