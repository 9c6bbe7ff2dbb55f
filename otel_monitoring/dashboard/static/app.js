// The dashboard: state, the refresh loop, the key and resolve dialogs.

import { Api, ApiError } from "./api.js";
import { drawChart } from "./charts.js";
import { byId, clock, fill, h } from "./dom.js";
import {
  dbColumns, endpointColumns, endpointKey, nPlusOneColumns, panelError, renderAlerts,
  renderHealth, renderInsights, renderResolved, renderTable, sortRows, traceColumns,
} from "./panels.js";

const REFRESH_S = 5;
const MAX_BACKOFF_S = 300;
const WINDOWS = ["5m", "1h", "24h"];

const CHARTS = [
  { id: "chart-throughput", metric: "throughput", label: "Throughput",
    series: [{ key: "throughput", name: "requests/min" }] },
  { id: "chart-error-rate", metric: "error_rate", label: "Error rate",
    series: [{ key: "error_rate", name: "error rate" }] },
  { id: "chart-latency", metric: "latency", label: "Latency",
    series: [
      { key: "latency_p50", name: "p50" },
      { key: "latency_p95", name: "p95" },
      { key: "latency_p99", name: "p99" },
    ] },
];

const api = new Api();
const state = {
  window: "1h",
  scope: null, // {route, method} or null for the whole service
  sort: { key: "requests", dir: "desc" },
  endpoints: [],
  charts: new Map(), // chart id -> last spec, redrawn on resize
  timer: null,
  inFlight: false,
  again: false,
  updatedAt: null, // local time of the last complete refresh
  waitingForKey: false,
  backoffS: 0,
  resolving: null,
};

// ---------------------------------------------------------------- refresh loop

async function refresh() {
  if (state.inFlight) {
    state.again = true; // the view changed mid-refresh: refresh once more right after
    return;
  }
  state.inFlight = true;
  clearTimeout(state.timer);
  setStatus("loading", state.updatedAt ? `Updated ${state.updatedAt}` : "Loading…");
  let nextS = REFRESH_S;
  try {
    const dashboard = await api.get("/dashboard");
    renderDashboard(dashboard);
    await loadPanels();
    state.backoffS = 0;
    hideNotice();
    state.updatedAt = clock(new Date());
    setStatus("ok", `Updated ${state.updatedAt}`);
  } catch (error) {
    nextS = handleFailure(error);
  } finally {
    state.inFlight = false;
  }
  const again = state.again && nextS === REFRESH_S;
  state.again = false;
  if (again) refresh();
  else schedule(nextS);
}

function schedule(seconds) {
  clearTimeout(state.timer);
  const auto = byId("auto-refresh").checked && document.visibilityState === "visible";
  if (seconds !== null && auto && !state.waitingForKey) {
    state.timer = setTimeout(refresh, seconds * 1000);
  }
}

function renderDashboard(dashboard) {
  renderHealth(dashboard.health);
  renderAlerts(dashboard.active_alerts ?? [], openResolve);
  renderInsights(dashboard.insights ?? [], dashboard.recommendations ?? []);
}

/**
 * Load every other panel in parallel. A panel whose request fails shows why in place; a
 * failure that concerns the whole API (key refused, rate limit, unreachable) is rethrown.
 */
async function loadPanels() {
  const { window: span } = state;
  const scope = state.scope ?? {};
  const results = await Promise.allSettled([
    panel(() => api.get("/endpoints", { window: span, limit: 200 }), renderEndpoints,
      "endpoints"),
    panel(() => loadCharts(span, scope), null, "charts"),
    panel(() => api.get("/alerts", { state: "resolved" }), renderResolved, "resolved-list"),
    panel(() => api.get("/slow-traces", { window: span, limit: 10, route: scope.route }),
      (rows) => renderTable(byId("slow-traces"), traceColumns(), rows,
        { empty: "No traces recorded in this window." }), "slow-traces"),
    panel(() => api.get("/db", { window: span }),
      (rows) => renderTable(byId("db"), dbColumns(), rows,
        { empty: "No database queries in this window." }), "db"),
    panel(() => api.get("/db/n-plus-one", { limit: 10 }),
      (rows) => renderTable(byId("n-plus-one"), nPlusOneColumns(), rows,
        { empty: "No N+1 patterns seen." }), "n-plus-one"),
  ]);
  const fatal = results.find((r) => r.status === "rejected");
  if (fatal) throw fatal.reason;
}

async function panel(load, render, targetId) {
  try {
    const data = await load();
    if (render) render(data);
  } catch (error) {
    if (!(error instanceof ApiError) || isGlobal(error)) throw error;
    showPanelError(targetId, error);
  }
}

const isGlobal = (error) => [0, 401, 403, 429].includes(error.status) || error.status >= 500;

