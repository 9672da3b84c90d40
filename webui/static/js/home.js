// Home: choose a pattern (each drawn as its shape) and a duration, then start a session.
import { api, ApiError, fill, h, showError, timing } from "./api.js";
import { patternShape } from "./charts.js";

const list = document.getElementById("patterns");
const minutes = document.getElementById("minutes");
const form = document.getElementById("start-form");
const errorBox = document.getElementById("start-error");
const active = document.getElementById("active");

function option(p, checked) {
  const id = `pattern-${p.id}`;
  const perMin = p.cycle_s > 0 ? (60 / p.cycle_s).toFixed(1) : "—";
  return h("li", {},
    h("label", { class: "pattern-option", for: id },
      h("input", { type: "radio", name: "pattern", id, value: p.id, checked }),
      h("span", {},
        h("span", { class: "name" }, p.name),
        h("span", { class: "timing" }, ` ${timing(p)} s · ${perMin} breaths/min`)),
      patternShape(p, `${p.name}: breathe in ${p.inhale} s, hold ${p.hold_in} s, ` +
        `breathe out ${p.exhale} s, hold ${p.hold_out} s`)));
}

function chooseMinutes(value) {
  const wanted = String(Number(value));
  if (![...minutes.options].some((o) => o.value === wanted)) {
    minutes.append(h("option", { value: wanted }, `${wanted} min`));
  }
  minutes.value = wanted;
}

async function showActive() {
  try {
    const state = await api("/api/session");
    if (state.status === "running" || state.status === "paused") {
      fill(active, `A session is ${state.status}. `, h("a", { href: "/live" }, "Open the live view"));
      active.hidden = false;
    }
  } catch { /* nothing running, or the device is offline: the form still shows */ }
}

async function load() {
  let defaults = {};
  try {
    defaults = (await api("/api/settings")) || {};
  } catch { /* defaults are optional */ }
  try {
    const { patterns } = await api("/api/patterns");
    const chosen = patterns.some((p) => p.id === defaults.default_pattern)
      ? defaults.default_pattern : patterns[0]?.id;
    fill(list, patterns.map((p) => option(p, p.id === chosen)));
  } catch (err) {
    fill(list, h("li", { class: "error" }, err.message));
  }
  list.setAttribute("aria-busy", "false");
  if (defaults.default_minutes) chooseMinutes(defaults.default_minutes);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const picked = form.querySelector("input[name=pattern]:checked");
  if (!picked) {
    showError(errorBox, new Error("Choose a pattern first."));
    return;
  }
  const button = document.getElementById("start");
  button.disabled = true;
  try {
    await api("/api/session", { method: "POST", body: { pattern_id: picked.value, minutes: Number(minutes.value) } });
    location.assign("/live");
  } catch (err) {
    button.disabled = false;
    if (err instanceof ApiError && err.status === 409) {
      showError(errorBox, new Error("A session is already running: open the live view to pause or stop it."));
      showActive();
    } else {
      showError(errorBox, err);
    }
  }
});

load();
showActive();
