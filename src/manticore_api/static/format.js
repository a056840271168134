// How the page shows numbers: every price with its market's tick decimals, every quantity with the
// lot decimals, every amount of an asset with the asset's decimals (the largest among the markets that
// use it: lot decimals where it is the base, tick decimals where it is the quote), all with thousands
// separators ("985,649.04"). Digits beyond the decimals are cut, never rounded up, so a balance is
// never shown larger than it is. Values are the server's exact decimal strings; data-* attributes keep
// those raw strings for tools and tests.

import { decimalsOf, fixed, parse } from "./decimal.js";

/** "1234567.5" -> "1,234,567.5" (a decimal string's whole part grouped by thousands). */
export function group(text) {
  const [whole, fraction] = String(text).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}

/** A decimal string (optionally negative) shown with `decimals` decimals and grouping; other values
 * (null, "market", garbage) are returned as text unchanged. */
export function formatDecimal(value, decimals) {
  if (value === null || value === undefined) return "";
  let text = String(value).trim();
  let sign = "";
  if (text.startsWith("-")) {
    sign = "-";
    text = text.slice(1);
  }
  if (parse(text) === null) return String(value);
  const shown = group(fixed(text, decimals));
  return /[1-9]/.test(shown) ? sign + shown : shown;
}

/** The number formats of a set of markets (GET /api/markets entries). */
export class Formats {
  constructor(markets = []) {
    this.markets = new Map();
    this.assets = new Map();
    for (const market of markets) {
      const tick = decimalsOf(market.tick_size);
      const lot = decimalsOf(market.lot_size);
      this.markets.set(market.symbol, { tick, lot, base: market.base_asset, quote: market.quote_asset });
      this._widen(market.base_asset, lot);
      this._widen(market.quote_asset, tick);
    }
  }

  _widen(asset, decimals) {
    this.assets.set(asset, Math.max(decimals, this.assets.get(asset) ?? 0));
  }

  /** Decimals of prices on `symbol` (2 when the market is unknown). */
  tickDecimals(symbol) {
    return this.markets.get(symbol)?.tick ?? 2;
  }

  /** Decimals of quantities on `symbol` (8 when the market is unknown). */
  lotDecimals(symbol) {
    return this.markets.get(symbol)?.lot ?? 8;
  }

  /** Decimals of amounts of `asset` (8 when no market uses it). */
  assetDecimals(asset) {
    return this.assets.get(asset) ?? 8;
  }

  price(symbol, value) {
    return formatDecimal(value, this.tickDecimals(symbol));
  }

  quantity(symbol, value) {
    return formatDecimal(value, this.lotDecimals(symbol));
  }

  amount(asset, value) {
    return formatDecimal(value, this.assetDecimals(asset));
  }

  /** The quote asset of `symbol` (its fees are in it), or "". */
  quoteOf(symbol) {
    return this.markets.get(symbol)?.quote ?? "";
  }
}
