"""Deposits, withdrawals, balances and totals; bad amounts change nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from manticore_risk import InsufficientFunds, RiskError, RiskManager


def test_deposit_and_withdraw_are_exact() -> None:
    risk = RiskManager()
    risk.deposit("alice", "USD", "0.1")
    risk.deposit("alice", "USD", Decimal("0.2"))
    risk.deposit("alice", "BTC", 3)
    risk.withdraw("alice", "USD", "0.3")
    assert risk.balances("alice") == {
        "USD": {"available": "0", "held": "0"},
        "BTC": {"available": "3", "held": "0"},
    }
    assert risk.total("USD") == 0
    assert risk.total("BTC") == 3
    assert risk.total("ETH") == 0
    assert risk.balances("nobody") == {}
    assert risk.fees_collected() == {}


def test_many_decimals_are_kept_exactly() -> None:
    risk = RiskManager()
    risk.deposit("u", "USD", "123456789012345678901234567890.123456789012345678901")
    risk.deposit("u", "USD", "0.000000000000000000000000000001")
    assert (
        risk.balances("u")["USD"]["available"]
        == "123456789012345678901234567890.123456789012345678901000000001"
    )


@pytest.mark.parametrize(
    "amount", ["0", "-1", 0, -5, "NaN", "inf", "-Infinity", "abc", "", 1.5, True, None, [1], Decimal("NaN")]
)
def test_bad_amounts_raise_value_error_and_change_nothing(amount: object) -> None:
    risk = RiskManager()
    risk.deposit("alice", "USD", "10")
    before = risk.export_state()
    with pytest.raises(ValueError):
        risk.deposit("alice", "USD", amount)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        risk.withdraw("alice", "USD", amount)  # type: ignore[arg-type]
    assert risk.export_state() == before


@pytest.mark.parametrize(
    ("user", "asset"), [(None, "USD"), (True, "USD"), (1.5, "USD"), ("a", ""), ("a", None)]
)
def test_bad_user_or_asset_raise_value_error(user: object, asset: object) -> None:
    risk = RiskManager()
    with pytest.raises(ValueError):
        risk.deposit(user, asset, "1")  # type: ignore[arg-type]
    assert risk.export_state()["accounts"] == []


def test_integer_user_ids_are_kept_apart_from_strings() -> None:
    risk = RiskManager()
    risk.deposit(7, "USD", "1")
    risk.deposit("7", "USD", "2")
    assert risk.balances(7) == {"USD": {"available": "1", "held": "0"}}
    assert risk.balances("7") == {"USD": {"available": "2", "held": "0"}}


def test_withdrawing_more_than_available_raises_insufficient_funds() -> None:
    risk = RiskManager()
    risk.deposit("alice", "USD", "10")
    before = risk.export_state()
    with pytest.raises(InsufficientFunds) as info:
        risk.withdraw("alice", "USD", "10.01")
    assert isinstance(info.value, RiskError)
    assert "10" in str(info.value)
    with pytest.raises(InsufficientFunds):
        risk.withdraw("bob", "USD", "1")
    assert risk.export_state() == before
    risk.withdraw("alice", "USD", "10")
    assert risk.balances("alice")["USD"] == {"available": "0", "held": "0"}
