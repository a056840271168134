// The signed-in user's account: balances, open orders, order history and fills.
//
// Live updates come from the private channel: `balances` frames replace the balances, `order` frames
// (every order event, with the whole order) and `fill` frames update the open orders at once. History
// and fills are read from the server's store, which trails the journal by milliseconds, so every
// private frame also schedules a REST refresh of all four (debounced); a refresh also runs after each
// (re)connection, once the private channel's subscription is confirmed (what happened before it came
// on no channel) and after each command the page sends.

import { h, clock } from "./dom.js";
import { Formats } from "./format.js";

const FINISHED = new Set(["filled", "cancelled", "expired", "rejected"]);

export class Account {
  /** `root`: element holding the account tables; `actions`: {cancel(order), modify(order), changed()}
   * (`changed` runs after each render, e.g. to mark the user's orders in the ladder). */
  constructor(api, root, actions) {
    this.api = api;
    this.root = root;
    this.actions = actions;
    this.formats = new Formats();
    this.userId = null;
    this.open = new Map();
    this.balances = {};
    this.history = [];
    this.fills = [];
    this.timer = null;
    this.generation = 0;
    this.reads = 0;
    this.shownRead = 0;
  }

  /** Forget the user's data (signed out). */
  clear() {
    this.userId = null;
    this.generation += 1;
    this.open = new Map();
    this.balances = {};
    this.history = [];
    this.fills = [];
    clearTimeout(this.timer);
    this.render();
  }

  /** Reload everything over REST; a failure leaves the last data (the stream keeps updating). An
   * answer older than one already shown is dropped (answers may arrive out of order). */
  async refresh() {
    if (!this.userId) return;
    const generation = this.generation;
    const read = ++this.reads;
    try {
      const [open, balances, history, fills] = await Promise.all([
        this.api.get("/api/orders"),
        this.api.get("/api/balances"),
        this.api.get("/api/orders/history?limit=50"),
        this.api.get("/api/fills?limit=50"),
      ]);
      if (generation !== this.generation || read < this.shownRead) return;
      this.shownRead = read;
      this.open = new Map(open.orders.map((order) => [order.order_id, order]));
      this.balances = balances.balances;
      this.history = history.orders;
      this.fills = fills.fills;
      this.render();
    } catch (error) {
      // a dropped connection or a restarting server: the next reconnection refreshes again
    }
  }

  /** Refresh soon, once for a burst of frames. */
  refreshSoon(delay = 250) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  /** Apply a private-channel frame. */
  onFrame(frame) {
    if (frame.type === "balances") {
      this.balances = frame.balances;
    } else if (frame.type === "order") {
      const order = frame.order;
      if (FINISHED.has(order.status) || frame.event === "order_cancelled" || frame.event === "order_expired") {
        this.open.delete(order.order_id);
      } else {
        this.open.set(order.order_id, { ...this.open.get(order.order_id), ...order });
      }
    } else if (frame.type === "fill") {
      const order = this.open.get(frame.order_id);
      if (order) {
        if (frame.status === "filled") this.open.delete(frame.order_id);
        else this.open.set(frame.order_id, {
          ...order,
          status: frame.status,
          filled_quantity: frame.filled_quantity,
          remaining_quantity: frame.remaining_quantity,
        });
      }
    } else {
      return;
    }
    this.render();
    this.refreshSoon();
  }

  render() {
    this._renderBalances();
    this._renderOpen();
    this._renderHistory();
    this._renderFills();
    if (this.actions.changed) this.actions.changed();
  }

  _table(testid, head, rows, emptyText) {
    const table = this.root.querySelector(`[data-testid=${testid}]`);
    const body = rows.length ? rows : [h("tr", { class: "empty" }, h("td", { colspan: head.length }, emptyText))];
    table.replaceChildren(h("thead", {}, h("tr", {}, head.map((name) => h("th", {}, name)))), h("tbody", {}, body));
  }

  _renderBalances() {
    const rows = Object.entries(this.balances)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([asset, entry]) =>
        h("tr", { dataset: { asset, available: entry.available, held: entry.held } },
          h("td", {}, asset),
          h("td", { class: "num" }, this.formats.amount(asset, entry.available)),
          h("td", { class: "num" }, this.formats.amount(asset, entry.held))));
    this._table("balances", ["Asset", "Available", "Held"], rows, this.userId ? "no funds" : "sign in to see balances");
  }

  _renderOpen() {
    const orders = [...this.open.values()].sort((a, b) => (b.timestamp || 0) - (a.timestamp || 0));
    const rows = orders.map((order) =>
      h("tr", { dataset: { orderId: order.order_id, status: order.status } },
        h("td", {}, order.timestamp ? clock(order.timestamp) : ""),
        h("td", {}, order.symbol),
        h("td", { class: order.side }, order.side),
        h("td", {}, String(order.order_type).toLowerCase()),
        h("td", { class: "num" }, order.price == null ? "market" : this.formats.price(order.symbol, order.price)),
        h("td", { class: "num" }, this.formats.price(order.symbol, order.stop_price)),
        h("td", { class: "num" }, this.formats.quantity(order.symbol, order.quantity)),
        h("td", { class: "num" }, this.formats.quantity(order.symbol, order.filled_quantity)),
        h("td", {}, order.status),
        h("td", { class: "actions" },
          h("button", { class: "small", "data-action": "modify", onclick: () => this.actions.modify(order) }, "Modify"),
          h("button", { class: "small danger", "data-action": "cancel", onclick: () => this.actions.cancel(order) }, "Cancel"))));
    this._table("open-orders", ["Time", "Market", "Side", "Type", "Price", "Stop", "Quantity", "Filled", "Status", ""],
      rows, this.userId ? "no open orders" : "sign in to trade");
    const count = this.root.querySelector("[data-testid=open-count]");
    if (count) count.textContent = this.open.size ? `(${this.open.size})` : "";
  }

  _renderHistory() {
    const rows = this.history.map((order) =>
      h("tr", { dataset: { orderId: order.order_id, status: order.status } },
        h("td", {}, order.timestamp ? clock(order.timestamp) : ""),
        h("td", {}, order.symbol),
        h("td", { class: order.side }, order.side),
        h("td", {}, String(order.order_type).toLowerCase()),
        h("td", { class: "num" }, order.price == null ? "market" : this.formats.price(order.symbol, order.price)),
        h("td", { class: "num" }, this.formats.quantity(order.symbol, order.quantity)),
        h("td", { class: "num" }, this.formats.quantity(order.symbol, order.filled_quantity)),
        h("td", {}, order.status + (order.cancel_reason ? ` (${order.cancel_reason})` : ""))));
    this._table("history", ["Time", "Market", "Side", "Type", "Price", "Quantity", "Filled", "Status"], rows, "no orders yet");
  }

  _renderFills() {
    const rows = this.fills.map((fill) => {
      // A fill is the user's own side of a trade (GET /api/fills): side, role and fee are theirs.
      const side = fill.side;
      return h("tr", { dataset: { tradeId: fill.trade_id } },
        h("td", {}, clock(fill.timestamp)),
        h("td", {}, fill.symbol),
        h("td", { class: side }, side),
        h("td", { class: "num" }, this.formats.price(fill.symbol, fill.price)),
        h("td", { class: "num" }, this.formats.quantity(fill.symbol, fill.quantity)),
        h("td", { class: "num" }, this.formats.amount(fill.fee_asset || this.formats.quoteOf(fill.symbol), fill.fee)),
        h("td", {}, fill.role));
    });
    this._table("fills", ["Time", "Market", "Side", "Price", "Quantity", "Fee", "Role"], rows, "no fills yet");
  }
}