function showPanelError(targetId, error) {
  if (targetId === "charts") {
    state.charts.clear();
    for (const body of document.querySelectorAll(".chart-body")) fill(body, panelError(error));
    return;
  }
  const target = byId(targetId);
  if (target.tagName === "TABLE") fill(target, h("caption", {}, panelError(error)));
  else fill(target, panelError(error));
}

/** What to do when a refresh fails; returns the delay before the next try (null: wait). */
function handleFailure(error) {
  if (!(error instanceof ApiError)) {
    // A bug in this page: say so on the page, and leave the stack in the console.
    console.error(error);
    showNotice("error", `The dashboard hit an unexpected problem: ${error.message}`);
    setStatus("error", "Error");
    return REFRESH_S * 2;
  }
  if (error.status === 401 || error.status === 403) {
    askForKey(keyProblem(error));
    setStatus("error", "Waiting for an API key");
    return null;
  }
  // Wait at least what the server asks; double the wait while failures go on.
  state.backoffS = Math.min(MAX_BACKOFF_S, Math.max(
    error.retryAfterS ?? 0, state.backoffS ? state.backoffS * 2 : REFRESH_S));
  const next = clock(new Date(Date.now() + state.backoffS * 1000));
  if (error.status === 429) {
    showNotice("warn", `Rate limited by the monitoring API (${error.detail}). `
      + `Backing off: next try at ${next}.`);
    setStatus("warn", "Rate limited");
  } else {
    showNotice("error", `${describeError(error)} Retrying at ${next}.`);
    setStatus("error", "API unavailable");
  }
  return state.backoffS;
}

function describeError(error) {
  if (error.status === 0) return `${error.detail}.`;
  return `The monitoring API answered ${error.status}: ${error.detail}.`;
}

function keyProblem(error) {
  if (error.status === 403) {
    return `This key may not read the monitoring API (403: ${error.detail}).`;
  }
  return api.key ? `The key was refused (401: ${error.detail}).` : "";
}

// ---------------------------------------------------------------- charts

async function loadCharts(span, scope) {
  const metrics = CHARTS.flatMap((chart) => chart.series.map((series) => series.key));
  const responses = await Promise.all(metrics.map((metric) => api.get(`/timeseries/${metric}`, {
    window: span, route: scope.route, method: scope.method,
  })));
  const byMetric = new Map(metrics.map((metric, i) => [metric, responses[i]]));
  for (const chart of CHARTS) {
    const spec = chartSpec(chart, byMetric);
    state.charts.set(chart.id, spec);
    drawChart(byId(chart.id).querySelector(".chart-body"), spec);
  }
}

function chartSpec(chart, byMetric) {
  const series = chart.series.map((s) => ({ ...s, points: byMetric.get(s.key)?.points ?? [] }));
  const anomalies = chart.series.flatMap((s) => (byMetric.get(s.key)?.anomalies ?? [])
    .map((a) => ({ ...a, series: chart.series.length > 1 ? s.key : null })));
  const unit = byMetric.get(chart.series[0].key)?.unit ?? "";
  return { metric: chart.metric, label: chart.label, unit, series, anomalies };
}

function redrawCharts() {
  for (const [id, spec] of state.charts) drawChart(byId(id).querySelector(".chart-body"), spec);
}

// ---------------------------------------------------------------- endpoints and scope

function renderEndpoints(endpoints) {
  state.endpoints = endpoints;
  const columns = endpointColumns(pickRoute);
  const selected = state.scope ? endpointKey(state.scope) : null;
  renderTable(byId("endpoints"), columns, sortRows(endpoints, columns, state.sort), {
    empty: "No requests recorded in this window yet.",
    rowAttrs: (e) => ({
      "data-route": e.route, "data-method": e.method,
      class: endpointKey(e) === selected ? "selected" : null,
    }),
    sort: { ...state.sort, onSort: sortBy },
  });
}

function sortBy(key) {
  const textual = key === "route" || key === "method";
  state.sort = state.sort.key === key
    ? { key, dir: state.sort.dir === "asc" ? "desc" : "asc" }
    : { key, dir: textual ? "asc" : "desc" };
  renderEndpoints(state.endpoints);
}

function pickRoute(endpoint) {
  const same = state.scope && endpointKey(state.scope) === endpointKey(endpoint);
  setScope(same ? null : { route: endpoint.route, method: endpoint.method });
}

function setScope(scope) {
  state.scope = scope;
  fill("scope", scope ? endpointKey(scope) : "all routes");
  byId("clear-scope").hidden = !scope;
  saveLocation();
  renderEndpoints(state.endpoints);
  refresh();
}

// The window and chosen route live in the URL fragment, so a view can be bookmarked.
function saveLocation() {
  const params = new URLSearchParams({ window: state.window });
  if (state.scope) {
    params.set("route", state.scope.route);
    params.set("method", state.scope.method);
  }
  history.replaceState(null, "", `#${params}`);
}

