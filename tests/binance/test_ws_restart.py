"""Reconnect after a server crash: ccxt.pro's streams come back on a restarted ``manticore serve``.

The server is killed (SIGKILL) while ccxt.pro watches a book and the user's balance, then started again on
the same data directory and port. The client reconnects and resubscribes by itself (the next ``watch_*``
call), its book matches REST ``depth`` again, including orders placed after the restart, and the user data
stream delivers again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import ccxt.pro
import httpx

from tests.api.support import Server
from tests.binance.ws_support import book_at, ccxt_config, trade_randomly, traders, until, user_id_of


async def _watch_book_through_outage(exchange: ccxt.pro.binance, symbol: str, seconds: float) -> None:
    """Call ``watch_order_book`` until it answers again (network errors while the server is away)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await asyncio.wait_for(exchange.watch_order_book(symbol), 2)
            return
        except (ccxt.NetworkError, asyncio.TimeoutError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def test_ccxt_pro_resubscribes_after_a_server_restart(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.start()
    try:
        http = httpx.Client(base_url=server.url, timeout=15)
        alice, bob = traders(server, http, "rs-alice", "rs-bob")
        alice_id = user_id_of(alice)
        admin = server.admin(http)

        async def scenario() -> None:
            market = ccxt.pro.binance(ccxt_config(server))
            private = ccxt.pro.binance(ccxt_config(server, alice.api_key, alice.api_secret))
            try:
                await market.load_markets()
                await private.load_markets()
                await asyncio.wait_for(market.watch_order_book("BTC/USD"), 15)
                balance_task = asyncio.ensure_future(private.watch_balance())
                await private.ensure_user_data_stream_ws_subscribe_signature("spot")
                await asyncio.sleep(0.2)
                await asyncio.to_thread(trade_randomly, alice, bob, 40, 41)
                await asyncio.wait_for(balance_task, 15)
                rest = await market.fetch_order_book("BTC/USD", 1000)
                book = await book_at(market, "BTC/USD", rest["nonce"])
                assert (book["nonce"], book["bids"], book["asks"]) == (
                    rest["nonce"],
                    rest["bids"],
                    rest["asks"],
                )
                before_restart = rest

                await asyncio.to_thread(server.kill)
                await asyncio.to_thread(server.start)

                await _watch_book_through_outage(market, "BTC/USD", 30)
                rest = await market.fetch_order_book("BTC/USD", 1000)
                assert (rest["nonce"], rest["bids"], rest["asks"]) == (
                    before_restart["nonce"],
                    before_restart["bids"],
                    before_restart["asks"],
                )
                await asyncio.to_thread(trade_randomly, alice, bob, 40, 42)
                rest = await market.fetch_order_book("BTC/USD", 1000)
                assert rest["nonce"] > before_restart["nonce"]
                book = await book_at(market, "BTC/USD", rest["nonce"])
                assert (book["nonce"], book["bids"], book["asks"]) == (
                    rest["nonce"],
                    rest["bids"],
                    rest["asks"],
                )

                async def balance_again() -> None:
                    while True:
                        try:
                            await asyncio.wait_for(private.watch_balance(), 2)
                            return
                        except (ccxt.NetworkError, asyncio.TimeoutError):
                            await asyncio.sleep(0.2)

                watching = asyncio.ensure_future(balance_again())
                await asyncio.sleep(1.0)
                for _ in range(3):  # the watch may still be reconnecting: a later deposit reaches it
                    response = await asyncio.to_thread(
                        admin.post, "/api/deposits", {"user_id": alice_id, "asset": "ETH", "amount": "1"}
                    )
                    assert response.status_code == 201, response.text
                    if watching.done():
                        break
                    await asyncio.sleep(1.0)
                await asyncio.wait_for(watching, 15)
                native = await asyncio.to_thread(lambda: alice.get("/api/balances").json()["balances"])
                await until(
                    lambda: private.balance.get("spot"),
                    lambda b: b.get("ETH", {}).get("free") == float(native["ETH"]["available"]),
                )
            finally:
                await market.close()
                await private.close()

        asyncio.run(scenario())
        http.close()
    finally:
        server.stop()
