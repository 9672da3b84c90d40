// The Catalog: browse the fleet's shared patterns (search, category, order), preview each
// pattern's shape, try it for one minute, import it, rate it 1–5 (once: a new rating replaces
// the old); and share your own custom patterns. Text from other devices only ever reaches the
// page as text nodes (h()), never as HTML.
//
// "Try for one minute" imports the pattern first (a session runs a stored pattern) and then
// starts a 1-minute session through POST /api/session, then opens the live page.
import { api, fill, h, seconds, showError, timing } from "./api.js";
import { patternShape } from "./charts.js";

const $ = (id) => document.getElementById(id);
const CATEGORIES = ["stress", "sleep", "energy", "focus"];
const state = { page: 1, pageSize: 10, syncOff: false };
const SYNC_OFF_TEXT = "Sync is turned off on this device, so the shared catalog cannot be " +
  "reached: searching and sharing are not available. Whoever set up the device can turn sync " +
  "on in its configuration.";

function status(text) { fill("catalog-status", text); }

function query() {
  const params = new URLSearchParams({ sort: $("sort").value, page: state.page, page_size: state.pageSize });
  const text = $("text").value.trim();
  if (text) params.set("text", text);
  if ($("category").value) params.set("category", $("category").value);
  return params;
}

async function importListing(item) {
  if (item.imported_pattern_id) return item.imported_pattern_id;
  const done = await api(`/api/catalog/${encodeURIComponent(item.listing_id)}/import`, { method: "POST" });
  item.imported_pattern_id = done.pattern.id;
  return done.pattern.id;
}

function stars(item, line) {
  const group = h("div", { class: "row stars", role: "group", "aria-label": `Rate ${item.pattern.name}` });
  for (let n = 1; n <= 5; n += 1) {
    const pressed = item.my_rating === n;
    group.append(h("button", {
      type: "button", class: pressed ? "" : "secondary", "aria-pressed": pressed ? "true" : "false",
      "aria-label": `${n} star${n > 1 ? "s" : ""}`,
      onclick: async () => {
        try {
          await api(`/api/catalog/${encodeURIComponent(item.listing_id)}/rate`, { method: "POST", body: { stars: n } });
          item.my_rating = n;
          group.replaceWith(stars(item, line));
          fill(line, `You rated it ${n} of 5.`);
        } catch (err) { fill(line, err.message); }
      },
    }, "★".repeat(n)));
  }
  return group;
}

function entry(item) {
  const p = item.pattern;
  const line = h("p", { class: "muted", role: "status" });
  const rating = item.rating === null ? "not rated yet" : `${item.rating.toFixed(1)} of 5 (${item.ratings})`;
  const actions = h("div", { class: "row" });
  if (!item.mine) {
    actions.append(
      h("button", {
        type: "button",
        onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            const id = await importListing(item);
            await api("/api/session", { method: "POST", body: { pattern_id: id, minutes: 1 } });
            location.assign("/live");
          } catch (err) { fill(line, err.message); ev.target.disabled = false; }
        },
      }, "Try for one minute"),
      h("button", {
        type: "button", class: "secondary", disabled: item.imported_pattern_id ? true : null,
        onclick: async (ev) => {
          try {
            await importListing(item);
            ev.target.disabled = true;
            fill(line, "Imported: it is now in your patterns.");
          } catch (err) { fill(line, err.message); }
        },
      }, item.imported_pattern_id ? "Imported" : "Import"),
    );
  }
  return h("li", { class: "card", dataset: { listing: item.listing_id } },
    h("h3", {}, p.name),
    h("p", { class: "muted" }, `by ${item.creator} · ${item.category} · ${timing(p)} (${seconds(item.cycle_s)} a breath)`),
    patternShape(p, `Shape: breathe in ${p.inhale} s, hold ${p.hold_in} s, breathe out ${p.exhale} s, hold ${p.hold_out} s`),
    p.description ? h("p", {}, p.description) : null,
    item.tags.length ? h("p", { class: "muted" }, `Tags: ${item.tags.join(", ")}`) : null,
    h("p", { class: "muted" }, `Imported ${item.imports} times · rating ${rating}`),
    item.mine ? h("p", { class: "muted" }, "Shared by you.") : stars(item, line),
    actions, line);
}

async function browse() {
  const list = $("catalog-list");
  list.setAttribute("aria-busy", "true");
  status("Asking the relay…");
  try {
    const page = await api(`/api/catalog?${query()}`);
    fill(list, ...page.items.map(entry));
    const first = (page.page - 1) * state.pageSize;
    status(page.total ? `${first + 1}–${first + page.items.length} of ${page.total}` : "Nothing found.");
    $("prev").hidden = page.page <= 1;
    $("next").hidden = first + page.items.length >= page.total;
  } catch (err) {
    fill(list);
    status("");
    showError("load-error", err);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

function shareForm(p) {
  const line = h("p", { class: "muted", role: "status" });
  const category = h("select", { "aria-label": `Category of ${p.name}` },
    ...CATEGORIES.map((c) => h("option", { value: c, selected: p.category === c ? true : null }, c)));
  const tags = h("input", { value: p.tags.join(", "), maxlength: 200, "aria-label": `Tags of ${p.name} (comma separated)` });
  const send = async (pub) => {
    try {
      const body = { public: pub };
      if (pub) {
        body.category = category.value;
        body.tags = tags.value.split(",").map((s) => s.trim()).filter(Boolean);
      }
      const saved = await api(`/api/patterns/${encodeURIComponent(p.pattern_id)}/publish`, { method: "PUT", body });
      li.replaceWith(shareForm(saved));
    } catch (err) { fill(line, err.message); }
  };
  const li = h("li", { class: "card" },
    h("h3", {}, p.name),
    p.imported_from ? h("p", { class: "muted" }, "Imported from the catalog: only patterns you made can be shared.") :
      h("div", {},
        h("p", { class: "muted" }, p.public ? "Shared in the catalog." : "Not shared."),
        h("div", { class: "row" }, category, tags),
        h("div", { class: "row" },
          h("button", { type: "button", disabled: state.syncOff ? true : null, onclick: () => send(true) }, p.public ? "Update" : "Share"),
          p.public ? h("button", { type: "button", class: "secondary", disabled: state.syncOff ? true : null, onclick: () => send(false) }, "Stop sharing") : null)),
    line);
  return li;
}

async function mine() {
  const list = $("share-list");
  try {
    const data = await api("/api/catalog/mine");
    if (data.patterns.length) fill(list, ...data.patterns.map(shareForm));
    else fill(list, h("li", { class: "muted" }, "You have no patterns of your own yet: make one on the Patterns page."));
  } catch (err) {
    fill(list);
    showError("share-error", err);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

$("catalog-search").addEventListener("submit", (ev) => { ev.preventDefault(); state.page = 1; browse(); });
$("prev").addEventListener("click", () => { state.page -= 1; browse(); });
$("next").addEventListener("click", () => { state.page += 1; browse(); });
/** With sync off there is no catalog: say so once, and offer nothing that cannot work. */
async function start() {
  try {
    state.syncOff = !(await api("/api/settings")).sync_enabled;
  } catch { /* offline or older device: try the catalog and show its answer */ }
  if (state.syncOff) {
    const banner = $("sync-off");
    fill(banner, SYNC_OFF_TEXT);
    banner.hidden = false;
    for (const control of $("catalog-search").elements) control.disabled = true;
    fill($("catalog-list"));
    $("catalog-list").setAttribute("aria-busy", "false");
  } else {
    browse();
  }
  mine();
}

start();
