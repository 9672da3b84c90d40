// Settings: profile and wallet, privacy, export, device status, deleting data and account.
import { api, ApiError, duration, fill, h, showError } from "./api.js";

const $ = (id) => document.getElementById(id);

function clear(form, fields) {
  for (const field of fields) {
    const box = $(`${field}-error`);
    if (box) { box.hidden = true; box.textContent = ""; }
    const input = $(field);
    if (input) input.removeAttribute("aria-invalid");
  }
}

/** Each of the API's {field, message} next to that field, else under the form. */
function fieldError(err, formErrorId, prefix = "") {
  let focused = false;
  for (const problem of err.problems || [err]) {
    const name = problem.field ? String(problem.field).split(".").pop() : null;
    const input = name && $(prefix + name);
    const box = input ? $(`${prefix + name}-error`) : $(formErrorId);
    box.textContent = box.textContent ? `${box.textContent} ${problem.message}` : problem.message;
    box.hidden = false;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      if (!focused) input.focus();
      focused = true;
    }
  }
}

function flash(id, text) {
  const node = $(id);
  node.textContent = text;
  setTimeout(() => { if (node.textContent === text) node.textContent = ""; }, 4000);
}

// -- profile ------------------------------------------------------------------------------------

async function loadProfile() {
  const profile = await api("/api/profile");
  $("display_name").value = profile.display_name || "";
  $("wallet_address").value = profile.wallet_address || "";
}

$("profile-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("profile-status").textContent = "";  // a failed save must not sit beside an old "saved"
  clear(event.target, ["display_name", "wallet_address", "profile-form"]);
  const wallet = $("wallet_address").value.trim();
  try {
    await api("/api/profile", { method: "PUT", body: {
      display_name: $("display_name").value, wallet_address: wallet === "" ? null : wallet,
    } });
    flash("profile-status", "Profile saved.");
  } catch (err) {
    fieldError(err, "profile-form-error");
  }
});

// -- password -----------------------------------------------------------------------------------

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("password-status").textContent = "";
  clear(event.target, ["pw-current_password", "pw-new_password", "pw-confirm", "password-form"]);
  const current = $("pw-current_password").value;
  const fresh = $("pw-new_password").value;
  if (!current) {
    fieldError({ field: "current_password", message: "Enter your current password." }, "password-form-error", "pw-");
    return;
  }
  if (fresh !== $("pw-confirm").value) {
    fieldError({ field: "confirm", message: "The two new passwords differ." }, "password-form-error", "pw-");
    return;
  }
  try {
    const done = await api("/api/account/password", { method: "POST", body: {
      current_password: current, new_password: fresh,
    } });
    event.target.reset();
    flash("password-status", done.message);
  } catch (err) {
    fieldError(err, "password-form-error", "pw-");
  }
});

// -- privacy ------------------------------------------------------------------------------------

async function loadSettings() {
  const settings = await api("/api/settings");
  const privacy = settings.privacy || {};
  for (const radio of document.querySelectorAll("input[name=retention]")) {
    radio.checked = radio.value === privacy.retention;
  }
  $("share_metrics").checked = Boolean(privacy.share_metrics);
  $("allow_analytics").checked = Boolean(privacy.allow_analytics);
}

$("privacy-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("privacy-status").textContent = "";
  clear(event.target, ["privacy-form"]);
  const retention = document.querySelector("input[name=retention]:checked");
  try {
    await api("/api/settings", { method: "PUT", body: { privacy: {
      retention: retention ? retention.value : undefined,
      share_metrics: $("share_metrics").checked,
      allow_analytics: $("allow_analytics").checked,
    } } });
    flash("privacy-status", "Privacy choices saved.");
  } catch (err) {
    fieldError(err, "privacy-form-error");
  }
});

// -- device status ------------------------------------------------------------------------------

function metric(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value ?? "—"));
}

async function loadStatus() {
  const box = $("device-status");
  try {
    const s = await api("/api/stats");
    const cam = s.camera || {};
    const mqtt = s.mqtt || {};
    const rows = [
      metric("Camera", cam.state ? `${cam.state}${cam.fps ? `, ${cam.fps} fps` : ""}` : "—"),
    ];
    if (s.gpio) rows.push(metric("LED and motor", typeof s.gpio === "string" ? s.gpio : s.gpio.state || s.gpio.pins));
    const syncOff = mqtt.state === "disabled";
    rows.push(metric("Sync (MQTT)", syncOff ? "Off: nothing leaves this device" : mqtt.state || "—"));
    if (!syncOff) {  // with sync off nothing is waiting: nothing will ever be sent
      rows.push(
        metric("Last sync", mqtt.last_sync ? new Date(mqtt.last_sync).toLocaleString() : "never"),
        metric("Waiting to sync", s.outbox_depth === null || s.outbox_depth === undefined ? "—" : `${s.outbox_depth} message(s)`));
    }
    rows.push(
      metric("Up for", duration(s.uptime_s)),
      metric("Memory", s.memory && s.memory.rss_mb ? `${Math.round(s.memory.rss_mb)} MB` : "—"),
      metric("Temperature", s.cpu_temp_c === null || s.cpu_temp_c === undefined ? "—" : `${s.cpu_temp_c} °C`),
      metric("Version", s.version),
    );
    fill(box, rows);
  } catch (err) {
    fill(box, metric("Status", err.message));
  }
  box.setAttribute("aria-busy", "false");
}

$("refresh-status").addEventListener("click", loadStatus);

// -- delete -------------------------------------------------------------------------------------

$("delete-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clear(event.target, ["delete-password"]);
  const password = $("delete-password").value;
  if (!password) {
    fieldError({ field: "password", message: "Enter your password to confirm." }, "delete-password-error", "delete-");
    return;
  }
  try {
    // the password first: "are you sure?" is only worth asking once it is right
    await api("/api/account/delete", { method: "POST", body: { password, check_only: true } });
    if (!confirm("Delete all your data and your account from this device? This cannot be undone.")) return;
    await api("/api/account/delete", { method: "POST", body: { password } });
  } catch (err) {
    if (err instanceof ApiError) fieldError({ field: "password", message: err.message }, "delete-password-error", "delete-");
    else showError("delete-password-error", err);
    return;
  }
  if ("caches" in window) await Promise.all((await caches.keys()).map((k) => caches.delete(k)));
  const registration = await navigator.serviceWorker?.getRegistration();
  if (registration) await registration.unregister();
  location.assign("/claim");
});

Promise.all([loadProfile(), loadSettings()]).catch((err) => showError("load-error", err));
loadStatus();
