// Small SVG charts: a pattern's shape, line charts over time, bar charts over weeks.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The guide level (0 empty .. 1 full) of the device's light, as device/pacing/engine.py. */
export function guideLevel(phase, progress) {
  const p = Math.min(1, Math.max(0, progress));
  if (phase === "inhale") return (1 - Math.cos(Math.PI * p)) / 2;
  if (phase === "exhale") return (1 + Math.cos(Math.PI * p)) / 2;
  return phase === "hold_in" ? 1 : 0;
}

const ORDER = ["inhale", "hold_in", "exhale", "hold_out"];

/** Guide level at ``t`` active seconds into a session of ``pattern``. */
export function levelAt(pattern, t) {
  const cycle = ORDER.reduce((sum, k) => sum + Number(pattern[k] || 0), 0);
  if (!(cycle > 0)) return 0;
  let at = ((t % cycle) + cycle) % cycle;
  for (const phase of ORDER) {
    const len = Number(pattern[phase] || 0);
    if (at < len) return guideLevel(phase, at / len);
    at -= len;
  }
  return 0;
}

/** One breathing cycle drawn as rise, hold, fall, hold: what the light will do. */
export function patternShape(pattern, label) {
  const cycle = ORDER.reduce((sum, k) => sum + Number(pattern[k] || 0), 0) || 1;
  const width = 100, height = 24;
  const x = (s) => ((s / cycle) * width).toFixed(2);
  let t = 0;
  const points = [`0,${height}`];
  for (const phase of ORDER) {
    t += Number(pattern[phase] || 0);
    points.push(`${x(t)},${phase === "inhale" || phase === "hold_in" ? 2 : height}`);
  }
  const node = svg("svg", {
    class: "shape", viewBox: `0 0 ${width} ${height + 2}`, preserveAspectRatio: "none",
    role: "img", "aria-label": label,
  });
  node.append(svg("line", { class: "base", x1: 0, y1: height, x2: width, y2: height }));
  node.append(svg("polyline", { points: points.join(" ") }));
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
}

/**
 * A line chart. ``series``: [{label, colour, points: [[x, y|null], ...]}] (null breaks the
 * line). ``opts``: {label (for screen readers), xLabel, yLabel, yMin, yMax, xFormat, height}.
 */
export function lineChart(series, opts = {}) {
  const W = 400, H = opts.height || 200, L = 52, R = 20, T = 12, B = 36; // L: room for "100 %"
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null && v !== undefined));
  const x0 = xs.length ? Math.min(...xs) : 0, x1 = xs.length ? Math.max(...xs) : 1;
  const y0 = opts.yMin ?? Math.min(0, ...ys);
  const y1 = opts.yMax ?? niceMax(ys.length ? Math.max(...ys) : 1);
  const sx = (v) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (v) => T + (1 - (v - y0) / (y1 - y0 || 1)) * (H - T - B);
  const node = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": opts.label || "chart" });
  node.append(svg("title", {}, opts.label || "chart"));
  node.append(svg("line", { class: "axis", x1: L, y1: sy(y0), x2: W - R, y2: sy(y0) }));
  node.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  const fmt = opts.yFormat || ((v) => String(Math.round(v * 10) / 10));
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    node.append(svg("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end" }, fmt(v)));
  }
  const xfmt = opts.xFormat || ((v) => String(Math.round(v)));
  for (const v of [x0, (x0 + x1) / 2, x1]) {
    node.append(svg("text", { x: sx(v), y: H - B + 16, "text-anchor": "middle" }, xfmt(v)));
  }
  if (opts.xLabel) node.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, opts.xLabel));
  for (const s of series) {
    let d = "", pen = false;
    for (const [x, y] of s.points) {
      if (y === null || y === undefined || Number.isNaN(y)) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      pen = true;
    }
    const path = svg("path", { class: "series", d, stroke: s.colour });
    if (s.dash) path.setAttribute("stroke-dasharray", s.dash);
    node.append(path);
  }
  return node;
}

/** Bars with labels under them. ``bars``: [{label, value}]. */
export function barChart(bars, opts = {}) {
  const W = 400, H = opts.height || 180, L = 52, R = 10, T = 12, B = 30;
  const max = niceMax(Math.max(0, ...bars.map((b) => b.value || 0)));
  const node = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": opts.label || "bar chart" });
  node.append(svg("title", {}, opts.label || "bar chart"));
  const inner = W - L - R, slot = inner / Math.max(1, bars.length);
  const sy = (v) => T + (1 - v / max) * (H - T - B);
  node.append(svg("line", { class: "axis", x1: L, y1: sy(0), x2: W - R, y2: sy(0) }));
  const fmt = opts.yFormat || ((v) => String(Math.round(v * 10) / 10));
  for (const v of [0, max / 2, max]) node.append(svg("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end" }, fmt(v)));
  const every = Math.ceil(bars.length / 5);
  bars.forEach((b, i) => {
    const x = L + i * slot + slot * 0.15, w = slot * 0.7, v = b.value || 0;
    const rect = svg("rect", { class: "bar", x, y: sy(v), width: w, height: sy(0) - sy(v) });
    rect.append(svg("title", {}, `${b.label}: ${fmt(v)}`));
    node.append(rect);
    if (i % every === 0) node.append(svg("text", { x: x + w / 2, y: H - B + 16, "text-anchor": "middle" }, b.label));
  });
  return node;
}
