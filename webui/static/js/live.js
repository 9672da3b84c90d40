// Live session: the guide (in step with the device's light), the measured breath beside it,
// measured vs target phase, rate, reading quality, adherence, and pause / resume / stop.
import { api, bpm, clock, fill, PHASE_NAMES, PHASE_WORDS, pct, showError } from "./api.js";
import { guideLevel } from "./charts.js";
import { connectLive } from "./sse.js";

const $ = (id) => document.getElementById(id);
const WINDOW_S = 30;
const CAPACITY = 600; // 60 s at 10 Hz: a fixed ring, so a long session never grows memory
const PHASE_CODE = { inhale: 1, hold_in: 2, exhale: 3, hold_out: 2, hold: 2 };

const ring = {
  t: new Float64Array(CAPACITY), level: new Float32Array(CAPACITY),
  breath: new Float32Array(CAPACITY), target: new Uint8Array(CAPACITY),
  measured: new Uint8Array(CAPACITY), signal: new Uint8Array(CAPACITY), start: 0, size: 0,
  session: null, derived: 0,
};

let last = null; // the newest state
let receivedAt = 0; // performance.now() when it came
let pattern = null; // the session's pattern (phase lengths, for a smooth guide between states)
let patternFor = null;
let stopping = false;
let dirty = true;
let lastAnnounced = "";

/**
 * The breath to draw: the device's cleaned breathing signal when the state carries it, else
 * a level built from the measured phases (rising while you breathe in, falling while you
 * breathe out, at the pattern's pace); NaN when there is no reading.
 */
function breathValue(s, dt) {
  if (typeof s.displacement === "number") return [s.displacement, 1];
  if (!s.measured_phase) return [NaN, 0];
  const len = Number(pattern && pattern[s.measured_phase === "inhale" ? "inhale" : "exhale"]) || 4;
  if (s.measured_phase === "inhale") ring.derived = Math.min(1, ring.derived + dt / len);
  else if (s.measured_phase === "exhale") ring.derived = Math.max(0, ring.derived - dt / len);
  return [ring.derived, 0];
}

function push(s) {
  if (ring.session !== s.session_id) {
    ring.start = 0; ring.size = 0; ring.session = s.session_id; ring.derived = s.level;
  }
  const newest = ring.size ? ring.t[(ring.start + ring.size - 1) % CAPACITY] : -Infinity;
  if (s.elapsed <= newest) return; // paused, or a repeat
  const i = (ring.start + ring.size) % CAPACITY;
  if (ring.size === CAPACITY) ring.start = (ring.start + 1) % CAPACITY; else ring.size++;
  ring.t[i] = s.elapsed;
  ring.level[i] = s.level;
  [ring.breath[i], ring.signal[i]] = breathValue(s, Number.isFinite(newest) ? s.elapsed - newest : 0);
  ring.target[i] = PHASE_CODE[s.target_phase] || 0;
  ring.measured[i] = PHASE_CODE[s.measured_phase] || 0;
  dirty = true;
}

