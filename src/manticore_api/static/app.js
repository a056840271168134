// The trading page: wires the REST client, the WebSocket stream and the views together.
//
// Data flow: GET /api/markets fills the market selector and gives the form its grid. The socket
// subscribes to the selected market's book channel (snapshot, then diffs kept in a BookState; a
// sequence gap re-subscribes for a fresh snapshot) and trades channel (merged by trade_id with
// GET /api/trades into the tape and the candles). Once signed in, the socket authenticates (session
// token, or an API key signature) and subscribes to the private channel, whose order/fill/balances
// frames update the account views, which REST refreshes complete. When the socket drops (a server
// restart), it reconnects and everything above is done again from scratch.

import { Account } from "./account.js";
import { Api } from "./api.js";
import { BookState } from "./book.js";
import { TradeLog, buildCandles } from "./candles.js";
import { drawCandles, drawDepth } from "./charts.js";
import { decimalsOf, onGrid, positive, trim } from "./decimal.js";
import { $, clock, h } from "./dom.js";
import { OrderForm } from "./entry.js";
import { Formats } from "./format.js";
import { renderLadder } from "./ladder.js";
import { Stream } from "./stream.js";

const SESSION_KEY = "manticore.session";
const LADDER_DEPTH = 13;
const TAPE_LENGTH = 40;
const AUTH_FAILURES = new Set([
  "bad_session", "expired_session", "unknown_key", "revoked_key", "bad_signature", "stale_timestamp", "malformed",
]);

const state = {
  markets: new Map(),
  symbol: null,
  book: new BookState(null),
  trades: new TradeLog(),
  interval: 5,
  user: null,
  renderPending: false,
  tradesPending: false,
  resyncs: 0,
  formats: new Formats(),
};

