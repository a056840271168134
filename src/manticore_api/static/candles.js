// Candles from trades: trades are bucketed by time (`interval` seconds); each candle has the first,
// highest, lowest and last trade price of its bucket and the traded quantity. Trades may come from
// GET /api/trades (newest first) and from the trades channel; `TradeLog` keeps one copy of each by
// trade_id, oldest first.

export class TradeLog {
  constructor(limit = 1000) {
    this.limit = limit;
    this.trades = [];
    this.ids = new Set();
  }

  clear() {
    this.trades = [];
    this.ids = new Set();
  }

  /** Add trades (any order); returns the ones that were new, oldest first. */
  add(trades) {
    const fresh = trades.filter((trade) => !this.ids.has(trade.trade_id));
    if (!fresh.length) return [];
    for (const trade of fresh) this.ids.add(trade.trade_id);
    this.trades.push(...fresh);
    this.trades.sort((a, b) => a.timestamp - b.timestamp || a.sequence - b.sequence);
    if (this.trades.length > this.limit) {
      for (const old of this.trades.splice(0, this.trades.length - this.limit)) this.ids.delete(old.trade_id);
    }
    return fresh.sort((a, b) => a.timestamp - b.timestamp);
  }

  /** The newest `count` trades, newest first. */
  latest(count) {
    return this.trades.slice(-count).reverse();
  }
}

/** Candles [{time, open, high, low, close, volume}] (time = bucket start, seconds), oldest first. */
export function buildCandles(trades, interval) {
  const candles = [];
  let current = null;
  for (const trade of trades) {
    const price = Number(trade.price);
    const quantity = Number(trade.quantity);
    const time = Math.floor(trade.timestamp / interval) * interval;
    if (!current || current.time !== time) {
      current = { time, open: price, high: price, low: price, close: price, volume: 0 };
      candles.push(current);
    }
    current.high = Math.max(current.high, price);
    current.low = Math.min(current.low, price);
    current.close = price;
    current.volume += quantity;
  }
  return candles;
}
