// Canvas charts drawn by hand: the depth chart (cumulative size against price, bids left in green,
// asks right in red) and the price chart (candles with volume). Both size themselves to their canvas'
// CSS box and the device pixel ratio, and redraw from scratch on every call.

import { clock } from "./dom.js";

const COLORS = {
  grid: "#263040",
  text: "#8b97a8",
  bid: "#26a65b",
  bidFill: "rgba(38, 166, 91, 0.22)",
  ask: "#e0474c",
  askFill: "rgba(224, 71, 76, 0.22)",
  last: "#d8b34a",
};

function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.floor(canvas.clientWidth));
  const height = Math.max(1, Math.floor(canvas.clientHeight));
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.font = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
  return { context, width, height };
}

function empty(context, width, height, text) {
  context.fillStyle = COLORS.text;
  context.textAlign = "center";
  context.fillText(text, width / 2, height / 2);
}

function label(value, decimals) {
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}

/** Depth chart of `bids`/`asks` (levels best first, decimal strings); `decimals` formats prices. */
export function drawDepth(canvas, bids, asks, decimals) {
  const { context, width, height } = prepare(canvas);
  if (!bids.length && !asks.length) return empty(context, width, height, "no orders");
  const cumulate = (levels) => {
    let total = 0;
    return levels.map((level) => ({ price: Number(level.price), total: (total += Number(level.quantity)) }));
  };
  const bidPoints = cumulate(bids);
  const askPoints = cumulate(asks);
  // a range centred on the mid price, wide enough for both sides but at most 1% of the price each way
  const prices = [...bidPoints, ...askPoints].map((point) => point.price);
  const mid = bids.length && asks.length ? (bidPoints[0].price + askPoints[0].price) / 2 : prices[0];
  let half = Math.max(...prices.map((price) => Math.abs(price - mid)));
  half = Math.min(half, mid * 0.01) || Math.max(mid * 0.001, 1e-9);
  const low = mid - half;
  const high = mid + half;
  const visible = (point) => point.price >= low && point.price <= high;
  const top = Math.max(...[...bidPoints, ...askPoints].filter(visible).map((point) => point.total), 1e-12) * 1.1;
  const pad = { left: 8, right: 8, top: 10, bottom: 18 };
  const x = (price) => pad.left + ((price - low) / (high - low)) * (width - pad.left - pad.right);
  const y = (total) => height - pad.bottom - (total / top) * (height - pad.top - pad.bottom);
  const base = y(0);

  const area = (all, stroke, fill, direction) => {
    const points = all.filter(visible);
    if (!points.length) return;
    context.beginPath();
    context.moveTo(x(points[0].price), base);
    let previous = 0;
    for (const point of points) {
      context.lineTo(x(point.price), y(previous));
      context.lineTo(x(point.price), y(point.total));
      previous = point.total;
    }
    const edge = direction < 0 ? pad.left : width - pad.right;
    context.lineTo(edge, y(previous));
    context.strokeStyle = stroke;
    context.lineWidth = 1.5;
    context.stroke();
    context.lineTo(edge, base);
    context.closePath();
    context.fillStyle = fill;
    context.fill();
  };
  area(bidPoints, COLORS.bid, COLORS.bidFill, -1);
  area(askPoints, COLORS.ask, COLORS.askFill, 1);

  context.fillStyle = COLORS.text;
  context.textAlign = "left";
  context.fillText(label(low, decimals), pad.left, height - 4);
  context.textAlign = "right";
  context.fillText(label(high, decimals), width - pad.right, height - 4);
  if (bids.length && asks.length) {
    context.textAlign = "center";
    context.fillText(label(mid, decimals), x(mid), height - 4);
  }
}

/** Candle chart of the last candles that fit (9 px per `interval` seconds, newest at the right, empty
 * intervals left blank), with volume bars and the last price. */
export function drawCandles(canvas, candles, decimals, interval) {
  const { context, width, height } = prepare(canvas);
  if (!candles.length) return empty(context, width, height, "no trades yet");
  const axis = 70;
  const slot = 9;
  const slots = Math.max(1, Math.floor((width - axis - 8) / slot));
  const newest = candles[candles.length - 1].time;
  const shown = candles.filter((candle) => candle.time > newest - slots * interval);
  const position = (candle) => slots - 1 - Math.round((newest - candle.time) / interval);
  let low = Math.min(...shown.map((candle) => candle.low));
  let high = Math.max(...shown.map((candle) => candle.high));
  if (high - low < Math.abs(high) * 1e-4 || high === low) {
    const margin = Math.max(Math.abs(high) * 5e-4, 10 ** -decimals);
    low -= margin;
    high += margin;
  }
  const volumeHeight = Math.floor(height * 0.18);
  const chartBottom = height - volumeHeight - 16;
  const y = (price) => 8 + ((high - price) / (high - low)) * (chartBottom - 8);
  const maxVolume = Math.max(...shown.map((candle) => candle.volume)) || 1;

  context.strokeStyle = COLORS.grid;
  context.lineWidth = 1;
  context.fillStyle = COLORS.text;
  context.textAlign = "left";
  for (let i = 0; i <= 4; i += 1) {
    const price = low + ((high - low) * i) / 4;
    const level = Math.round(y(price)) + 0.5;
    context.beginPath();
    context.moveTo(0, level);
    context.lineTo(width - axis, level);
    context.stroke();
    context.fillText(label(price, decimals), width - axis + 6, level + 4);
  }

  shown.forEach((candle) => {
    const center = 4 + position(candle) * slot + slot / 2;
    const up = candle.close >= candle.open;
    const color = up ? COLORS.bid : COLORS.ask;
    context.strokeStyle = color;
    context.fillStyle = color;
    context.beginPath();
    context.moveTo(Math.round(center) + 0.5, y(candle.high));
    context.lineTo(Math.round(center) + 0.5, y(candle.low));
    context.stroke();
    const top = y(Math.max(candle.open, candle.close));
    const bodyHeight = Math.max(1, Math.abs(y(candle.open) - y(candle.close)));
    context.fillRect(center - 3, top, 7, bodyHeight);
    const volume = (candle.volume / maxVolume) * volumeHeight;
    context.globalAlpha = 0.45;
    context.fillRect(center - 3, height - 14 - volume, 7, volume);
    context.globalAlpha = 1;
  });

  const last = shown[shown.length - 1].close;
  const level = Math.round(y(last)) + 0.5;
  context.strokeStyle = COLORS.last;
  context.setLineDash([3, 3]);
  context.beginPath();
  context.moveTo(0, level);
  context.lineTo(width - axis, level);
  context.stroke();
  context.setLineDash([]);
  context.fillStyle = COLORS.last;
  context.fillRect(width - axis + 2, level - 8, axis - 2, 16);
  context.fillStyle = "#11161f";
  context.fillText(label(last, decimals), width - axis + 6, level + 4);

  context.fillStyle = COLORS.text;
  const first = clock(shown[0].time);
  const end = clock(shown[shown.length - 1].time);
  context.fillText(first, Math.max(4, 4 + position(shown[0]) * slot - 20), height - 2);
  context.textAlign = "right";
  context.fillText(end, width - axis, height - 2);
}
