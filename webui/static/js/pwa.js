// Service worker registration, and forgetting saved personal data once logged out.
const tag = document.querySelector("script[data-sw]");
export const API_CACHE = "breathe-api";

if ("serviceWorker" in navigator && tag) {
  if (tag.dataset.loggedIn === "yes") {
    navigator.serviceWorker.register(tag.dataset.sw, { scope: "/" }).catch((err) => {
      console.warn("service worker not registered:", err);
    });
  } else if ("caches" in window) {
    // The login page: whatever the last person looked at offline must not stay on this phone.
    caches.delete(API_CACHE);
  }
}
