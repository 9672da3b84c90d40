// History: streaks and totals, charts over weeks, per-pattern stats, the sessions, achievements.
import { api, dateTime, duration, fill, h, pct, showError, title } from "./api.js";
import { showAchievements } from "./achievements.js";
import { barChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const PAGE = 20;
let offset = 0;

function metric(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

const days = (n) => `${n ?? 0} day${n === 1 ? "" : "s"}`;
const num = (v) => (v === null || v === undefined ? 0 : Number(v));

function showSummary(hist) {
  const streaks = hist.streaks || {};
  const totals = hist.totals || {};
  fill("totals",
    metric("Current streak", days(streaks.current)),
    metric("Longest streak", days(streaks.longest)),
    metric("Sessions", String(totals.sessions ?? 0)),
    metric("Minutes", String(Math.round(num(totals.minutes)))),
    metric("Practice days", String(totals.practice_days ?? 0)));
  $("totals").setAttribute("aria-busy", "false");

  const weeks = hist.weeks || [];
  const label = (w) => {
    const d = new Date(`${w.week_start}T12:00:00`); // a local date: noon keeps the day
    return Number.isNaN(d.getTime()) ? String(w.week_start) : d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
  };
  if (weeks.length) {
    fill("weeks-minutes", barChart(weeks.map((w) => ({ label: label(w), value: num(w.minutes) })), {
      label: `Minutes practised per week, ${weeks.length} weeks`,
    }));
    const has = (key) => weeks.some((w) => w[key] !== null && w[key] !== undefined);
    if (has("median_adherence")) {
      fill("weeks-adherence", barChart(weeks.map((w) => ({ label: label(w), value: 100 * num(w.median_adherence) })), {
        label: "Median adherence per week, in percent", yFormat: (v) => `${Math.round(v)} %`,
      }));
    }
    if (has("median_rate_bpm")) {
      fill("weeks-rate", barChart(weeks.map((w) => ({ label: label(w), value: num(w.median_rate_bpm) })), {
        label: "Median breathing rate per week, breaths per minute",
      }));
    }
  }

  const perPattern = hist.patterns || [];
  if (perPattern.length) {
    fill("pattern-stats", h("table", {},
      h("caption", { class: "visually-hidden" }, "Sessions, minutes and median adherence per pattern"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Pattern"), h("th", { scope: "col" }, "Sessions"),
        h("th", { scope: "col" }, "Minutes"), h("th", { scope: "col" }, "Adherence"))),
      h("tbody", {}, perPattern.map((p) => h("tr", {},
        h("th", { scope: "row" }, p.name || p.pattern_key),
        h("td", {}, String(p.sessions)), h("td", {}, String(Math.round(num(p.minutes)))),
        h("td", {}, pct(p.median_adherence)))))));
  }
}

function sessionItem(s) {
  const name = s.pattern_name || s.pattern_id || "a deleted pattern";
  return h("li", { dataset: { session: s.id } },
    h("a", { href: `/sessions/${encodeURIComponent(s.id)}` }, `${name} · ${dateTime(s.started)}`),
    h("div", { class: "muted" },
      `${duration(s.duration_s)} · ${title(s.status)} · adherence ${pct(s.metrics && s.metrics.adherence)}`));
}

async function loadSessions() {
  const list = $("sessions");
  try {
    const page = await api(`/api/sessions?limit=${PAGE}&offset=${offset}`);
    if (offset === 0) list.replaceChildren();
    list.append(...page.sessions.map(sessionItem));
    if (!list.children.length) list.append(h("li", { class: "muted" }, "No sessions yet: start one on the Start page."));
    offset += page.sessions.length;
    $("more").hidden = page.sessions.length < PAGE;
  } catch (err) {
    showError("load-error", err);
  }
  list.setAttribute("aria-busy", "false");
}

async function load() {
  const sessions = loadSessions();
  try {
    showSummary(await api("/api/history"));
  } catch (err) {
    showError("load-error", err);
  }
  try {
    const { achievements } = await api("/api/achievements");
    showAchievements("achievements", "mint-status", achievements, "None yet: they come with practice.");
  } catch (err) {
    fill("achievements", h("li", { class: "muted" }, err.message));
  }
  await sessions;
}

$("more").addEventListener("click", loadSessions);
load();
