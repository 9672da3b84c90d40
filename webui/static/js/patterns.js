// Patterns: the list (built-in ones read only), and a form to create or edit custom ones.
// The API validates; its {field, message} is shown next to that field.
import { api, ApiError, fill, h, timing } from "./api.js";
import { patternShape } from "./charts.js";

const $ = (id) => document.getElementById(id);
const form = $("pattern-form");
const PHASES = ["inhale", "hold_in", "exhale", "hold_out"];
const FIELDS = ["name", "description", ...PHASES, "benefits", "cycle"];

function clearErrors() {
  for (const field of [...FIELDS, "form"]) {
    const box = $(`${field}-error`);
    box.hidden = true;
    box.textContent = "";
    const input = $(field);
    if (input) input.removeAttribute("aria-invalid");
  }
}

/** Which of our inputs an API field path means: "inhale", "benefits.1", "phases.0.seconds". */
function fieldFor(path) {
  if (!path) return "form";
  const parts = String(path).split(".");
  if (parts[0] === "phases" && /^\d+$/.test(parts[1] || "")) return PHASES[Number(parts[1])] || "cycle";
  if (FIELDS.includes(parts[0])) return parts[0];
  return "form";
}

/** Each problem next to its field; focus goes to the first field at fault. */
function showFieldErrors(problems) {
  let focused = false;
  for (const problem of problems) {
    const field = fieldFor(problem.field);
    const box = $(`${field}-error`);
    box.textContent = box.textContent ? `${box.textContent} ${problem.message}` : problem.message;
    box.hidden = false;
    const input = $(field);
    if (input) { // the input's description now includes the message; focus reads it out
      input.setAttribute("aria-invalid", "true");
      if (!focused) input.focus();
      focused = true;
    }
  }
}

function values() {
  const body = { name: $("name").value, description: $("description").value };
  for (const phase of PHASES) {
    const raw = $(phase).value.trim();
    body[phase] = raw === "" ? null : Number(raw);
  }
  body.benefits = $("benefits").value.split("\n").map((s) => s.trim()).filter(Boolean);
  return body;
}

function preview() {
  const v = values();
  if (PHASES.some((p) => !(v[p] >= 0))) { fill("preview"); return; }
  fill("preview", patternShape(v, `Preview: breathe in ${v.inhale} s, hold ${v.hold_in} s, breathe out ${v.exhale} s, hold ${v.hold_out} s`));
}

function editing(p) {
  $("pattern-id").value = p ? p.id : "";
  $("form-heading").textContent = p ? `Edit “${p.name}”` : "New pattern";
  $("cancel").hidden = !p;
  $("name").value = p ? p.name : "";
  $("description").value = p ? p.description || "" : "";
  $("benefits").value = p ? (p.benefits || []).join("\n") : "";
  const defaults = { inhale: 4, hold_in: 0, exhale: 6, hold_out: 0 };
  for (const phase of PHASES) $(phase).value = p ? p[phase] : defaults[phase];
  clearErrors();
  preview();
}

async function edit(id) {
  try {
    editing(await api(`/api/patterns/${encodeURIComponent(id)}`));
    $("name").focus();
  } catch (err) {
    fill("list-status", err.message);
  }
}

async function remove(p) {
  if (!confirm(`Delete the pattern “${p.name}”? Sessions done with it stay in your history.`)) return;
  try {
    await api(`/api/patterns/${encodeURIComponent(p.id)}`, { method: "DELETE" });
    if ($("pattern-id").value === p.id) editing(null);
    await load();
    fill("list-status", `Deleted “${p.name}”.`);  // only once the list no longer shows it
  } catch (err) {
    fill("list-status", err.message);
  }
}

function item(p) {
  const row = h("li", { dataset: { pattern: p.id } },
    h("strong", {}, p.name), " ",
    h("span", { class: "muted" }, `${timing(p)} s${p.built_in ? " · built in" : ""}`),
    patternShape(p, `${p.name}: breathe in ${p.inhale} s, hold ${p.hold_in} s, breathe out ${p.exhale} s, hold ${p.hold_out} s`));
  if (!p.built_in) {
    row.append(h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", "aria-label": `Edit ${p.name}`, onclick: () => edit(p.id) }, "Edit"),
      h("button", { type: "button", class: "danger", "aria-label": `Delete ${p.name}`, onclick: () => remove(p) }, "Delete")));
  }
  return row;
}

async function load() {
  const list = $("pattern-list");
  try {
    const { patterns } = await api("/api/patterns");
    const custom = patterns.filter((p) => !p.built_in), builtIn = patterns.filter((p) => p.built_in);
    fill(list, [...custom, ...builtIn].map(item));
  } catch (err) {
    fill(list, h("li", { class: "error" }, err.message));
  }
  list.setAttribute("aria-busy", "false");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const id = $("pattern-id").value;
  const body = values();
  for (const phase of PHASES) {
    if (body[phase] === null || Number.isNaN(body[phase])) {
      showFieldErrors([{ field: phase, message: "Enter a number of seconds." }]);
      return;
    }
  }
  $("save").disabled = true;
  try {
    const saved = await api(id ? `/api/patterns/${encodeURIComponent(id)}` : "/api/patterns", { method: id ? "PUT" : "POST", body });
    editing(null);
    await load();
    fill("list-status", `Saved “${saved.name || body.name}”.`);  // only once the list shows it
  } catch (err) {
    showFieldErrors(err instanceof ApiError ? err.problems : [{ field: null, message: String(err) }]);
  } finally {
    $("save").disabled = false;
  }
});

$("cancel").addEventListener("click", () => editing(null));
for (const phase of PHASES) $(phase).addEventListener("input", preview);
preview();
load();
