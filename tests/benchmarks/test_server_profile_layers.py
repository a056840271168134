"""The by-layer profile's attribution of C functions (benchmarks/server_profile.py)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from benchmarks import server_profile


@pytest.fixture
def compiled_risk_module() -> Iterator[types.ModuleType]:
    """A stand-in for a mypyc-compiled risk module: an extension file, one class defined in it."""
    module = types.ModuleType("manticore_risk.fake_compiled")
    module.__file__ = "/x/manticore_risk/fake_compiled.cpython-311-x86_64-linux-gnu.so"
    cls = type("FakeRiskThing", (), {"__module__": module.__name__})
    module.FakeRiskThing = cls  # type: ignore[attr-defined]
    module.imported = dict  # type: ignore[attr-defined]  # defined elsewhere: not listed
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_compiled_classes_lists_classes_defined_in_compiled_modules(
    compiled_risk_module: types.ModuleType,
) -> None:
    classes = server_profile.compiled_classes()
    assert classes["FakeRiskThing"] == "/manticore_risk/fake_compiled.py"
    assert "dict" not in classes


def test_compiled_module_of_functions_and_methods() -> None:
    classes = {"OrderBook": "/manticore_orderbook/book.py", "RiskManager": "/manticore_risk/manager.py"}
    of = server_profile.compiled_module
    assert of("manticore_orderbook.numbers", "to_decimal", classes) == "/manticore_orderbook/numbers.py"
    assert of("builtins", "<method 'add_order' of 'OrderBook' objects>", classes) == (
        "/manticore_orderbook/book.py"
    )
    assert of("builtins", "<method 'get' of 'dict' objects>", classes) is None
    assert of("builtins", "sorted", classes) is None
    assert server_profile.layer_of(of("orjson", "loads", classes) or "", "MainThread") == "JSON"
    hexdigest = of("builtins", "<method 'hexdigest' of '_hashlib.HMAC' objects>", classes) or ""
    assert server_profile.layer_of(hexdigest, "MainThread") == "auth (API key signature, replay guard)"
    book = of("builtins", "<method 'add_order' of 'OrderBook' objects>", classes)
    risk = of("builtins", "<method 'check' of 'RiskManager' objects>", classes)
    assert book is not None and risk is not None
    assert server_profile.layer_of(book, "MainThread") == "matching / order book"
    assert server_profile.layer_of(risk, "MainThread") == "risk"


def test_our_protocol_and_validation_have_their_layers() -> None:
    assert server_profile.layer_of("/s/manticore_api/protocol.py", "MainThread") == server_profile.LAYERS[0]
    assert server_profile.layer_of("/s/manticore_api/plainorder.py", "MainThread") == server_profile.LAYERS[3]
    assert server_profile.layer_of("/s/manticore_api/app.py", "MainThread") == (
        "manticore_api handlers, service, metrics"
    )
