// The order book ladder: asks above (best ask nearest the middle), the spread line, bids below. Each
// row shows price, size and the running total from the best price, with a bar proportional to the
// level's size. Rows carry data-price / data-quantity so that tests and tools can read the ladder.

import { h } from "./dom.js";
import { compare, fixed, subtract } from "./decimal.js";

function rows(levels, side, maxSize, onPick) {
  let total = 0;
  return levels.map((level) => {
    total += Number(level.quantity);
    const width = Math.max(1, Math.round((Number(level.quantity) / maxSize) * 100));
    return h(
      "div",
      {
        class: "ladder-row " + side,
        dataset: { price: level.price, quantity: level.quantity },
        title: `${level.order_count} order(s)`,
        onclick: () => onPick(level.price),
      },
      h("span", { class: "bar", style: `width:${width}%` }),
      h("span", { class: "price" }, level.price),
      h("span", { class: "size" }, level.quantity),
      h("span", { class: "total" }, total.toLocaleString("en-US", { maximumFractionDigits: 6 })),
    );
  });
}

/** Render `bids`/`asks` (best first) into the ladder element; `decimals` formats the spread. */
export function renderLadder(root, bids, asks, { decimals, sequence, synced, onPick }) {
  const maxSize = Math.max(1e-12, ...[...bids, ...asks].map((level) => Number(level.quantity)));
  const askBox = root.querySelector("[data-testid=asks]");
  const bidBox = root.querySelector("[data-testid=bids]");
  askBox.replaceChildren(...rows(asks, "ask", maxSize, onPick).reverse());
  bidBox.replaceChildren(...rows(bids, "bid", maxSize, onPick));
  root.dataset.sequence = sequence === null ? "" : String(sequence);
  root.dataset.synced = synced ? "yes" : "no";
  const spread = root.querySelector("[data-testid=spread]");
  if (bids.length && asks.length && compare(asks[0].price, bids[0].price) >= 0) {
    const bid = Number(bids[0].price);
    const ask = Number(asks[0].price);
    const percent = (((ask - bid) / ((ask + bid) / 2)) * 100).toFixed(2);
    spread.replaceChildren(
      h("span", { class: "best bid", "data-testid": "best-bid" }, bids[0].price),
      h("span", { class: "spread-value" }, `${fixed(subtract(asks[0].price, bids[0].price), decimals)} (${percent}%)`),
      h("span", { class: "best ask", "data-testid": "best-ask" }, asks[0].price),
    );
  } else {
    spread.replaceChildren(h("span", { class: "spread-value" }, synced ? "one-sided book" : "syncing..."));
  }
}
