// Talking to the device's JSON API, and small helpers every page uses.
// User text only ever reaches the page as text nodes (h() below), never as HTML.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `request failed (${status})`);
    this.status = status;
    this.error = body && body.error;
    this.field = body && body.field;
    // validation errors list every problem: {field, message} each
    this.problems = (body && body.errors) || [{ field: this.field, message: this.message }];
  }
}

let csrfToken = null;

async function token() {
  if (!csrfToken) csrfToken = (await api("/api/csrf")).csrf_token;
  return csrfToken;
}

/** JSON from the device; throws ApiError with the API's {error, field, message}. */
export async function api(path, { method = "GET", body, retried = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = await token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, {
      error: "offline",
      message: "The device cannot be reached. Check that it is on and on the same Wi-Fi.",
    });
  }
  if (res.headers.get("X-Breathe-From-Cache")) showOffline(res.headers.get("X-Breathe-Saved"));
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) {
    const to = data.error === "unclaimed" ? "/claim" : "/login?next=" + encodeURIComponent(location.pathname);
    location.assign(to);
  }
  if (res.status === 400 && data.error === "csrf" && !retried) {
    csrfToken = null; // the login changed: fetch a fresh token once
    return api(path, { method, body, retried: true });
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** An element with attributes and children; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the contents of the element with id ``id``. */
export function fill(id, ...children) {
  const node = typeof id === "string" ? document.getElementById(id) : id;
  node.replaceChildren();
  append(node, children);
  return node;
}

export function showError(where, err) {
  const node = typeof where === "string" ? document.getElementById(where) : where;
  fill(node, err.message || String(err));
  node.hidden = false;
}

let offlineShown = false;
function showOffline(saved) {
  if (offlineShown) return;
  offlineShown = true;
  const when = saved ? ` (saved ${dateTime(saved)})` : "";
  const banner = h("p", { class: "banner warn", role: "status", id: "offline-banner" },
    `Offline: showing what this phone saved${when}. Changes need the device.`);
  document.querySelector("main").prepend(banner);
}

// -- formatting -------------------------------------------------------------------------------

export const PHASE_WORDS = {
  inhale: "Breathe in", hold_in: "Hold", exhale: "Breathe out", hold_out: "Hold",
  hold: "Hold",
};
export const PHASE_NAMES = { inhale: "inhale", hold_in: "hold", exhale: "exhale", hold_out: "hold", hold: "hold" };

const NBSP = "\u00a0"; // a number and its unit stay on one line

export function seconds(value) {
  const s = Number(value);
  return `${Math.round(s * 100) / 100}${NBSP}s`;
}

export function duration(totalSeconds) {
  const s = Math.max(0, Math.round(Number(totalSeconds) || 0));
  const m = Math.floor(s / 60);
  return m ? `${m}${NBSP}min ${String(s % 60).padStart(2, "0")}${NBSP}s` : `${s}${NBSP}s`;
}

export function clock(totalSeconds) {
  const s = Math.max(0, Math.floor(Number(totalSeconds) || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function pct(share) {
  return share === null || share === undefined ? "—" : `${Math.round(share * 100)}${NBSP}%`;
}

export function bpm(rate) {
  return rate === null || rate === undefined ? "—" : `${Number(rate).toFixed(1)}${NBSP}/min`;
}

export function dateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? "");
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function timing(p) {
  return [p.inhale, p.hold_in, p.exhale, p.hold_out].map((v) => Number(v).toString()).join("-");
}

export function title(kind) {
  const text = String(kind || "").replace(/[_-]+/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
