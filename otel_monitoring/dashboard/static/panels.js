// Rendering of each panel from API responses. Pure functions of their data (and callbacks):
// the refresh loop and the dialogs live in app.js.

import { ago, byId, clock, duration, fill, h, ms, num, pct } from "./dom.js";

// ---------------------------------------------------------------- health

const HEALTH_LABELS = { healthy: "Healthy", degraded: "Degraded", unhealthy: "Unhealthy" };

export function renderHealth(health) {
  const status = HEALTH_LABELS[health.status] ? health.status : "unknown";
  byId("health").dataset.status = status;
  fill("health-status", HEALTH_LABELS[status] ?? String(health.status));
  fill("health-figures",
    figure("uptime", duration(health.uptime_seconds)),
    figure("requests", num(health.total_requests, 0)),
    figure("errors", `${num(health.total_errors, 0)} (${pct(health.error_rate)})`),
    figure("endpoints", num(health.endpoints_count, 0)),
    figure("active alerts", num(health.active_alerts, 0)));
  const reasons = health.reasons ?? [];
  fill("health-reasons", reasons.map((reason) => h("li", {}, reason)));
  fill("self-telemetry-figures", keyValues(health.self_telemetry ?? {}));
}

function figure(label, value) {
  return h("div", { class: "figure" }, h("dt", {}, label), h("dd", {}, value));
}

function keyValues(object, prefix = "") {
  // a nested object (the shared store's figures) is listed entry by entry, named "store ..."
  return Object.entries(object).flatMap(([key, value]) =>
    value !== null && typeof value === "object"
      ? keyValues(value, `${prefix}${key} `)
      : [
          [
            h("dt", {}, (prefix + key).replaceAll("_", " ")),
            h("dd", {}, typeof value === "number" ? num(value, 2) : String(value ?? "–")),
          ],
        ],
  );
}

// ---------------------------------------------------------------- tables

/**
 * A table from column definitions: {label, value(row) -> text|Node, cls, sortKey}.
 * `options.sort` = {key, dir, onSort(key)} makes the headers buttons that sort.
 */
export function renderTable(table, columns, rows, options = {}) {
  const { empty = "nothing yet", rowAttrs = () => ({}), sort = null } = options;
  const head = h("tr", {}, columns.map((column) => headerCell(column, sort)));
  const body = rows.length
    ? rows.map((row) => h("tr", rowAttrs(row),
      columns.map((column) => h("td", { class: column.cls }, column.value(row)))))
    : h("tr", {}, h("td", { class: "empty", colspan: columns.length }, empty));
  fill(table, h("thead", {}, head), h("tbody", {}, body));
}

function headerCell(column, sort) {
  if (!sort || !column.sortKey) return h("th", { class: column.cls, scope: "col" }, column.label);
  const active = sort.key === column.sortKey;
  return h("th", {
    class: column.cls, scope: "col",
    "aria-sort": active ? (sort.dir === "asc" ? "ascending" : "descending") : "none",
  }, h("button", {
    type: "button", class: "sort", "data-sort": column.sortKey,
    onclick: () => sort.onSort(column.sortKey),
  }, column.label, h("span", { class: "arrow", "aria-hidden": "true" },
    active ? (sort.dir === "asc" ? " ▲" : " ▼") : "")));
}

/** Sort a copy of `rows` by the column with `key`; missing values last either way. */
export function sortRows(rows, columns, { key, dir }) {
  const column = columns.find((c) => c.sortKey === key);
  if (!column) return rows;
  const sign = dir === "asc" ? 1 : -1;
  return [...rows].sort((a, b) => {
    const va = column.sortValue(a);
    const vb = column.sortValue(b);
    if (va === null || va === undefined) return vb === null || vb === undefined ? 0 : 1;
    if (vb === null || vb === undefined) return -1;
    return (typeof va === "string" ? va.localeCompare(vb) : va - vb) * sign;
  });
}

const mono = (text, cls = "mono") => h("span", { class: cls }, text);

/** A trace id: monospace, selected whole with one click (for pasting into a trace viewer). */
const traceId = (id) => h("code", { class: "trace-id", title: "trace id" }, id || "–");

