// The local copy of one market's order book, kept from the book channel: a snapshot, then diffs.
//
// Contract (docs/api.md): a snapshot carries `sequence`; a diff carries `first_sequence` and
// `last_sequence` and lists each changed level's new total (zero on the grid, "0.00000": gone). Diffs with
// last_sequence <= the book's sequence are already included and skipped; otherwise first_sequence must
// be sequence + 1, or something was missed: applyDiff answers "gap", the book becomes unsynced, and the
// caller subscribes again for a fresh snapshot. Diffs arriving while unsynced are ignored.

import { compare, parse } from "./decimal.js";

export class BookState {
  constructor(symbol) {
    this.symbol = symbol;
    this.reset();
    this.gaps = 0;
  }

  /** Forget everything until the next snapshot. */
  reset() {
    this.sequence = null;
    this.bids = new Map();
    this.asks = new Map();
  }

  get synced() {
    return this.sequence !== null;
  }

  /** Replace the book with a snapshot frame. */
  loadSnapshot(frame) {
    this.reset();
    for (const level of frame.bids) this.bids.set(level.price, level);
    for (const level of frame.asks) this.asks.set(level.price, level);
    this.sequence = frame.sequence;
  }

  /** Apply one diff frame: "applied", "stale" (already in), "unsynced" (ignored) or "gap" (now unsynced). */
  applyDiff(frame) {
    if (this.sequence === null) return "unsynced";
    if (frame.last_sequence <= this.sequence) return "stale";
    if (frame.first_sequence !== this.sequence + 1) {
      this.gaps += 1;
      this.reset();
      return "gap";
    }
    this._apply(this.bids, frame.bids);
    this._apply(this.asks, frame.asks);
    this.sequence = frame.last_sequence;
    return "applied";
  }

  _apply(side, levels) {
    for (const level of levels) {
      const quantity = parse(level.quantity);
      if (quantity === null || quantity.n === 0n) side.delete(level.price);
      else side.set(level.price, level);
    }
  }

  /** Bids best (highest) first. */
  bidLevels(depth = Infinity) {
    return [...this.bids.values()].sort((a, b) => compare(b.price, a.price)).slice(0, depth);
  }

  /** Asks best (lowest) first. */
  askLevels(depth = Infinity) {
    return [...this.asks.values()].sort((a, b) => compare(a.price, b.price)).slice(0, depth);
  }
}
