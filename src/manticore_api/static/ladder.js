// The order book ladder: asks above (best ask nearest the middle), the spread line, bids below. Each
// row shows price, size and the running total from the best price (exact, formatted with the market's
// decimals and thousands separators), with a bar proportional to the level's size. Rows carry
// data-price / data-quantity (the server's raw strings) so that tests and tools can read the ladder;
// levels where the signed-in user has resting orders are marked (class "own", data-own="yes").

import { h } from "./dom.js";
import { add, compare, subtract } from "./decimal.js";
import { formatDecimal } from "./format.js";

function rows(levels, side, maxSize, { priceDecimals, quantityDecimals, ownPrices, onPick }) {
  let total = "0";
  return levels.map((level) => {
    total = add(total, level.quantity) ?? total;
    const width = Math.max(1, Math.round((Number(level.quantity) / maxSize) * 100));
    const own = ownPrices.some((price) => compare(price, level.price) === 0);
    return h(
      "div",
      {
        class: "ladder-row " + side + (own ? " own" : ""),
        dataset: own
          ? { price: level.price, quantity: level.quantity, own: "yes" }
          : { price: level.price, quantity: level.quantity },
        title: `${level.order_count} order(s)` + (own ? ", yours among them" : ""),
        onclick: () => onPick(level.price),
      },
      h("span", { class: "bar", style: `width:${width}%` }),
      h("span", { class: "price" }, formatDecimal(level.price, priceDecimals)),
      h("span", { class: "size" }, formatDecimal(level.quantity, quantityDecimals)),
      h("span", { class: "total" }, formatDecimal(total, quantityDecimals)),
    );
  });
}

/** Render `bids`/`asks` (best first) into the ladder element.
 *
 * Options: `decimals` (price decimals) and `quantityDecimals` format the numbers; `own` is
 * {bids: [price...], asks: [price...]}, the prices of the user's resting orders on this market. */
export function renderLadder(root, bids, asks, { decimals, quantityDecimals = 8, own, sequence, synced, onPick }) {
  const maxSize = Math.max(1e-12, ...[...bids, ...asks].map((level) => Number(level.quantity)));
  const options = (ownPrices) => ({ priceDecimals: decimals, quantityDecimals, ownPrices, onPick });
  const askBox = root.querySelector("[data-testid=asks]");
  const bidBox = root.querySelector("[data-testid=bids]");
  askBox.replaceChildren(...rows(asks, "ask", maxSize, options(own?.asks ?? [])).reverse());
  bidBox.replaceChildren(...rows(bids, "bid", maxSize, options(own?.bids ?? [])));
  root.dataset.sequence = sequence === null ? "" : String(sequence);
  root.dataset.synced = synced ? "yes" : "no";
  const spread = root.querySelector("[data-testid=spread]");
  if (bids.length && asks.length && compare(asks[0].price, bids[0].price) >= 0) {
    const bid = Number(bids[0].price);
    const ask = Number(asks[0].price);
    const percent = (((ask - bid) / ((ask + bid) / 2)) * 100).toFixed(2);
    spread.replaceChildren(
      h("span", { class: "best bid", "data-testid": "best-bid", dataset: { price: bids[0].price } },
        formatDecimal(bids[0].price, decimals)),
      h("span", { class: "spread-value" },
        `${formatDecimal(subtract(asks[0].price, bids[0].price), decimals)} (${percent}%)`),
      h("span", { class: "best ask", "data-testid": "best-ask", dataset: { price: asks[0].price } },
        formatDecimal(asks[0].price, decimals)),
    );
  } else {
    spread.replaceChildren(h("span", { class: "spread-value" }, synced ? "one-sided book" : "syncing..."));
  }
}