const api = new Api();
const account = new Account(api, document, { cancel: cancelOrder, modify: openModify, changed: scheduleRender });
const form = new OrderForm($("#order-form"), async (payload) => {
  const answer = await api.post("/api/orders", payload);
  account.refreshSoon(50);
  return answer;
});
const stream = new Stream(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`, {
  onopen: onStreamOpen,
  onmessage: onFrame,
  onstate: (connection) => {
    const badge = $("[data-testid=connection]");
    badge.dataset.state = connection;
    badge.textContent = connection === "live" ? "live" : connection === "connecting" ? "connecting…" : "reconnecting…";
  },
});

// ------------------------------------------------------------------ market data

function market() {
  return state.markets.get(state.symbol);
}

function subscribeMarket(symbol) {
  stream.send({ op: "subscribe", channel: "book", symbol });
  stream.send({ op: "subscribe", channel: "trades", symbol });
}

async function loadTrades() {
  const symbol = state.symbol;
  try {
    const answer = await api.get(`/api/trades?symbol=${encodeURIComponent(symbol)}&limit=1000`);
    if (symbol === state.symbol) {
      state.trades.add(answer.trades);
      scheduleTrades();
    }
  } catch (error) {
    // the socket's reconnection loads them again
  }
}

function selectMarket(symbol) {
  if (!state.markets.has(symbol)) return;
  if (state.symbol && state.symbol !== symbol) {
    stream.send({ op: "unsubscribe", channel: "book", symbol: state.symbol });
    stream.send({ op: "unsubscribe", channel: "trades", symbol: state.symbol });
  }
  state.symbol = symbol;
  state.book = new BookState(symbol);
  state.trades.clear();
  $("#market").value = symbol;
  history.replaceState(null, "", "#" + encodeURIComponent(symbol));
  document.title = `${symbol} · Manticore`;
  form.setMarket(market());
  subscribeMarket(symbol);
  loadTrades();
  scheduleRender();
  scheduleTrades();
}

function onStreamOpen() {
  state.book = new BookState(state.symbol);
  if (state.symbol) {
    subscribeMarket(state.symbol);
    loadTrades();
  }
  if (state.user) {
    authenticateStream();
    account.refresh();
  }
  scheduleRender();
}

async function authenticateStream() {
  try {
    const frame = await api.streamAuthFrame();
    if (frame) stream.send(frame);
  } catch (error) {
    notify(error.message, true);
  }
}

function onFrame(frame) {
  switch (frame.type) {
    case "snapshot":
      if (frame.symbol === state.symbol) {
        state.book.loadSnapshot(frame);
        scheduleRender();
      }
      break;
    case "book":
      if (frame.symbol === state.symbol) {
        const outcome = state.book.applyDiff(frame);
        if (outcome === "gap") {
          state.resyncs += 1;
          $("#ladder").dataset.resyncs = String(state.resyncs);
          stream.send({ op: "subscribe", channel: "book", symbol: state.symbol });
        }
        if (outcome !== "stale") scheduleRender();
      }
      break;
    case "trade":
      if (frame.symbol === state.symbol && state.trades.add([frame]).length) scheduleTrades();
      break;
    case "order":
    case "fill":
    case "balances":
      account.onFrame(frame);
      break;
    case "authenticated":
      stream.send({ op: "subscribe", channel: "private" });
      break;
    case "subscribed":
      // what happened between the last read and this subscription came on no channel: read again
      if (frame.channel === "private") account.refresh();
      break;
    case "error":
      if (AUTH_FAILURES.has(frame.code) && state.user) {
        signOut(`signed out: ${frame.message}`);
      } else {
        notify(`${frame.code}: ${frame.message}`, true);
      }
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ rendering

function scheduleRender() {
  if (state.renderPending) return;
  state.renderPending = true;
  requestAnimationFrame(() => {
    state.renderPending = false;
    renderBook();
  });
}

function scheduleTrades() {
  if (state.tradesPending) return;
  state.tradesPending = true;
  requestAnimationFrame(() => {
    state.tradesPending = false;
    renderTrades();
  });
}

function renderBook() {
  const current = market();
  if (!current) return;
  const decimals = decimalsOf(current.tick_size);
  const bids = state.book.bidLevels(LADDER_DEPTH);
  const asks = state.book.askLevels(LADDER_DEPTH);
  renderLadder($("#ladder"), bids, asks, {
    decimals,
    quantityDecimals: decimalsOf(current.lot_size),
    own: ownPrices(current.symbol),
    sequence: state.book.sequence,
    synced: state.book.synced,
    onPick: (price) => form.pickPrice(price),
  });
  drawDepth($("#depth-chart"), state.book.bidLevels(50), state.book.askLevels(50), decimals);
}

/** The prices at which the signed-in user has orders resting on `symbol` (untriggered stops do not
 * rest), from the open orders the private channel and REST keep current. */
function ownPrices(symbol) {
  const own = { bids: [], asks: [] };
  for (const order of account.open.values()) {
    if (order.symbol !== symbol || order.status === "pending" || order.price === null || order.price === undefined) continue;
    (order.side === "buy" ? own.bids : own.asks).push(order.price);
  }
  return own;
}

function renderTrades() {
  const current = market();
  if (!current) return;
  const latest = state.trades.latest(TAPE_LENGTH);
  $("[data-testid=tape]").replaceChildren(
    ...latest.map((trade) =>
      h("div", { class: "tape-row " + (trade.taker_side === "buy" ? "bid" : "ask"), dataset: { tradeId: trade.trade_id } },
        h("span", { class: "price" }, state.formats.price(current.symbol, trade.price)),
        h("span", { class: "size" }, state.formats.quantity(current.symbol, trade.quantity)),
        h("span", { class: "time" }, clock(trade.timestamp)))));
  const last = $("[data-testid=last-price]");
  if (latest.length) {
    last.textContent = state.formats.price(current.symbol, latest[0].price);
    last.dataset.price = latest[0].price;
    last.className = "last-price " + (latest[0].taker_side === "buy" ? "bid" : "ask");
  } else {
    last.textContent = "–";
    last.className = "last-price";
  }
  const candles = buildCandles(state.trades.trades, state.interval);
  drawCandles($("#price-chart"), candles, decimalsOf(current.tick_size), state.interval);
}

let notifyTimer = null;
function notify(text, isError = false) {
  const box = $("[data-testid=notice]");
  box.textContent = text;
  box.className = "notice" + (isError ? " error" : " ok");
  clearTimeout(notifyTimer);
  notifyTimer = setTimeout(() => {
    box.textContent = "";
    box.className = "notice";
  }, 8000);
}

// ------------------------------------------------------------------ sign-in

function showUser() {
  const user = state.user;
  document.body.dataset.signedIn = user ? "yes" : "no";
  $("[data-testid=user-name]").textContent = user ? `${user.username}` : "";
  form.setEnabled(Boolean(user));
}

function signedIn(user) {
  state.user = user;
  account.userId = user.user_id;
  showUser();
  if (stream.live) authenticateStream();
  account.refresh();
}

async function signOut(message) {
  if (api.credentials && api.credentials.token) {
    api.delete("/api/session").catch(() => {});
  }
  api.credentials = null;
  sessionStorage.removeItem(SESSION_KEY);
  state.user = null;
  account.clear();
  showUser();
  stream.restart();
  if (message) notify(message, true);
}

async function passwordSignIn(event) {
  event.preventDefault();
  const target = event.currentTarget;
  const error = $("[data-testid=login-error]");
  error.textContent = "";
  try {
    const answer = await api.post("/api/session", {
      username: target.elements.username.value.trim(),
      password: target.elements.password.value,
    });
    api.credentials = { token: answer.token };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: answer.token }));
    target.reset();
    signedIn({ user_id: answer.user_id, username: answer.username, role: answer.role });
  } catch (failure) {
    error.textContent = failure.message;
  }
}

async function keySignIn(event) {
  event.preventDefault();
  const target = event.currentTarget;
  const error = $("[data-testid=login-error]");
  error.textContent = "";
  api.credentials = { apiKey: target.elements.api_key.value.trim(), apiSecret: target.elements.api_secret.value.trim() };
  try {
    const me = await api.get("/api/me");
    target.reset();
    signedIn(me);
  } catch (failure) {
    api.credentials = null;
    error.textContent = failure.message;
  }
}

async function restoreSession() {
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (!saved) return;
  try {
    api.credentials = { token: JSON.parse(saved).token };
    signedIn(await api.get("/api/me"));
  } catch (failure) {
    api.credentials = null;
    sessionStorage.removeItem(SESSION_KEY);
    state.user = null;
    showUser();
  }
}

// ------------------------------------------------------------------ order actions

async function cancelOrder(order) {
  try {
    await api.delete(`/api/orders/${encodeURIComponent(order.order_id)}`);
    notify(`Order ${order.order_id} cancelled`);
  } catch (failure) {
    notify(`${failure.code}: ${failure.message}`, true);
  }
  account.refreshSoon(50);
}

function openModify(order) {
  const dialog = $("#modify-dialog");
  const target = $("form", dialog);
  target.dataset.orderId = order.order_id;
  target.dataset.symbol = order.symbol;
  $("[data-testid=modify-title]", dialog).textContent = `Modify ${order.order_id} (${order.side} ${order.symbol})`;
  target.elements.new_price.value = order.price ?? "";
  target.elements.new_price.disabled = order.price === null || order.price === undefined;
  target.elements.new_quantity.value = order.quantity;
  $("[data-testid=modify-error]", dialog).textContent = "";
  dialog.showModal();
}

async function submitModify(event) {
  event.preventDefault();
  const target = event.currentTarget;
  const error = $("[data-testid=modify-error]");
  const grid = state.markets.get(target.dataset.symbol);
  const price = target.elements.new_price.value.trim();
  const quantity = target.elements.new_quantity.value.trim();
  const change = {};
  if (price && !target.elements.new_price.disabled) {
    if (!positive(price) || !onGrid(price, grid.tick_size)) {
      error.textContent = `the price must be a multiple of the tick size ${trim(grid.tick_size)}`;
      return;
    }
    change.new_price = price;
  }
  if (quantity) {
    if (!positive(quantity) || !onGrid(quantity, grid.lot_size)) {
      error.textContent = `the quantity must be a multiple of the lot size ${trim(grid.lot_size)}`;
      return;
    }
    change.new_quantity = quantity;
  }
  try {
    await api.patch(`/api/orders/${encodeURIComponent(target.dataset.orderId)}`, change);
    $("#modify-dialog").close();
    notify(`Order ${target.dataset.orderId} modified`);
    account.refreshSoon(50);
  } catch (failure) {
    error.textContent = `${failure.code}: ${failure.message}`;
  }
}

// ------------------------------------------------------------------ start

async function loadMarkets() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return (await api.get("/api/markets")).markets;
    } catch (error) {
      $("[data-testid=connection]").textContent = "waiting for the server…";
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * (attempt + 1))));
    }
  }
}

async function start() {
  const markets = await loadMarkets();
  for (const entry of markets) state.markets.set(entry.symbol, entry);
  state.formats = new Formats(markets);
  account.formats = state.formats;
  const select = $("#market");
  select.replaceChildren(...[...state.markets.keys()].map((symbol) => h("option", { value: symbol }, symbol)));
  select.addEventListener("change", () => selectMarket(select.value));
  $("#interval").addEventListener("change", (event) => {
    state.interval = Number(event.target.value);
    scheduleTrades();
  });
  $("#login-form").addEventListener("submit", passwordSignIn);
  $("#key-form").addEventListener("submit", keySignIn);
  $("#sign-out").addEventListener("click", () => signOut());
  $("#modify-form").addEventListener("submit", submitModify);
  $("#modify-cancel").addEventListener("click", () => $("#modify-dialog").close());
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-tab]")) other.classList.toggle("active", other === tab);
      for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== tab.dataset.tab;
    });
  }
  for (const tab of document.querySelectorAll("[data-login]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-login]")) other.classList.toggle("active", other === tab);
      $("#login-form").hidden = tab.dataset.login !== "password";
      $("#key-form").hidden = tab.dataset.login !== "key";
    });
  }
  window.addEventListener("resize", () => {
    scheduleRender();
    scheduleTrades();
  });
  account.render();
  showUser();
  const wanted = decodeURIComponent(location.hash.slice(1));
  state.symbol = null;
  selectMarket(state.markets.has(wanted) ? wanted : [...state.markets.keys()][0]);
  await restoreSession();
  stream.start();
  document.body.dataset.ready = "yes";
}

start();
