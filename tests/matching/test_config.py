"""Market and risk configuration from TOML."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from manticore_matching import DEFAULT_RISK_LIMITS, ConfigError, MarketConfig, load_markets, load_risk_limits

GOOD = """
[[markets]]
symbol = "SOL/USD"
base_asset = "SOL"
quote_asset = "USD"
tick_size = "0.001"
lot_size = 0.1
maker_fee_rate = "-0.0001"
taker_fee_rate = "0.0005"

[risk]
price_band = "0.05"
max_open_orders = 10
rate_limit_orders = 5
rate_limit_window = 2
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "markets.toml"
    path.write_text(text)
    return path


def test_markets_and_limits_load_exactly(tmp_path: Path) -> None:
    path = _file(tmp_path, GOOD)
    (market,) = load_markets(path)
    assert market == MarketConfig(
        "SOL/USD", "SOL", "USD", Decimal("0.001"), Decimal("0.1"), Decimal("-0.0001"), Decimal("0.0005")
    )
    limits = load_risk_limits(path)
    assert limits.price_band == Decimal("0.05") and limits.max_open_orders == 10
    assert limits.rate_limit_orders == 5 and limits.rate_limit_window == 2.0
    assert MarketConfig.from_dict(market.to_dict()) == market


def test_without_a_risk_table_the_defaults_apply(tmp_path: Path) -> None:
    path = _file(tmp_path, GOOD.split("[risk]")[0])
    assert load_risk_limits(path) == DEFAULT_RISK_LIMITS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not valid TOML"),
        ("x = 1", "at least one"),
        (GOOD.replace('symbol = "SOL/USD"', 'symbol = "sol-usd"'), "symbol"),
        (GOOD.replace('tick_size = "0.001"', 'tick_size = "-1"'), "positive"),
        (GOOD.replace('tick_size = "0.001"', 'tick_size = "NaN"'), "finite"),
        (GOOD.replace('taker_fee_rate = "0.0005"', 'taker_fee_rate = "0"'), "rebate"),
        (GOOD.replace("lot_size = 0.1", 'lot_size = 0.1\ncolour = "red"'), "unknown market fields"),
        (GOOD + GOOD.split("[risk]")[0], "defined twice"),
    ],
)
def test_bad_market_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_markets(_file(tmp_path, text))


@pytest.mark.parametrize(
    ("risk", "message"),
    [
        ("colour = 1", "unknown"),
        ('price_band = "-1"', "price_band"),
        ("rate_limit_orders = 5", "rate_limit_window"),
    ],
)
def test_bad_risk_tables_name_the_problem(tmp_path: Path, risk: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_risk_limits(_file(tmp_path, GOOD.split("[risk]")[0] + "[risk]\n" + risk + "\n"))


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_markets(tmp_path / "absent.toml")
