// One session's summary: metrics, insights, charts from its timeline, achievements, delete.
import { api, bpm, dateTime, duration, fill, h, pct, seconds, showError, title } from "./api.js";
import { showAchievements } from "./achievements.js";
import { levelAt, lineChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const sessionId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const colour = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function metric(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

function onset(mean) {
  if (mean === null || mean === undefined) return "—";
  const s = Math.abs(mean).toFixed(1);
  return mean > 0 ? `${s} s late` : mean < 0 ? `${s} s early` : "on time";
}

function showMetrics(s) {
  const m = s.metrics || {};
  const rate = m.rate || {};
  const rows = [
    metric("Adherence", pct(m.adherence)),
    metric("Median rate", bpm(rate.median)),
    metric("Breaths completed", String(m.cycles_completed ?? "—")),
    metric("Reading coverage", pct(m.coverage)),
  ];
  if (rate.settled_bpm !== null && rate.settled_bpm !== undefined) {
    rows.push(metric("Settled at", `${bpm(rate.settled_bpm)} after ${duration(rate.settled_after_s)}`));
  }
  if (m.onset && m.onset.inhale_count) rows.push(metric("Breathing in starts", onset(m.onset.inhale_mean_s)));
  if (m.holds && m.holds.count) rows.push(metric("Longest hold", seconds(m.holds.longest_s)));
  if (m.measured_inhale_s) rows.push(metric("Typical inhale", seconds(m.measured_inhale_s)));
  if (m.measured_exhale_s) rows.push(metric("Typical exhale", seconds(m.measured_exhale_s)));
  if (m.stillness !== null && m.stillness !== undefined) rows.push(metric("Stillness", pct(m.stillness)));
  fill("metrics", rows);
}

async function startNext(step, button) {
  button.disabled = true;
  try {
    await api("/api/session", { method: "POST", body: { pattern_id: step.pattern_id, minutes: step.minutes } });
    location.assign("/live");
  } catch (err) {
    button.disabled = false;
    showError("load-error", err);
  }
}

function showInsights(insights) {
  const sentences = (insights && insights.sentences) || [];
  fill("insights", sentences.length ? sentences.map((s) => h("li", {}, s.text))
    : [h("li", { class: "muted" }, "No insights for this session.")]);
  const step = insights && insights.next_step;
  if (!step) return;
  const parts = [h("p", {}, step.text)];
  if (step.pattern_id) {
    const button = h("button", { type: "button" }, `Start ${step.pattern_name} for ${step.minutes} min`);
    button.addEventListener("click", () => startNext(step, button));
    parts.push(button);
  }
  fill("next-step", parts);
}

function showCharts(s) {
  const timeline = s.timeline || [];
  const minutes = (v) => `${Math.floor(v / 60)}:${String(Math.round(v % 60)).padStart(2, "0")}`;
  const rates = timeline.map((p) => [p.second, p.rate ?? null]);
  if (rates.some((p) => p[1] !== null)) {
    fill("rate-chart", lineChart([{ label: "rate", colour: colour("--primary"), points: rates }], {
      label: `Breathing rate over the session, breaths per minute (median ${bpm(s.metrics?.rate?.median)})`,
      xLabel: "time (min:s)", xFormat: minutes, yMin: 0,
    }));
  }
  const shown = timeline.filter((p) => typeof p.displacement === "number");
  const pattern = s.pattern || s.metrics?.pattern;
  if (shown.length && timeline.length) {
    const values = shown.map((p) => p.displacement);
    const lo = Math.min(...values), span = Math.max(...values) - lo || 1;
    const breath = timeline.map((p) => [p.second, typeof p.displacement === "number" ? (p.displacement - lo) / span : null]);
    const series = [{ label: "your breath", colour: colour("--exhale"), points: breath }];
    if (pattern) {
      const end = timeline[timeline.length - 1].second + 1, guide = [];
      for (let t = 0; t <= end; t += 0.25) guide.push([t, levelAt(pattern, t)]);
      series.unshift({ label: "guide", colour: colour("--primary"), points: guide, dash: "6 4" });
    }
    fill("breath-chart", lineChart(series, {
      label: "Your measured breath (solid) against the guide (dashed), scaled 0 to 1",
      xLabel: "time (min:s)", xFormat: minutes, yMin: 0, yMax: 1,
    }));
  }
}

async function load() {
  let s;
  try {
    s = await api(`/api/sessions/${encodeURIComponent(sessionId)}`);
  } catch (err) {
    showError("load-error", err.status === 404 ? new Error("This session does not exist (it may have been deleted).") : err);
    $("summary").hidden = true;
    return;
  }
  const name = s.pattern_name || s.pattern?.name || s.pattern_id || "a pattern";
  fill("overview", `${name} · ${dateTime(s.started)} · ${duration(s.duration_s ?? s.metrics?.duration_s)} · ${title(s.status)}`);
  showMetrics(s);
  showInsights(s.insights);
  showCharts(s);
  showAchievements("achievements", "mint-status", s.achievements || [], "None in this session.");
  $("summary").setAttribute("aria-busy", "false");
}

$("delete-session").addEventListener("click", async () => {
  if (!confirm("Delete this session and its charts from the device?")) return;
  try {
    await api(`/api/sessions/${encodeURIComponent(sessionId)}`, { method: "DELETE" });
    location.assign("/history");
  } catch (err) {
    showError("delete-error", err);
  }
});

load();