function set(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

function show(section) {
  for (const id of ["idle", "finished", "session"]) $(id).hidden = id !== section;
}

async function loadPattern(id) {
  if (!id || patternFor === id) return;
  patternFor = id;
  try {
    const { patterns } = await api("/api/patterns");
    pattern = patterns.find((p) => p.id === id) || null;
    if (pattern) set("pattern-name", `${pattern.name}`);
  } catch { pattern = null; }
}

function measuredWords(s) {
  if (s.measured_phase) return PHASE_WORDS[s.measured_phase] || s.measured_phase;
  return "No reading";
}

function noReadingText(s) {
  if (s.mode === "measuring" && s.measured_phase) return null;
  if (!s.reason || s.reason === "no person in view") return "No reading — move into view of the camera.";
  if (s.reason === "no camera") return "No camera: the device paces you without measuring.";
  return `No reading — ${s.reason}.`;
}

function onState(s) {
  last = s;
  receivedAt = performance.now();
  if (s.status === "idle") {
    if (ring.session) showInterrupted(ring.session);
    else show("idle");
    return;
  }
  if (s.status !== "running" && s.status !== "paused") {
    if (stopping && s.session_id) {
      location.assign(`/sessions/${encodeURIComponent(s.session_id)}`);
      return;
    }
    set("finished-text", `The last session ${s.status === "completed" ? "is complete" : `was ${s.status}`} after ${clock(s.elapsed)}.`);
    if (s.session_id) $("summary-link").href = `/sessions/${encodeURIComponent(s.session_id)}`;
    show("finished");
    return;
  }
  show("session");
  loadPattern(s.pattern_id);
  push(s);
  const paused = s.status === "paused";
  $("pause").hidden = paused;
  $("resume").hidden = !paused;
  set("target-phase", paused ? "Paused" : PHASE_WORDS[s.target_phase] || "—");
  set("measured-phase", measuredWords(s));
  set("rate", bpm(s.rate));
  set("quality", s.quality === null || s.quality === undefined ? "—" : pct(s.quality));
  set("adherence", pct(s.adherence));
  set("time", `${clock(s.elapsed)} / ${clock(s.elapsed + s.remaining)}`);
  const problem = noReadingText(s);
  $("no-reading").hidden = !problem;
  if (problem) set("no-reading", problem);
  // screen readers hear phase changes and whole-number rates, not ten updates a second
  const rate = s.rate === null || s.rate === undefined ? "no rate" : `${Math.round(s.rate)} breaths a minute`;
  const words = paused ? "Paused." :
    `Guide: ${PHASE_NAMES[s.target_phase] || "none"}. You: ${s.measured_phase ? PHASE_NAMES[s.measured_phase] : "no reading"}. ${rate}.`;
  if (words !== lastAnnounced) {
    lastAnnounced = words;
    $("announce").textContent = words;
  }
}

/** The device came back with nothing running while this page showed a session: say what
 * became of it (a restart keeps it as interrupted, with what was measured up to then). */
async function showInterrupted(id) {
  try {
    const kept = await api(`/api/sessions/${encodeURIComponent(id)}`);
    if (last && last.status !== "idle") return; // a newer state came meanwhile
    set("finished-text", kept.status === "interrupted"
      ? `The device restarted during the session. It was kept as interrupted after ${clock(kept.duration_s)}, with everything measured until then.`
      : `The last session was ${kept.status} after ${clock(kept.duration_s)}.`);
    $("summary-link").href = `/sessions/${encodeURIComponent(id)}`;
    show("finished");
  } catch {
    show("idle");
  }
}

function onConnection(kind, text) {
  const node = $("connection");
  node.dataset.state = kind;
  node.textContent = text;
  // no news from the device: the guide must not stand still at full size as if it were live
  $("guide").classList.toggle("stale", kind !== "live");
}

// -- drawing ------------------------------------------------------------------------------------

const orb = $("orb");
const words = $("words");
const canvas = $("trace");
const ctx = canvas.getContext("2d");
const css = getComputedStyle(document.documentElement);
const colour = (name) => css.getPropertyValue(name).trim();
const COLOURS = {
  guide: colour("--primary"), breath: colour("--exhale"), line: colour("--line"),
  inhale: colour("--inhale"), hold: colour("--hold"), exhale: colour("--exhale"), none: "#d9dfde",
};
COLOURS.phase = [COLOURS.none, COLOURS.inhale, COLOURS.hold, COLOURS.exhale];
for (const swatch of document.querySelectorAll(".swatch")) {
  swatch.style.background = COLOURS[swatch.dataset.colour];
}

function levelNow(now) {
  const s = last;
  if (!s) return 0;
  const len = pattern && Number(pattern[s.target_phase]);
  if (s.status !== "running" || !len) return s.level;
  const progress = s.progress + (now - receivedAt) / 1000 / len;
  return guideLevel(s.target_phase, Math.min(1, progress));
}

function resize() {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * ratio), hgt = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== w || canvas.height !== hgt) {
    canvas.width = w;
    canvas.height = hgt;
    dirty = true;
  }
}

