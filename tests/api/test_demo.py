"""Demo mode: the refusal on public addresses, the demo users, and the simulated traders."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from manticore_api.cli import main
from manticore_api.simulation import DEMO_PASSWORDS, MarketBots, Simulation, prepare_demo
from manticore_auth import AuthManager, load_or_create_master_key
from manticore_matching import DEFAULT_MARKETS, DEFAULT_RISK_LIMITS, Exchange


def test_demo_is_refused_on_a_public_address(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--demo", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "refusing to run the demo" in result.output
    assert not any(tmp_path.iterdir())


def _totals(exchange: Exchange, auth: AuthManager, assets: list[str]) -> dict[str, Decimal]:
    totals = dict.fromkeys(assets, Decimal(0))
    for user in auth.list_users():
        for asset, entry in exchange.balances(user.user_id)["balances"].items():
            totals[asset] += Decimal(entry["available"]) + Decimal(entry["held"])
    return totals


def test_bots_trade_through_risk_and_the_journal(tmp_path: Path) -> None:
    now = [1_800_000_000.0]  # the bots step once a (simulated) second, within the default rate limit
    exchange = Exchange(
        tmp_path, markets=DEFAULT_MARKETS, risk_limits=DEFAULT_RISK_LIMITS, clock=lambda: now[0], fsync=False
    )
    exchange.open()
    auth = AuthManager(
        f"sqlite:///{tmp_path / 'auth.db'}", master_key=load_or_create_master_key(tmp_path / "key")
    )
    try:
        accounts, bots = prepare_demo(exchange, auth)
        assert {a.username: a.password for a in accounts} == DEMO_PASSWORDS
        assert auth.login("alice", "alice-demo-password")
        alice = accounts[0].user_id
        assert exchange.balances(alice)["balances"]["USD"]["available"] == "100000"
        again, _ = prepare_demo(exchange, auth)  # idempotent: no second deposit
        assert again == accounts
        assert exchange.balances(alice)["balances"]["USD"]["available"] == "100000"

        simulation = Simulation(exchange, bots, seed=7)
        assert [m.config.symbol for m in simulation.markets] == ["BTC/USD", "ETH/USD", "ETH/BTC"]
        before = _totals(exchange, auth, ["USD", "BTC", "ETH"])
        appended = exchange.journal.appended
        commands = 0
        for _ in range(40):
            now[0] += 1.0
            commands += sum(bots_.step() for bots_ in simulation.markets)
        assert exchange.journal.appended > appended  # every bot command is journaled
        assert commands <= 40 * 3 * (2 * MarketBots.levels + 1)
        for bots_ in simulation.markets:
            snapshot = exchange.get_snapshot(bots_.config.symbol, 1)
            assert snapshot["bids"] and snapshot["asks"]
            assert Decimal(snapshot["bids"][0]["price"]) < Decimal(snapshot["asks"][0]["price"])
            assert exchange.recent_trades(bots_.config.symbol, 10)
        # money is conserved apart from fees (the bots' deposits are the only inflow)
        after = _totals(exchange, auth, ["USD", "BTC", "ETH"])
        for asset in before:
            assert after[asset] <= before[asset]
    finally:
        exchange.close()
        auth.close()
