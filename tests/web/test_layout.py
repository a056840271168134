"""The page at a 1024 px laptop width in a real browser: numbers shown with the market's and asset's
decimals and thousands separators, nothing overflowing, and the user's own resting orders marked in
the ladder (Playwright driving /usr/bin/chromium against the real server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.support import SignedClient
from tests.web.support import ARTIFACTS, CHROMIUM, Server, create_user

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')"
)
expect = sync_api.expect

if not CHROMIUM.exists():
    pytest.skip(
        f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does)",
        allow_module_level=True,
    )

#: Every element of these panels whose content is wider than its box, and the document's own width.
OVERFLOW = """() => {
    const panels = [".book-panel", ".balances-box", ".account-panel", ".trade-panel"];
    const offenders = [];
    for (const selector of panels) {
        const panel = document.querySelector(selector);
        for (const element of [panel, ...panel.querySelectorAll("*")]) {
            if (element.clientWidth > 0 && element.scrollWidth > element.clientWidth) {
                const name = `${selector} ${element.tagName.toLowerCase()}.${element.className}`;
                const sizes = `${element.scrollWidth} > ${element.clientWidth}`;
                offenders.push(`${name} ${sizes}: ${element.textContent.slice(0, 40)}`);
            }
        }
    }
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) {
        offenders.push(`document ${root.scrollWidth} > ${root.clientWidth}`);
    }
    return offenders;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    running.start()
    yield running
    running.stop()


def _signed_in_page(browser: Any, server: Server, username: str, password: str) -> Any:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "yes")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.locator("body")).to_have_attribute("data-signed-in", "yes")
    return page


def _place(client: SignedClient, side: str, price: str, quantity: str) -> str:
    placed = client.post(
        "/api/orders", {"symbol": "BTC/USD", "side": side, "price": price, "quantity": quantity}
    )
    assert placed.status_code == 201, placed.text
    return str(placed.json()["order_id"])


