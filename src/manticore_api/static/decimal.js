// Exact decimal strings for the order form and the book: the server sends prices and quantities as
// decimal strings ("30000.00"), and the form must check a price against the tick and a quantity
// against the lot exactly, which binary floats cannot. Values are {n: BigInt, s: scale} = n / 10^s.

const PATTERN = /^\s*(\d*)(?:\.(\d*))?\s*$/;

/** Parse a non-negative decimal string; null when it is not one ("", "1e5", "-1", "abc"). */
export function parse(text) {
  const match = PATTERN.exec(String(text));
  if (!match || (match[1] === "" && (match[2] === undefined || match[2] === ""))) return null;
  const whole = match[1] || "0";
  const fraction = match[2] || "";
  return { n: BigInt(whole + fraction), s: fraction.length };
}

function align(a, b) {
  const s = Math.max(a.s, b.s);
  return [a.n * 10n ** BigInt(s - a.s), b.n * 10n ** BigInt(s - b.s), s];
}

/** -1, 0 or 1 comparing two decimal strings (both must parse). */
export function compare(a, b) {
  const [x, y] = align(parse(a), parse(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Whether the decimal string `value` is a positive whole multiple of the decimal string `step`. */
export function onGrid(value, step) {
  const v = parse(value);
  const g = parse(step);
  if (!v || !g || g.n === 0n || v.n === 0n) return false;
  const [x, y] = align(v, g);
  return x % y === 0n;
}

/** Whether the string is a decimal greater than zero. */
export function positive(text) {
  const v = parse(text);
  return v !== null && v.n > 0n;
}

/** Number of decimals of a step such as "0.00001" (5); used to format inputs and displays. */
export function decimalsOf(step) {
  const v = parse(step);
  return v ? v.s : 0;
}

/** The product of two decimal strings as a decimal string (exact). */
export function multiply(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  return toText({ n: x.n * y.n, s: x.s + y.s });
}

function toText(v) {
  let digits = v.n.toString();
  if (v.s === 0) return digits;
  digits = digits.padStart(v.s + 1, "0");
  const text = digits.slice(0, digits.length - v.s) + "." + digits.slice(digits.length - v.s);
  return text.replace(/\.?0+$/, "");
}

/** Show a decimal string with exactly `decimals` decimals (cutting extra digits, never rounding up). */
export function fixed(text, decimals) {
  const v = parse(text);
  if (!v) return String(text);
  let n = v.n;
  if (v.s > decimals) n = n / 10n ** BigInt(v.s - decimals);
  else n = n * 10n ** BigInt(decimals - v.s);
  let digits = n.toString().padStart(decimals + 1, "0");
  if (decimals === 0) return digits;
  return digits.slice(0, digits.length - decimals) + "." + digits.slice(digits.length - decimals);
}

/** A decimal string without trailing zeros ("0.50000" -> "0.5"); non-decimals are returned as given. */
export function trim(text) {
  const v = parse(text);
  return v ? toText(v) : String(text);
}

/** a - b for decimal strings with a >= b, exact. */
export function subtract(a, b) {
  const [x, y, s] = align(parse(a), parse(b));
  return toText({ n: x - y, s });
}

/** a + b for non-negative decimal strings, exact (null when one is not a decimal). */
export function add(a, b) {
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  const [m, n, s] = align(x, y);
  return toText({ n: m + n, s });
}
