// The order entry form. It knows the selected market's tick and lot size (from GET /api/markets) and
// refuses, before sending, a price off the tick grid or a quantity off the lot grid; whatever the
// server still refuses (balance, price band, post-only that would cross...) is shown with the server's
// code and message.

import { $ } from "./dom.js";
import { decimalsOf, multiply, onGrid, positive, trim } from "./decimal.js";
import { formatDecimal } from "./format.js";

const NEEDS_PRICE = new Set(["limit", "post_only", "stop_limit"]);
const NEEDS_STOP = new Set(["stop_limit", "stop_market"]);

export class OrderForm {
  /** `root`: the form element; `submit(payload)`: sends the order, resolves to the API's answer. */
  constructor(root, submit) {
    this.root = root;
    this.submit = submit;
    this.market = null;
    this.side = "buy";
    this.enabled = false;
    for (const button of root.querySelectorAll("[data-side]")) {
      button.addEventListener("click", () => this.setSide(button.dataset.side));
    }
    root.addEventListener("input", () => this.update());
    root.addEventListener("change", () => this.update());
    root.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.update();
  }

  field(name) {
    return $(`[name=${name}]`, this.root);
  }

  /** Switch to a market: its grid drives the validation and the inputs' hints. */
  setMarket(market) {
    this.market = market;
    $("[data-testid=grid-hint]", this.root).textContent =
      `tick ${trim(market.tick_size)} ${market.quote_asset} · lot ${trim(market.lot_size)} ${market.base_asset}`;
    this.field("price").placeholder = `price (${market.quote_asset})`;
    this.field("stop_price").placeholder = `stop price (${market.quote_asset})`;
    this.field("quantity").placeholder = `quantity (${market.base_asset})`;
    this.showResult(null);
    this.update();
  }

  setSide(side) {
    this.side = side;
    for (const button of this.root.querySelectorAll("[data-side]")) {
      button.classList.toggle("active", button.dataset.side === side);
    }
    const submit = $("[type=submit]", this.root);
    submit.classList.toggle("buy", side === "buy");
    submit.classList.toggle("sell", side === "sell");
    this.update();
  }

  /** Enable or disable sending (signed in or not). */
  setEnabled(enabled) {
    this.enabled = enabled;
    this.update();
  }

  /** Put a price in the price field (a click on a ladder row). */
  pickPrice(price) {
    this.field("price").value = price;
    this.update();
  }

  /** The order to send, or {error} saying what is wrong with the form. */
  read() {
    const market = this.market;
    if (!market) return { error: "no market selected" };
    const type = this.field("order_type").value;
    const tif = this.field("time_in_force").value;
    const quantity = this.field("quantity").value.trim();
    const price = this.field("price").value.trim();
    const stop = this.field("stop_price").value.trim();
    const payload = { symbol: market.symbol, side: this.side, order_type: type, quantity };
    if (NEEDS_PRICE.has(type)) {
      if (!price) return { error: "enter a price" };
      if (!positive(price)) return { error: "the price must be a positive decimal number" };
      if (!onGrid(price, market.tick_size)) {
        return { error: `the price must be a multiple of the tick size ${trim(market.tick_size)}` };
      }
      payload.price = price;
    }
    if (NEEDS_STOP.has(type)) {
      if (!stop) return { error: "enter a stop price" };
      if (!positive(stop) || !onGrid(stop, market.tick_size)) {
        return { error: `the stop price must be a positive multiple of the tick size ${trim(market.tick_size)}` };
      }
      payload.stop_price = stop;
    }
    if (!quantity) return { error: "enter a quantity" };
    if (!positive(quantity)) return { error: "the quantity must be a positive decimal number" };
    if (!onGrid(quantity, market.lot_size)) {
      return { error: `the quantity must be a multiple of the lot size ${trim(market.lot_size)}` };
    }
    if (type !== "market" && type !== "stop_market") payload.time_in_force = tif;
    if (tif === "GTD" && payload.time_in_force) {
      const minutes = Number(this.field("expiry_minutes").value);
      if (!(minutes > 0)) return { error: "GTD needs an expiry in minutes" };
      payload.expiry_time = Date.now() / 1000 + minutes * 60;
    }
    return { payload };
  }

  update() {
    const type = this.field("order_type").value;
    this.root.dataset.type = type;
    this.root.dataset.tif = this.field("time_in_force").value;
    const { payload, error } = this.read();
    const touched = ["price", "quantity", "stop_price"].some((name) => this.field(name).value.trim());
    $("[data-testid=form-error]", this.root).textContent = touched && error ? error : "";
    const notional = payload && payload.price ? multiply(payload.price, payload.quantity) : null;
    $("[data-testid=notional]", this.root).textContent =
      notional && this.market
        ? `≈ ${formatDecimal(notional, decimalsOf(this.market.tick_size))} ${this.market.quote_asset}`
        : "";
    const submit = $("[type=submit]", this.root);
    submit.disabled = !this.enabled || !payload;
    const base = this.market ? this.market.base_asset : "";
    submit.textContent = this.enabled ? `${this.side === "buy" ? "Buy" : "Sell"} ${base}` : "Sign in to trade";
  }

  async send() {
    const { payload, error } = this.read();
    if (!payload || !this.enabled) {
      this.showResult({ ok: false, text: error || "sign in first" });
      return;
    }
    const submit = $("[type=submit]", this.root);
    submit.disabled = true;
    try {
      const answer = await this.submit(payload);
      const order = answer.order || {};
      const lot = this.market ? decimalsOf(this.market.lot_size) : 8;
      const filled = order.filled_quantity && positive(order.filled_quantity)
        ? `, filled ${formatDecimal(order.filled_quantity, lot)}`
        : "";
      const reason = order.cancel_reason || order.reason;
      this.showResult({ ok: true, text: `Order ${answer.order_id}: ${order.status}${filled}${reason ? ` (${reason})` : ""}` });
    } catch (failure) {
      this.showResult({ ok: false, text: `${failure.code ? failure.code + ": " : ""}${failure.message}` });
    } finally {
      this.update();
    }
  }

  showResult(result) {
    const box = $("[data-testid=order-result]", this.root);
    box.textContent = result ? result.text : "";
    box.className = "order-result" + (result ? (result.ok ? " ok" : " error") : "");
  }
}