export const endpointKey = (e) => `${e.method} ${e.route}`;

/** Columns of the endpoints table; `onPick(endpoint)` charts the route. */
export function endpointColumns(onPick) {
  const latency = (field) => (e) => e.latency?.[field] ?? null;
  const numeric = (label, sortKey, get, format) => ({
    label, sortKey, cls: "num", sortValue: get, value: (e) => format(get(e)),
  });
  return [
    {
      label: "Route", sortKey: "route", sortValue: (e) => e.route,
      value: (e) => h("button", {
        type: "button", class: "link route", title: "chart this route",
        onclick: () => onPick(e),
      }, e.route),
    },
    {
      label: "Method", sortKey: "method", sortValue: (e) => e.method,
      value: (e) => mono(e.method, "method"),
    },
    numeric("Requests", "requests", (e) => e.requests, (v) => num(v, 0)),
    numeric("Req/min", "throughput", (e) => e.throughput_rpm, (v) => num(v, 1)),
    numeric("Errors", "error_rate", (e) => e.error_rate, pct),
    numeric("4xx", "client_error_rate", (e) => e.client_error_rate, pct),
    numeric("p50", "p50", latency("p50_ms"), ms),
    numeric("p95", "p95", latency("p95_ms"), ms),
    numeric("p99", "p99", latency("p99_ms"), ms),
    numeric("Max", "max", latency("max_ms"), ms),
  ];
}

export function traceColumns() {
  return [
    { label: "Duration", cls: "num", value: (x) => ms(x.duration_ms) },
    { label: "Route", value: (x) => [mono(x.method, "method"), " ", x.route] },
    { label: "Status", cls: "num", value: (x) => (x.status_code ?? "–") },
    { label: "Trace id", value: (x) => traceId(x.trace_id) },
    { label: "When", value: (x) => h("span", { title: ago(x.timestamp_s) }, clock(x.timestamp_s)) },
  ];
}

export function dbColumns() {
  return [
    { label: "Statement", value: (x) => h("span", { class: "mono", title: x.example }, x.summary) },
    { label: "System", value: (x) => x.system },
    { label: "Count", cls: "num", value: (x) => num(x.count, 0) },
    { label: "Errors", cls: "num", value: (x) => num(x.errors, 0) },
    { label: "Avg", cls: "num", value: (x) => ms(x.avg_ms) },
    { label: "p95", cls: "num", value: (x) => ms(x.p95_ms) },
    { label: "Max", cls: "num", value: (x) => ms(x.max_ms) },
  ];
}

export function nPlusOneColumns() {
  return [
    {
      label: "Statement, route and trace",
      value: (x) => [
        h("div", { class: "mono clip", title: x.statement }, x.statement),
        h("div", { class: "muted" }, mono(x.method, "method"), " ", x.route, " · ",
          h("span", { title: ago(x.timestamp_s) }, clock(x.timestamp_s)), " · ",
          traceId(x.trace_id)),
      ],
    },
    { label: "Times", cls: "num", value: (x) => `×${num(x.count, 0)}` },
  ];
}

// ---------------------------------------------------------------- alerts

/** Active alerts as cards; `onResolve(alert)` opens the resolve dialog. */
export function renderAlerts(alerts, onResolve) {
  fill("alerts-count", String(alerts.length));
  byId("alerts-count").dataset.firing = String(alerts.some((a) => a.state === "firing"));
  if (!alerts.length) {
    fill("alerts", h("p", { class: "empty" }, "No active alerts."));
    return;
  }
  fill("alerts", alerts.map((alert) => alertCard(alert, onResolve)));
}

export function renderResolved(alerts) {
  const recent = alerts.slice(0, 10);
  fill("resolved-list", recent.length
    ? recent.map((alert) => alertCard(alert, null))
    : h("p", { class: "empty" }, "None yet."));
}

