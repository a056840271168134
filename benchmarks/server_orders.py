"""The orders that ``benchmarks.server`` sends, and its requests files.

Every order body of one user is distinct (its price and quantity are a one-to-one function of the
user's request counter), so two signed requests of one user never share a signature even when they
carry the same millisecond timestamp: the server's replay guard refuses a repeated signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from manticore_auth import current_timestamp, sign_request

__all__ = ["SCENARIOS", "Trader", "order_body", "write_requests"]

#: resting: limit orders that never cross (buys 0.1-1% under 30,000, sells as far over), so the book
#: grows; crossing: limit orders within 5 ticks of 30,000 on a side that alternates with the user, so
#: most of them fill against other users' orders (and some rest).
SCENARIOS = ("resting", "crossing")

_TICK = Decimal("0.01")
_LOT = Decimal("0.00001")
_MID = Decimal(30000)


@dataclass(frozen=True)
class Trader:
    """Who sends a request: an API key and secret (signed requests) or a user name (``--no-auth`` and
    the reference apps, which ignore it)."""

    user: str
    api_key: str = ""
    api_secret: str = ""


def order_body(scenario: str, counter: int, user_index: int) -> dict[str, str]:
    """The ``counter``-th order (from 1) of the ``user_index``-th user in ``scenario``."""
    if scenario == "resting":
        side = "buy" if (counter + user_index) % 2 else "sell"
        offset = 30 + (counter * 7919) % 270  # 0.1% .. 1% away from the middle, in units of 1 USD
        price = _MID - offset if side == "buy" else _MID + offset
        quantity = _LOT * (1 + counter // 270 % 5000)
    elif scenario == "crossing":
        side = "buy" if (counter + user_index) % 2 else "sell"
        price = _MID + _TICK * ((counter * 31) % 11 - 5)
        quantity = _LOT * (100 + counter // 11 % 50000)
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    return {"symbol": "BTC/USD", "side": side, "price": str(price), "quantity": str(quantity)}


def write_requests(path: Path, scenario: str, traders: list[Trader], count: int, start: int = 0) -> None:
    """Write ``count`` requests, round robin over ``traders``, signed now when the traders have keys.

    ``start``: the request counter already used by earlier files of the same server (a new file must
    not repeat an earlier order body with the same timestamp)."""
    lines = []
    stamp = current_timestamp()
    for n in range(start, start + count):
        user_index = n % len(traders)
        trader = traders[user_index]
        body = json.dumps(order_body(scenario, n // len(traders) + 1, user_index), separators=(",", ":"))
        if trader.api_key:
            if n % 512 == 0:
                stamp = current_timestamp()
            signature = sign_request(trader.api_secret, stamp, "POST", "/api/orders", body.encode())
            lines.append(f"{trader.api_key}\t{stamp}\t{signature}\t\t{body}")
        else:
            lines.append(f"\t\t\t{trader.user}\t{body}")
    path.write_text("\n".join(lines) + "\n")
