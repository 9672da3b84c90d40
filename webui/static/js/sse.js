// The live state stream (/api/live): EventSource reconnects by itself after a dropped
// connection; this also covers what it gives up on (an HTTP error while the server restarts)
// and a stream that goes silent, and says which of these is happening.
import { api } from "./api.js";

const STALE_MS = 2500; // states come at 10 Hz: this long without one is worth saying
const DEAD_MS = 20000; // longer than the server's 15 s heartbeat: start a new connection
const MAX_BACKOFF_MS = 10000;

/**
 * onState(state) for each state; onConnection(kind, text) with kind one of
 * "connecting", "live", "waiting", "reconnecting". Returns {close()}.
 */
export function connectLive(onState, onConnection) {
  let source = null, lastMessage = 0, backoff = 1000, retryTimer = null, closed = false;
  let shown = "";

  const say = (kind, text) => {
    if (shown === kind + text) return;
    shown = kind + text;
    onConnection(kind, text);
  };

  function open() {
    if (closed) return;
    source = new EventSource("/api/live");
    source.addEventListener("open", () => {
      backoff = 1000;
      lastMessage = Date.now();
    });
    source.addEventListener("state", (event) => {
      lastMessage = Date.now();
      backoff = 1000;
      say("live", "Live");
      let state;
      try { state = JSON.parse(event.data); } catch { return; }
      onState(state);
    });
    source.addEventListener("error", () => {
      if (closed) return;
      if (source.readyState === EventSource.CLOSED) {
        retryLater(); // an HTTP error: EventSource will not try again
      } else {
        say("reconnecting", "Reconnecting to the device…");
      }
    });
  }

  function retryLater() {
    if (source) source.close();
    source = null;
    say("reconnecting", "Reconnecting to the device…");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(async () => {
      try {
        onState(await api("/api/session")); // also sends a logged-out person to the login page
        open();
      } catch {
        retryLater();
      }
    }, backoff);
    backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
  }

  const watchdog = setInterval(() => {
    if (!source || closed) return;
    const silent = Date.now() - lastMessage;
    if (source.readyState === EventSource.OPEN && silent > DEAD_MS) retryLater();
    else if (source.readyState === EventSource.OPEN && silent > STALE_MS && lastMessage) {
      say("waiting", "Waiting for the device: no update for a few seconds…");
    }
  }, 1000);

  say("connecting", "Connecting to the device…");
  open();
  return {
    close() {
      closed = true;
      clearInterval(watchdog);
      clearTimeout(retryTimer);
      if (source) source.close();
    },
  };
}