function alertCard(alert, onResolve) {
  const labels = Object.entries(alert.labels ?? {});
  return h("article", {
    class: `card alert sev-${safeClass(alert.severity)}`, "data-alert-id": alert.id,
    "data-state": alert.state, "data-rule": alert.rule,
  },
  h("header", {},
    h("span", { class: `badge sev-${safeClass(alert.severity)}` }, alert.severity),
    h("span", { class: `badge state-${safeClass(alert.state)}` }, alert.state),
    h("strong", { class: "rule" }, alert.rule),
    h("span", { class: "when", title: String(alert.started_at ?? "") }, alert.state === "resolved"
      ? `resolved ${ago(alert.resolved_at)}` : `since ${ago(alert.started_at)}`)),
  h("p", { class: "summary" }, alert.summary),
  h("p", { class: "facts" },
    `value ${num(alert.value, 2)} · threshold ${num(alert.threshold, 2)}`,
    labels.map(([key, value]) => h("span", { class: "label" }, `${key}=${value}`))),
  alert.state === "resolved" ? resolution(alert) : null,
  history(alert.history ?? []),
  onResolve ? h("div", { class: "actions" }, h("button", {
    type: "button", class: "resolve", onclick: () => onResolve(alert),
  }, "Resolve…")) : null);
}

function resolution(alert) {
  return h("p", { class: "resolution" },
    `Resolved ${clock(alert.resolved_at)} by ${alert.resolved_by ?? "unknown"}`,
    alert.resolution_reason ? [": ", h("q", {}, alert.resolution_reason)] : "");
}

function history(events) {
  if (!events.length) return null;
  return h("details", { class: "history" }, h("summary", {}, `history (${events.length})`),
    h("ol", {}, events.map((e) => h("li", {},
      h("span", { class: "muted" }, clock(e.at)), ` ${e.state}`, e.note ? ` – ${e.note}` : ""))));
}

/** Severity/state names become CSS classes: keep them to a known-safe alphabet. */
function safeClass(value) {
  return String(value ?? "unknown").toLowerCase().replace(/[^a-z0-9-]/g, "");
}

// ---------------------------------------------------------------- insights

export function renderInsights(insights, recommendations) {
  const cards = [
    ...insights.map((item) => insightCard(item, "insight")),
    ...recommendations.map((item) => insightCard(item, "recommendation")),
  ];
  fill("insights", cards.length ? cards : h("p", { class: "empty" },
    "No insights yet: they appear once there is enough traffic to analyse."));
}

function insightCard(item, kind) {
  return h("article", { class: `card insight sev-${safeClass(item.severity)}`, "data-kind": kind },
    h("header", {},
      h("span", { class: `badge sev-${safeClass(item.severity)}` }, item.severity ?? "info"),
      h("span", { class: "badge" }, kind),
      h("strong", {}, item.title ?? item.kind ?? "")),
    item.message ? h("p", {}, item.message) : null,
    item.route ? h("p", { class: "facts" }, "route ", mono(item.route)) : null,
    evidence(item.evidence),
    item.trace_ids?.length
      ? h("p", { class: "facts" }, "traces ", item.trace_ids.map((id) => [traceId(id), " "]))
      : null);
}

/** Evidence is shown generically: a list of {name, value, unit}, an object, or scalars. */
function evidence(items) {
  if (!items) return null;
  const entries = Array.isArray(items)
    ? items.map((item, i) => (item !== null && typeof item === "object" && "value" in item
      ? [item.name ?? item.label ?? `#${i + 1}`, evidenceValue(item.value, item.unit)]
      : [`#${i + 1}`, evidenceValue(item)]))
    : Object.entries(items).map(([name, value]) => [name, evidenceValue(value)]);
  if (!entries.length) return null;
  return h("dl", { class: "kv evidence" },
    entries.map(([name, value]) => [h("dt", {}, String(name)), h("dd", {}, value)]));
}

function evidenceValue(value, unit) {
  const text = typeof value === "number" ? num(value, 3)
    : typeof value === "string" ? value : JSON.stringify(value);
  return unit ? `${text} ${unit}` : text;
}

/** A panel whose request failed: say why, in place of its content. */
export function panelError(error) {
  return h("p", { class: "error" }, `Could not load: ${error.message}`);
}