function loadLocation() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  if (WINDOWS.includes(params.get("window"))) state.window = params.get("window");
  if (params.get("route")) {
    state.scope = { route: params.get("route"), method: params.get("method") || "GET" };
  }
  byId("window").value = state.window;
  fill("scope", state.scope ? endpointKey(state.scope) : "all routes");
  byId("clear-scope").hidden = !state.scope;
}

// ---------------------------------------------------------------- API key

/** Reads need a key: stop polling until one is entered. */
function askForKey(message) {
  state.waitingForKey = true;
  openKeyDialog(message);
  showNotice(message ? "error" : "warn", `${message || "This monitoring API needs a key."} `
    + "Enter it with the “API key” button to see the data.");
}

function openKeyDialog(message) {
  const error = byId("key-error");
  error.hidden = !message;
  error.textContent = message;
  byId("key-input").value = "";
  const dialog = byId("key-dialog");
  if (!dialog.open) dialog.showModal();
}

function submitKey(event) {
  event.preventDefault();
  const key = byId("key-input").value.trim();
  if (!key) return;
  api.key = key;
  state.waitingForKey = false;
  byId("key-dialog").close();
  refresh();
}

function forgetKey() {
  api.key = "";
  byId("key-input").value = "";
  byId("key-dialog").close();
  state.waitingForKey = false;
  refresh();
}

// ---------------------------------------------------------------- resolving alerts

function openResolve(alert) {
  state.resolving = alert;
  fill("resolve-summary", `${alert.rule}: ${alert.summary}`);
  byId("resolve-reason").value = "";
  byId("resolve-error").hidden = true;
  byId("resolve-submit").disabled = false;
  byId("resolve-dialog").showModal();
}

async function submitResolve(event) {
  event.preventDefault();
  const alert = state.resolving;
  const reason = byId("resolve-reason").value.trim();
  if (!alert || !reason) return;
  byId("resolve-submit").disabled = true;
  try {
    await api.post(`/alerts/${encodeURIComponent(alert.id)}/resolve`, { reason });
    byId("resolve-dialog").close();
    showToast(`Alert “${alert.rule}” resolved.`);
    refresh();
  } catch (error) {
    showResolveError(error);
    if (error.status === 404 || error.status === 409) refresh(); // the card is stale
  } finally {
    byId("resolve-submit").disabled = false;
  }
}

function showResolveError(error) {
  const box = byId("resolve-error");
  box.hidden = false;
  if (!(error instanceof ApiError)) {
    box.textContent = `Could not resolve: ${error.message}`;
    return;
  }
  const messages = {
    401: `The key was refused (401: ${error.detail}). Enter a valid admin key.`,
    403: `Resolving alerts needs an admin key (403: ${error.detail}).`,
    404: `This alert no longer exists (404: ${error.detail}).`,
    409: `This alert is already resolved (409: ${error.detail}).`,
    429: `Too many requests (429: ${error.detail}); try again in ${
      Math.ceil(error.retryAfterS ?? REFRESH_S)} s.`,
  };
  box.replaceChildren(messages[error.status] ?? `Could not resolve: ${describeError(error)}`);
  if (error.status === 401 || error.status === 403) {
    box.append(" ", h("button", { type: "button", class: "link", onclick: switchKey },
      "Use another key"));
  }
}

function switchKey() {
  byId("resolve-dialog").close();
  openKeyDialog("");
}

// ---------------------------------------------------------------- status and notices

function setStatus(kind, text) {
  const status = byId("status");
  status.dataset.state = kind;
  status.textContent = text;
}

function showNotice(kind, text) {
  const notice = byId("notice");
  notice.dataset.kind = kind;
  notice.textContent = text;
  notice.hidden = false;
}

function hideNotice() {
  byId("notice").hidden = true;
}

let toastTimer = null;

function showToast(text) {
  const toast = byId("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 4000);
}

// ---------------------------------------------------------------- wiring

function onResize() {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      redrawCharts();
    });
  };
}

function wire() {
  byId("window").addEventListener("change", (event) => {
    state.window = event.target.value;
    saveLocation();
    refresh();
  });
  byId("auto-refresh").addEventListener("change", () => schedule(REFRESH_S));
  byId("refresh-now").addEventListener("click", refresh);
  byId("clear-scope").addEventListener("click", () => setScope(null));
  byId("key-button").addEventListener("click", () => openKeyDialog(""));
  byId("key-form").addEventListener("submit", submitKey);
  byId("key-forget").addEventListener("click", forgetKey);
  byId("key-cancel").addEventListener("click", () => byId("key-dialog").close());
  byId("resolve-form").addEventListener("submit", submitResolve);
  byId("resolve-cancel").addEventListener("click", () => byId("resolve-dialog").close());
  window.addEventListener("resize", onResize());
  // Hidden tabs do not poll (they would spend the API's rate limit for nobody).
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !state.waitingForKey) refresh();
    else clearTimeout(state.timer);
  });
}

loadLocation();
wire();
refresh();
