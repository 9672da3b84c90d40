"""systemd's watchdog: READY once the daemon runs, WATCHDOG pings only while it really works.

systemd kills and restarts a ``Type=notify`` service with ``WatchdogSec=`` that stops pinging.
A thread that pings unconditionally would keep a hung appliance alive, so each ping is earned:
frames flow (when there is a camera) and the pacing loop steps. When a check fails the ping is
withheld and ``STATUS=`` says why (``systemctl status breathe`` shows it). A frozen camera is
first restarted in-process by :class:`device.breath.live.LiveBreath`; if that does not bring
frames back before ``WatchdogSec`` runs out, systemd restarts the whole daemon.

Outside systemd (no ``$NOTIFY_SOCKET``) sdnotify does nothing, so the daemon runs the same way
under ``breathe run`` in a terminal.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 10.0  # without WATCHDOG_USEC (not under systemd): status refresh only
MIN_INTERVAL_S = 0.05


class Notifier(Protocol):
    def notify(self, state: str) -> Any: ...


def interval_from_env(env: Mapping[str, str] | None = None,
                      default: float = DEFAULT_INTERVAL_S) -> float:
    """Half of systemd's ``$WATCHDOG_USEC`` (as sd_watchdog_enabled advises), else ``default``.

    ``$WATCHDOG_PID`` naming another process means the variable is not ours.
    """
    env = os.environ if env is None else env
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec or (pid and pid.strip() != str(os.getpid())):
        return default
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a whole number of microseconds; pinging every "
                    "%.0f s", usec, default)
        return default
    if value <= 0:
        return default
    return max(MIN_INTERVAL_S, value / 2e6)


def _checks_of(status_or_checks: Any) -> Callable[[], list[str]]:
    """A DeviceStatus (its ``liveness``) or a callable returning reasons to withhold."""
    liveness = getattr(status_or_checks, "liveness", None)
    if callable(liveness):
        return liveness
    if callable(status_or_checks):
        return status_or_checks
    raise TypeError(f"Watchdog needs a DeviceStatus or a callable returning a list of reasons, "
                    f"got {type(status_or_checks).__name__}")


class Watchdog:
    """Tells systemd the daemon is ready, then pings every ``interval_s`` while checks pass.

    ``status_or_checks``: a :class:`device.status.DeviceStatus` (its ``liveness()``) or any
    callable returning a list of reasons (empty: healthy). ``notifier`` defaults to
    ``sdnotify.SystemdNotifier()``.
    """

    def __init__(
        self,
        status_or_checks: Any,
        notifier: Notifier | None = None,
        *,
        interval_s: float | None = None,
    ) -> None:
        self.check = _checks_of(status_or_checks)
        if notifier is None:
            import sdnotify

            notifier = sdnotify.SystemdNotifier()
        self.notifier = notifier
        self.interval_s = interval_s if interval_s is not None else interval_from_env()
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be above 0 (got {self.interval_s!r})")
        self.pings = 0
        self.withheld = 0
        self.last_reasons: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Watchdog:
        """Send READY=1 and start ticking. Call once every part runs."""
        self.notifier.notify("READY=1\nSTATUS=running")
        log.info("watchdog: ready; checking every %.1f s", self.interval_s)
        self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
        self._thread.start()
        return self

    def tick(self) -> bool:
        """One check: ping when healthy, else withhold and say why. Returns whether it pinged."""
        try:
            reasons = list(self.check())
        except Exception as exc:  # noqa: BLE001 - a broken check must not look healthy
            log.exception("watchdog check failed")
            reasons = [f"watchdog check failed: {exc}"]
        if not reasons:
            if self.last_reasons:
                log.info("watchdog: healthy again")
                self.notifier.notify("STATUS=running")
            self.notifier.notify("WATCHDOG=1")
            self.pings += 1
        else:
            text = "; ".join(reasons)
            if reasons != self.last_reasons:
                log.warning("watchdog: withholding the ping: %s", text)
            self.notifier.notify(f"STATUS=unhealthy: {text}")
            self.withheld += 1
        self.last_reasons = reasons
        return not reasons

    def stop(self, timeout: float = 2.0) -> None:
        """Stop ticking and tell systemd the daemon is shutting down on purpose."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.notifier.notify("STOPPING=1")

    def _loop(self) -> None:
        self.tick()
        while not self._stop.wait(self.interval_s):
            self.tick()
