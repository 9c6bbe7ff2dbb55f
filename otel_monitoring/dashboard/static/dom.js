// DOM building and number/time formatting.
//
// Everything the API returns (route names, alert summaries, messages) comes from user
// traffic, so it only ever enters the page as text nodes or attribute values: never as
// markup. `h()` is the one way this page creates elements.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an element: h("td", {class: "num", "data-x": 1}, "text", child, [more]). */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the content of `el` (found by id when a string) with `children`. */
export function fill(el, ...children) {
  const target = typeof el === "string" ? document.getElementById(el) : el;
  target.replaceChildren();
  append(target, children);
  return target;
}

export const byId = (id) => document.getElementById(id);

const DASH = "–";

/** 1234.5 -> "1,234.5" with at most `digits` decimals; null -> "–". */
export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

/** Milliseconds, switching to seconds from 1 s. */
export function ms(value) {
  if (value === null || value === undefined) return DASH;
  if (value >= 1000) return `${num(value / 1000, 2)} s`;
  return `${num(value, value < 10 ? 2 : 1)} ms`;
}

export function pct(value) {
  if (value === null || value === undefined) return DASH;
  return `${num(value, value < 1 && value > 0 ? 2 : 1)} %`;
}

/** A value in the unit the timeseries API gives (rpm, %, ms). */
export function inUnit(value, unit) {
  if (unit === "ms") return ms(value);
  if (unit === "%") return pct(value);
  if (unit === "rpm") return `${num(value, 1)} rpm`;
  return num(value, 2);
}

/** Seconds as "3 d 4 h", "2 h 5 min", "4 min 10 s", "12 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return DASH;
  const parts = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  const out = [];
  let rest = Math.max(0, Math.floor(seconds));
  for (const [size, label] of parts) {
    if (rest >= size || (size === 1 && out.length === 0)) {
      out.push(`${Math.floor(rest / size)} ${label}`);
      rest %= size;
    }
    if (out.length === 2) break;
  }
  return out.join(" ");
}

const TIME = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  hourCycle: "h23",
});

/** A Date, epoch seconds or ISO string as local time ("14:02:09", or with the date if old). */
export function clock(when) {
  const date = toDate(when);
  if (date === null) return DASH;
  const old = Date.now() - date.getTime() > 20 * 3600 * 1000;
  return (old ? DATE_TIME : TIME).format(date);
}

/** "5 min ago". */
export function ago(when) {
  const date = toDate(when);
  if (date === null) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  return seconds < 1 ? "just now" : `${duration(seconds)} ago`;
}

export function toDate(when) {
  if (when === null || when === undefined || when === "") return null;
  const date = typeof when === "number" ? new Date(when * 1000) : new Date(when);
  return Number.isNaN(date.getTime()) ? null : date;
}
