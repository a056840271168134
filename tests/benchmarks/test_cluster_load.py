"""The cluster benchmark's load is spread as its report says: every market gets its share of the orders,
every user trades every market, no user repeats an order body (a repeated signature would be refused),
and the market shards of a configuration own the markets round robin like ``manticore cluster``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from benchmarks.cluster_load import SYMBOLS, config_text, spread_body, write_requests
from benchmarks.cluster_procs import market_owners
from benchmarks.server_orders import Trader
from hypothesis import given
from hypothesis import strategies as st

from manticore_cluster.local import plan
from manticore_matching import load_markets


@given(users=st.integers(1, 12), rounds=st.integers(1, 6), start_round=st.integers(0, 50))
def test_every_market_gets_its_share_and_every_user_trades_every_market(
    users: int, rounds: int, start_round: int
) -> None:
    count = users * len(SYMBOLS) * rounds
    start = users * len(SYMBOLS) * start_round
    orders = [spread_body(n, users) for n in range(start, start + count)]
    per_market = Counter(body["symbol"] for _, body in orders)
    assert per_market == {symbol: count // len(SYMBOLS) for symbol in SYMBOLS}
    for user in range(users):
        assert {body["symbol"] for u, body in orders if u == user} == set(SYMBOLS)
    bodies = [(user, json.dumps(body, sort_keys=True)) for user, body in orders]
    assert len(set(bodies)) == len(bodies)


def test_a_requests_file_is_signed_per_user_and_spread(tmp_path: Path) -> None:
    traders = [Trader(f"t{n}", f"key{n}", f"secret{n}") for n in range(3)]
    path = tmp_path / "load.tsv"
    write_requests(path, traders, 24, start=6)
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    assert len(lines) == 24
    assert [fields[0] for fields in lines[:3]] == ["key0", "key1", "key2"]  # request 6 is user 6 % 3
    assert Counter(json.loads(fields[4])["symbol"] for fields in lines) == {s: 6 for s in SYMBOLS}
    assert len({(fields[0], fields[2]) for fields in lines}) == 24  # no signature twice


def test_the_config_holds_the_markets_and_the_shards_own_them_as_manticore_cluster_deals_them(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(config_text())
    assert tuple(market.symbol for market in load_markets(config)) == SYMBOLS
    for shards in (1, 2, 3, 4):
        owners = market_owners(SYMBOLS, shards)
        assert sorted(symbol for listed in owners.values() for symbol in listed) == sorted(SYMBOLS)
        assert max(map(len, owners.values())) - min(map(len, owners.values())) <= 1
        local = plan(
            nats_url="nats://127.0.0.1:4222",
            data_dir=tmp_path,
            standbys=0,
            gateways=1,
            host="127.0.0.1",
            port=8000,
            prefix="mc",
            shard="acct",
            lease_ttl=5.0,
            config_path=None,
            market_shards=shards,
            symbols=SYMBOLS,
        )
        gateway = local.gateways[0].argv
        routed = [gateway[i + 1] for i, arg in enumerate(gateway) if arg == "--market-shard"]
        assert routed == [f"{name}={','.join(listed)}" for name, listed in owners.items()]
