// Breathe service worker: the app shell and the history / session data for offline viewing.
//
// Network first for everything (the device is on the same Wi-Fi, so fresh is cheap); when the
// network fails, the last good copy. Never cached: anything but GET, the live stream, the CSRF
// token, exports and the current session state. Logging out or deleting the account drops the
// saved data.
const VERSION = "2"; // 2: phone layouts, the live view's controls under the guide
const SHELL = `breathe-shell-${VERSION}`;
const API = "breathe-api";
const SUMMARY_SHELL = "/sessions/_"; // one shell serves every session's summary offline
const NETWORK_TIMEOUT_MS = 5000;

const SHELL_URLS = [
  "/", "/live", "/history", "/patterns", "/catalog", "/settings", SUMMARY_SHELL,
  "/manifest.webmanifest",
  "/static/css/app.css",
  "/static/js/api.js", "/static/js/charts.js", "/static/js/pwa.js", "/static/js/sse.js",
  "/static/js/achievements.js", "/static/js/home.js", "/static/js/live.js",
  "/static/js/summary.js", "/static/js/history.js", "/static/js/patterns.js",
  "/static/js/settings.js", "/static/js/catalog.js",
  "/static/icons/icon-48.png", "/static/icons/icon-192.png", "/static/icons/icon-512.png",
  "/static/icons/maskable-512.png", "/static/icons/apple-touch-icon.png",
];
// The app's own pages; login, claim and account pages always come from the device.
const PAGES = /^\/(live|history|patterns|catalog|settings|sessions\/[^/]+)?$/;
const NEVER = [/^\/api\/live$/, /^\/api\/csrf$/, /^\/api\/export/, /^\/api\/session(\/|$)/,
  /^\/api\/account/];

function keep(response) {
  // not a redirect to the login page, not an error, not somebody else's
  return response && response.ok && !response.redirected && response.type === "basic";
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    await Promise.all(SHELL_URLS.map(async (url) => {
      try {
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (keep(response)) await cache.put(url, response);
      } catch { /* offline while installing: the page will be cached on its next visit */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("breathe-shell-") && key !== SHELL) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

function withTimeout(promise) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("network timeout")), NETWORK_TIMEOUT_MS);
    promise.then((r) => { clearTimeout(timer); resolve(r); },
      (e) => { clearTimeout(timer); reject(e); });
  });
}

/** A cached response marked so the page can say it is offline (and since when). */
async function fromCache(cacheName, key) {
  const cached = await caches.match(key, { cacheName });
  if (!cached) return null;
  const headers = new Headers(cached.headers);
  headers.set("X-Breathe-From-Cache", "1");
  headers.set("X-Breathe-Saved", cached.headers.get("Date") || "");
  return new Response(await cached.blob(), { status: cached.status, statusText: cached.statusText, headers });
}

async function networkFirst(request, cacheName, fallbackKey) {
  try {
    const response = await withTimeout(fetch(request));
    if (keep(response)) {
      const copy = response.clone();
      const cache = await caches.open(cacheName);
      await cache.put(request, copy);
      if (fallbackKey) await cache.put(fallbackKey, response.clone());
    }
    return response;
  } catch (err) {
    const cached = (await fromCache(cacheName, request)) ||
      (fallbackKey && (await fromCache(cacheName, fallbackKey)));
    if (cached) return cached;
    if (request.mode === "navigate") {
      return new Response("<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>" +
        "<title>Offline · Breathe</title><main><h1>Offline</h1><p>The device cannot be reached and " +
        "this page was not saved on this phone. Reconnect to the device's Wi-Fi and reload.</p></main>",
        { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
    }
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    // leaving: whatever this person looked at must not stay on the phone
    if (url.pathname === "/logout" || url.pathname === "/api/account/delete") {
      event.waitUntil(caches.delete(API));
    }
    return;
  }
  if (url.pathname.startsWith("/api/")) {
    if (NEVER.some((re) => re.test(url.pathname))) return;
    event.respondWith(networkFirst(request, API));
    return;
  }
  if (url.pathname === "/sw.js") return;
  if (request.mode === "navigate" && !PAGES.test(url.pathname)) return;
  const summary = /^\/sessions\/[^/]+$/.test(url.pathname) ? SUMMARY_SHELL : null;
  event.respondWith(networkFirst(request, SHELL, summary));
});
