// Small SVG line charts: time on x, one or more series on y, anomalies marked.
//
// A series is the `points` array of one /timeseries response: [{t, value, count}], t in
// epoch seconds (bucket start), value null when the bucket had no data. Lines break at
// nulls; a dot marks every bucket that holds requests (count > 0). Each dot carries
// data-t / data-value / data-count, so what is drawn can be checked against the API.

import { clock, h, inUnit, num, s } from "./dom.js";

const HEIGHT = 190;
const MARGIN = { top: 14, right: 16, bottom: 24, left: 56 };
const TIME_STEPS_S = [
  5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

/**
 * Draw `spec` into `container` (replacing what was there), sized to the container's width.
 * spec: {metric, unit, label, series: [{name, key, points}], anomalies: [{t, score, series}]}
 */
export function drawChart(container, spec) {
  const width = Math.max(260, Math.floor(container.clientWidth || 480));
  const frame = makeFrame(spec, width);
  const svg = s("svg", {
    class: "chart-svg", viewBox: `0 0 ${width} ${HEIGHT}`, role: "img",
    "data-metric": spec.metric, "aria-label": describe(spec),
  });
  if (frame === null) {
    const middle = { class: "empty", x: width / 2, y: HEIGHT / 2 };
    svg.append(s("text", middle, "no data in this window"));
    svg.dataset.pointCount = "0";
    container.replaceChildren(svg);
    return;
  }
  svg.append(drawGrid(frame, spec.unit), drawAnomalies(frame, spec));
  let drawn = 0;
  spec.series.forEach((series, index) => {
    const group = drawSeries(frame, series, index, anomalyTimes(spec, series.key));
    drawn += group.querySelectorAll("circle.pt").length;
    svg.append(group);
  });
  svg.dataset.pointCount = String(drawn);
  const tip = h("div", { class: "chart-tip", hidden: true });
  attachHover(svg, tip, frame, spec);
  container.replaceChildren(svg, tip);
}

function describe(spec) {
  const names = spec.series.map((series) => series.name).join(", ");
  return `${spec.label}: ${names}; ${spec.anomalies.length} anomalies`;
}

/** Scales and the sorted bucket times; null when there is nothing to draw. */
function makeFrame(spec, width) {
  const times = [...new Set(spec.series.flatMap((se) => se.points.map((p) => p.t)))]
    .sort((a, b) => a - b);
  if (times.length === 0) return null;
  const values = spec.series.flatMap((se) => se.points.map((p) => p.value))
    .filter(Number.isFinite);
  const step = times.length > 1 ? times[1] - times[0] : 60;
  const t0 = times.length > 1 ? times[0] : times[0] - step;
  const t1 = times.length > 1 ? times[times.length - 1] : times[0] + step;
  const yTicks = niceTicks(values.length ? Math.max(...values) : 0);
  const yMax = yTicks[yTicks.length - 1];
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  return {
    width, times, yTicks, left, right, top, bottom, t0, t1,
    x: (t) => left + ((t - t0) / (t1 - t0)) * (right - left),
    y: (v) => bottom - (v / yMax) * (bottom - top),
  };
}

/** 0 and up to 5 round steps (1, 2, 2.5 or 5 times a power of ten) reaching `max`. */
export function niceTicks(max) {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((c) => c >= rough);
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function drawGrid(frame, unit) {
  const group = s("g", { class: "grid" });
  for (const value of frame.yTicks) {
    const y = frame.y(value);
    group.append(
      s("line", { x1: frame.left, x2: frame.right, y1: y, y2: y }),
      s("text", { class: "y-label", x: frame.left - 6, y: y + 4 }, inUnit(value, unit)),
    );
  }
  const span = frame.t1 - frame.t0;
  const maxTicks = Math.max(2, Math.floor((frame.right - frame.left) / 80));
  const step = TIME_STEPS_S.find((c) => span / c <= maxTicks) ?? 86400;
  for (let t = Math.ceil(frame.t0 / step) * step; t <= frame.t1; t += step) {
    const x = frame.x(t);
    const label = step < 60 ? clock(t) : clock(t).replace(/:\d\d$/, "");
    group.append(
      s("line", { class: "x-tick", x1: x, x2: x, y1: frame.bottom, y2: frame.bottom + 4 }),
      s("text", { class: "x-label", x, y: HEIGHT - 6 }, label),
    );
  }
  group.append(s("line", {
    class: "axis", x1: frame.left, x2: frame.right, y1: frame.bottom, y2: frame.bottom,
  }));
  return group;
}

function drawAnomalies(frame, spec) {
  const group = s("g", { class: "anomalies" });
  for (const anomaly of spec.anomalies) {
    if (anomaly.t < frame.t0 || anomaly.t > frame.t1) continue;
    const x = frame.x(anomaly.t);
    const where = anomaly.series ? ` (${anomaly.series})` : "";
    group.append(s("g", {
      class: "anomaly", "data-anomaly-t": anomaly.t, "data-score": anomaly.score,
    },
    s("title", {}, `Anomaly${where} at ${clock(anomaly.t)}, score ${num(anomaly.score, 2)}`),
    s("rect", { x: x - 5, y: frame.top, width: 10, height: frame.bottom - frame.top }),
    s("path", { d: `M${x - 5},${frame.top - 8} h10 l-5,7 z` })));
  }
  return group;
}

function anomalyTimes(spec, key) {
  return new Set(spec.anomalies.filter((a) => !a.series || a.series === key).map((a) => a.t));
}

function drawSeries(frame, series, index, anomalous) {
  const group = s("g", { class: `series series-${index}`, "data-series": series.key });
  group.append(s("path", { class: "line", d: linePath(frame, series.points) }));
  const data = series.points.filter((p) => p.count > 0 && Number.isFinite(p.value));
  const radius = Math.min(3, Math.max(1.5, (frame.right - frame.left) / frame.times.length / 3));
  for (const point of data) {
    const flagged = anomalous.has(point.t);
    group.append(s("circle", {
      class: flagged ? "pt anomalous" : "pt",
      cx: frame.x(point.t), cy: frame.y(point.value), r: flagged ? radius + 2 : radius,
      "data-t": point.t, "data-value": point.value, "data-count": point.count,
    }));
  }
  return group;
}

/** An SVG path through the points, lifting the pen where a value is missing. */
function linePath(frame, points) {
  let d = "";
  let pen = "M";
  for (const point of points) {
    if (!Number.isFinite(point.value)) {
      pen = "M";
      continue;
    }
    d += `${pen}${frame.x(point.t).toFixed(1)},${frame.y(point.value).toFixed(1)}`;
    pen = "L";
  }
  return d;
}

/** A guide line and a tooltip with every series' value at the bucket under the pointer. */
function attachHover(svg, tip, frame, spec) {
  const guide = s("line", {
    class: "guide", y1: frame.top, y2: frame.bottom, visibility: "hidden",
  });
  svg.append(guide);
  svg.addEventListener("pointermove", (event) => {
    const rect = svg.getBoundingClientRect();
    const px = ((event.clientX - rect.left) * frame.width) / rect.width;
    const t = nearest(frame.times, frame.t0 + ((px - frame.left) / (frame.right - frame.left))
      * (frame.t1 - frame.t0));
    const x = frame.x(t);
    guide.setAttribute("x1", x);
    guide.setAttribute("x2", x);
    guide.setAttribute("visibility", "visible");
    tip.replaceChildren(...tipLines(spec, t));
    tip.hidden = false;
    const cssX = (x / frame.width) * rect.width;
    tip.classList.toggle("flip", cssX > rect.width / 2);
    tip.style.setProperty("--x", `${cssX}px`);
  });
  svg.addEventListener("pointerleave", () => {
    guide.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
}

function tipLines(spec, t) {
  const lines = [h("div", { class: "tip-time" }, clock(t))];
  spec.series.forEach((series, index) => {
    const point = series.points.find((p) => p.t === t);
    if (!point) return;
    lines.push(h("div", { class: `tip-row series-${index}` },
      h("span", { class: "swatch" }), `${series.name}: ${inUnit(point.value, spec.unit)}`,
      h("span", { class: "muted" }, ` (${num(point.count, 0)} req)`)));
  });
  for (const anomaly of spec.anomalies.filter((a) => a.t === t)) {
    lines.push(h("div", { class: "tip-anomaly" }, `anomaly, score ${num(anomaly.score, 2)}`));
  }
  return lines;
}

function nearest(sorted, t) {
  let best = sorted[0];
  for (const candidate of sorted) {
    if (Math.abs(candidate - t) < Math.abs(best - t)) best = candidate;
  }
  return best;
}