function drawTrace() {
  resize();
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  if (!ring.size) return;
  const strip = Math.max(6, H * 0.06), plotH = H - 2 * strip - 8;
  const newest = ring.t[(ring.start + ring.size - 1) % CAPACITY];
  // the first 30 s fill the plot from the left; after that it scrolls
  const t0 = Math.max(ring.t[ring.start], newest - WINDOW_S);
  const x = (t) => ((t - t0) / WINDOW_S) * W;
  // the device's signal has arbitrary units: scale it to the window's own range
  let lo = Infinity, hi = -Infinity;
  for (let k = 0; k < ring.size; k++) {
    const i = (ring.start + k) % CAPACITY;
    if (ring.t[i] < t0 || !ring.signal[i] || Number.isNaN(ring.breath[i])) continue;
    lo = Math.min(lo, ring.breath[i]);
    hi = Math.max(hi, ring.breath[i]);
  }
  const span = hi - lo || 1;
  const y = (v) => 4 + (1 - v) * (plotH - 4);
  ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
  for (const key of ["level", "breath"]) {
    ctx.beginPath();
    ctx.strokeStyle = key === "level" ? COLOURS.guide : COLOURS.breath;
    const dpr = window.devicePixelRatio || 1;
    ctx.setLineDash(key === "level" ? [6 * dpr, 4 * dpr] : []);
    let pen = false;
    for (let k = 0; k < ring.size; k++) {
      const i = (ring.start + k) % CAPACITY;
      let v = ring[key][i];
      if (ring.t[i] < t0 || Number.isNaN(v)) { pen = false; continue; }
      if (key === "breath" && ring.signal[i]) v = (v - lo) / span;
      if (pen) ctx.lineTo(x(ring.t[i]), y(v)); else ctx.moveTo(x(ring.t[i]), y(v));
      pen = true;
    }
    ctx.stroke();
  }
  ctx.setLineDash([]);
  // phase strips: guide above, measured below
  for (const [row, key] of [[0, "target"], [1, "measured"]]) {
    const top = plotH + 4 + row * (strip + 2);
    for (let k = 0; k < ring.size; k++) {
      const i = (ring.start + k) % CAPACITY;
      const next = k + 1 < ring.size ? ring.t[(i + 1) % CAPACITY] : newest + 0.1;
      if (next < t0) continue;
      ctx.fillStyle = COLOURS.phase[ring[key][i]];
      ctx.fillRect(x(Math.max(t0, ring.t[i])), top, x(next) - x(Math.max(t0, ring.t[i])) + 1, strip);
    }
  }
}

function frame(now) {
  if (last && (last.status === "running" || last.status === "paused")) {
    const level = levelNow(now);
    orb.style.transform = `scale(${(0.3 + 0.7 * level).toFixed(4)})`;
    orb.dataset.phase = last.target_phase || "";
    const text = last.status === "paused" ? "Paused" : PHASE_WORDS[last.target_phase] || "";
    if (words.textContent !== text) words.textContent = text;
    if (dirty) { drawTrace(); dirty = false; }
  }
  requestAnimationFrame(frame);
}

// -- controls -----------------------------------------------------------------------------------

async function command(name) {
  $("control-error").hidden = true;
  if (name === "stop") stopping = true;
  try {
    onState(await api(`/api/session/${name}`, { method: "POST" }));
    // the pressed button is hidden now: keep the keyboard on its counterpart, not the page top
    if (name === "pause") $("resume").focus();
    if (name === "resume") $("pause").focus();
  } catch (err) {
    stopping = false;
    showError("control-error", err);
  }
}

for (const name of ["pause", "resume", "stop"]) $(name).addEventListener("click", () => command(name));
window.addEventListener("resize", () => { dirty = true; });

connectLive(onState, onConnection);
requestAnimationFrame(frame);
fill($("words"), "");
api("/api/session").then(onState).catch(() => {});
