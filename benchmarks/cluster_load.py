"""The load of :mod:`benchmarks.cluster`: signed resting orders spread over several markets, replayed by
one wrk round robin over every gateway of a configuration.

* :data:`SYMBOLS` / :func:`config_text`: the markets every configuration of a run is given (the same
  TOML for the embedded server and for every shard), all on one grid, so only the symbol differs.
* :func:`write_requests`: request ``n`` is the ``n // U``-th order of user ``n % U`` (``U`` users) on
  market ``(n // U) % K`` (``K`` markets): every user trades every market, every market gets ``1 / K``
  of the orders, and so every market shard gets its share whichever markets it owns. Bodies are
  :func:`benchmarks.server_orders.order_body`'s (distinct per user, so no two requests of a user share
  a signature) with the symbol replaced.
* :func:`run_wrk_over`: one wrk with ``T`` threads, thread ``t`` connected to address ``t mod G``
  (``benchmarks/cluster_wrk.lua``), so wrk's latency histogram holds every request: p50 and p99 are
  exact over all gateways.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from manticore_auth import current_timestamp, sign_request

from .server import pinned
from .server_orders import Trader, order_body

__all__ = ["FUNDING", "LUA", "SYMBOLS", "config_text", "run_wrk_over", "write_requests"]

LUA = Path(__file__).resolve().parent / "cluster_wrk.lua"

#: The markets of every configuration; the load is spread evenly over them.
SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD")

#: What each user is given before the load: the quote asset and every base asset.
FUNDING = (("USD", "1000000000000"), *((symbol.split("/")[0], "10000000") for symbol in SYMBOLS))

_MARKET = """\
[[markets]]
symbol = "{symbol}"
base_asset = "{base}"
quote_asset = "{quote}"
tick_size = "0.01"
lot_size = "0.00001"
maker_fee_rate = "0.001"
taker_fee_rate = "0.002"
"""

_RISK = """\
[risk]
price_band = "0.10"
max_open_orders = 10000000
rate_limit_orders = 10000000
rate_limit_window = 1.0
"""


def config_text(symbols: tuple[str, ...] = SYMBOLS) -> str:
    """The TOML of ``symbols`` (``BASE/QUOTE``) on one grid, with risk limits the load never reaches."""
    markets = []
    for symbol in symbols:
        base, quote = symbol.split("/")
        markets.append(_MARKET.format(symbol=symbol, base=base, quote=quote))
    return "\n".join([*markets, _RISK])


def order_line(trader: Trader, body: dict[str, str], stamp: str) -> str:
    """One line of a requests file: the body signed at ``stamp`` when the trader has a key."""
    text = json.dumps(body, separators=(",", ":"))
    if not trader.api_key:
        return f"\t\t\t{trader.user}\t{text}"
    signature = sign_request(trader.api_secret, stamp, "POST", "/api/orders", text.encode())
    return f"{trader.api_key}\t{stamp}\t{signature}\t\t{text}"


def spread_body(n: int, traders: int, symbols: tuple[str, ...] = SYMBOLS) -> tuple[int, dict[str, str]]:
    """Request ``n``'s user index and body (resting order; see the module docstring)."""
    user = n % traders
    counter = n // traders + 1
    body = order_body("resting", counter, user)
    body["symbol"] = symbols[(n // traders) % len(symbols)]
    return user, body


def write_requests(
    path: Path, traders: list[Trader], count: int, start: int, symbols: tuple[str, ...] = SYMBOLS
) -> None:
    """Write requests ``start`` .. ``start + count - 1`` (signed now) to ``path``; a later file of the
    same server must start after this one's last request (so no order body of a user repeats)."""
    lines = []
    stamp = current_timestamp()
    for n in range(start, start + count):
        if n % 512 == 0:
            stamp = current_timestamp()
        user, body = spread_body(n, len(traders), symbols)
        lines.append(order_line(traders[user], body, stamp))
    path.write_text("\n".join(lines) + "\n")


def run_wrk_over(
    wrk: str,
    urls: list[str],
    requests: Path,
    seconds: float,
    connections: int,
    cpu: str | None,
    threads_per_address: int = 1,
) -> dict[str, Any]:
    """One wrk against every URL of ``urls`` (``http://host:port``) at once, round robin by thread,
    ``connections`` in all (rounded up to a multiple of the threads); its WRKJSON result."""
    addresses = [url.split("//", 1)[1] for url in urls]
    threads = len(addresses) * threads_per_address
    connections = max(threads, -(-connections // threads) * threads)
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    command += ["-s", str(LUA), urls[0], "--", str(requests), str(threads)]
    done = subprocess.run(
        pinned(cpu, command),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        env={**os.environ, "MC_BENCH_ADDRS": ",".join(addresses)},
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result: dict[str, Any] = json.loads(line[8:])
            return result
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