def test_numbers_fit_at_1024_and_own_orders_are_marked(server: Server, browser: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        admin = server.admin(http)
        alice = create_user(
            admin, "alice", "alice-password", {"USD": "985649.0485110358", "BTC": "12345.123456789"}
        )
        bob = create_user(admin, "bob", "bob-password", {"USD": "1000000", "BTC": "5000"})
        alice_client = SignedClient(http, alice["api_key"], alice["api_secret"])
        bob_client = SignedClient(http, bob["api_key"], bob["api_secret"])
        _place(alice_client, "buy", "29990.00", "0.5")
        _place(alice_client, "sell", "30020.00", "1234.5")
        _place(bob_client, "buy", "29980.00", "2")
        _place(bob_client, "sell", "30030.00", "3")
        _place(bob_client, "buy", "30020.00", "0.25")  # trades with alice: a fill and a fee

        page = _signed_in_page(browser, server, "alice", "alice-password")
        balances = page.get_by_test_id("balances")
        usd = balances.locator("tr[data-asset=USD]")
        # 985649.0485110358 - 15024.99 held for the bid (29990 x 0.5 x 1.002) + 7505 sold - 7.505 fee
        expect(usd).to_have_attribute("data-available", "978121.5535110358")  # raw, exact
        # USD has 2 decimals on BTC/USD and ETH/USD: cut, never rounded up, thousands grouped
        expect(usd.locator("td").nth(1)).to_have_text("978,121.55")
        expect(usd.locator("td").nth(2)).to_have_text("15,024.99")
        # BTC: 5 decimals (BTC/USD's lot and ETH/BTC's tick); 12345.123456789 - 1234.5
        expect(balances.locator("tr[data-asset=BTC] td").nth(1)).to_have_text("11,110.62345")
        expect(balances.locator("tr[data-asset=BTC] td").nth(2)).to_have_text("1,234.25000")

        # the ladder: grid decimals and grouping; alice's resting levels marked, bob's not
        bids = page.get_by_test_id("bids")
        asks = page.get_by_test_id("asks")
        mine = bids.locator(".ladder-row[data-price='29990.00']")
        expect(mine).to_have_attribute("data-own", "yes")
        expect(mine).to_have_class("ladder-row bid own")
        expect(mine.locator(".price")).to_have_text("29,990.00")
        expect(mine.locator(".size")).to_have_text("0.50000")
        mine_ask = asks.locator(".ladder-row[data-price='30020.00']")
        expect(mine_ask).to_have_attribute("data-own", "yes")
        expect(mine_ask.locator(".size")).to_have_text("1,234.25000")
        expect(asks.locator(".ladder-row[data-price='30030.00']")).not_to_have_attribute("data-own", "yes")
        expect(bids.locator(".ladder-row[data-price='29980.00']")).not_to_have_attribute("data-own", "yes")
        expect(bids.locator(".ladder-row[data-price='29980.00'] .total")).to_have_text("2.50000")
        expect(asks.locator(".ladder-row.own")).to_have_count(1)
        expect(bids.locator(".ladder-row.own")).to_have_count(1)

        # open orders and the tape use the same formats
        open_orders = page.get_by_test_id("open-orders")
        expect(open_orders.locator("tbody tr[data-order-id]")).to_have_count(2)
        expect(open_orders).to_contain_text("1,234.50000")
        expect(page.get_by_test_id("tape").locator(".tape-row").first).to_contain_text("30,020.00")

        # the form's notional estimate too (30000 x 1234.5 in USD)
        page.get_by_test_id("price").fill("30000.00")
        page.get_by_test_id("quantity").fill("1234.5")
        expect(page.get_by_test_id("notional")).to_have_text("≈ 37,035,000.00 USD")

        # nothing overflows with the open orders, the history and the fills shown
        for tab in ("open", "history", "fills"):
            page.locator(f"[data-tab={tab}]").click()
            expect(page.locator(f"[data-panel={tab}]")).to_be_visible()
            if tab != "open":
                expect(page.locator(f"[data-panel={tab}] tbody tr").first).not_to_have_class("empty")
            assert page.evaluate(OVERFLOW) == [], tab
        page.locator("[data-tab=fills]").click()
        expect(page.get_by_test_id("fills")).to_contain_text("0.25000")

        # a cancel through the API removes the mark as the private channel reports it
        for order in alice_client.get("/api/orders").json()["orders"]:
            if order["side"] == "buy":
                assert alice_client.delete(f"/api/orders/{order['order_id']}").status_code == 200
        expect(bids.locator(".ladder-row.own")).to_have_count(0)
        expect(asks.locator(".ladder-row.own")).to_have_count(1)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "07-1024px.png"), full_page=True)
        assert page.evaluate(OVERFLOW) == []
        assert page.errors == []
        page.context.close()


def test_number_formats_in_the_page(server: Server, browser: Any) -> None:
    """format.js on its own, in the browser: grouping, cutting to the decimals (never rounding up),
    negative amounts (rebates), and values that are not decimals left as they are."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "yes")
    shown = page.evaluate(
        """async () => {
            const { Formats, formatDecimal } = await import("/static/format.js");
            const formats = new Formats((await (await fetch("/api/markets")).json()).markets);
            return [
                formatDecimal("985649.0485110358", 2), formatDecimal("999.999", 2),
                formatDecimal("1234567", 0),
                formatDecimal("-1234.5", 3), formatDecimal("-0.0001", 2), formatDecimal("market", 2),
                formatDecimal(null, 2), formatDecimal("0", 5),
                formats.price("ETH/BTC", "0.05"), formats.quantity("ETH/USD", "1000"),
                formats.amount("USD", "1000000.129"), formats.amount("ETH", "2.5"),
                formats.amount("BTC", "1"),
                formats.quoteOf("ETH/BTC"),
            ];
        }"""
    )
    assert shown == [
        "985,649.04",
        "999.99",
        "1,234,567",
        "-1,234.500",
        "0.00",
        "market",
        "",
        "0.00000",
        "0.05000",
        "1,000.0000",
        "1,000,000.12",
        "2.5000",
        "1.00000",
        "BTC",
    ]
    context.close()
