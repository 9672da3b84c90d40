"""The appliance daemon behind ``breathe run``: every part of the device, running together.

One :class:`Daemon` owns the threads: the session engine's loop (pacing, measuring, the
button), the web app on ``web.port``, the MQTT sync client when ``[mqtt] enabled``, the
systemd watchdog, and a daily retention pass. Parts that cannot start say why in ``notes`` and
the rest goes on (no camera: pacing only; no broker: sessions wait in the outbox). Stopping
keeps a session in progress as ``interrupted`` and turns the LED and motor off.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device.clock import Clock, MonotonicClock
from device.session.appliance import Appliance, build_appliance, session_outcome
from device.session.engine import STEP_HZ
from device.session.live_state import ACTIVE, LiveState
from device.store import db_path_for, open_db

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 24 * 3600.0
FINAL = ("completed", "stopped", "interrupted")


class Daemon:
    """Builds the appliance from ``settings`` and runs its parts until :meth:`close`."""

    def __init__(
        self,
        settings: Any,
        data_dir: Path,
        *,
        demo: bool = False,
        camera: bool = True,
        web: bool = True,
        sync: bool = True,
        host: str | None = None,
        port: int | None = None,
        pattern_id: str = "coherent",
        minutes: float = 10.0,
        clock: Clock | None = None,
        on_state: Callable[[LiveState], None] | None = None,
    ) -> None:
        from device.sync.fleet_config import with_overrides

        self.data_dir = Path(data_dir)
        self.db_path = db_path_for(self.data_dir)
        # what the fleet set over MQTT (stored, validated) on top of the TOML config
        self.settings = with_overrides(settings, self.db_path)
        self.demo, self.camera, self.web, self.sync_wanted = demo, camera, web, sync
        self.host = host or settings.web.host
        self.port = settings.web.port if port is None else port
        self.pattern_id, self.minutes = pattern_id, minutes
        self.clock = clock or MonotonicClock()
        self.on_state = on_state
        self.started_at = time.monotonic()  # DeviceStatus reads monotonic seconds
        self.notes: list[str] = []
        self.appliance: Appliance | None = None
        self.status: Any = None
        self.sync: Any = None
        self.watchdog: Any = None
        self.server: Any = None
        self.redirect_server: Any = None
        self.redirect_port: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- start ------------------------------------------------------------------------------

    def start(self) -> Daemon:
        """Start every part; raises (after undoing what started) only for bad input such as
        a GPIO pin in use or a web port taken."""
        try:
            self._start_appliance()
            self.status = self._make_status()
            if self.sync_wanted and self.settings.mqtt.enabled:
                self._start_sync()
            elif self.sync_wanted:
                self.notes.append("sync: off ([mqtt] enabled = false); sessions stay on this "
                                  "device")
            if self.web:
                self._start_web()
            self._thread("sessions", self._watch_sessions)
            self._thread("retention", self._retention_loop)
            self._start_watchdog()
        except BaseException:
            self.close()
            raise
        return self

    def _thread(self, name: str, target: Callable[[], Any]) -> None:
        thread = threading.Thread(target=target, name=f"breathe-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_appliance(self) -> None:
        from device.store.patterns_repo import get_pattern

        db = open_db(self.db_path)
        try:
            pattern = get_pattern(db, self.pattern_id).pattern  # NotFound lists the valid ids
        finally:
            db.close()
        self.appliance = build_appliance(
            self.settings, self.db_path, pattern=pattern, pattern_id=self.pattern_id,
            minutes=self.minutes, camera=self.camera, demo=self.demo, clock=self.clock)
        self.notes.extend(self.appliance.notes)
        engine = self.appliance.engine
        hz = (max(STEP_HZ, self.settings.pacing.led_update_hz)
              if self.appliance.outputs is not None else STEP_HZ)
        self._thread("engine", lambda: engine.run_forever(self._stop, hz=hz))

    def _make_status(self) -> Any:
        from device.status import DeviceStatus, package_version

        return DeviceStatus(self.data_dir, appliance=self.appliance, sync=None,
                            started_at=self.started_at, version=package_version(),
                            camera_expected=self.camera)

    def _start_sync(self) -> None:
        from device.sync.client import SyncClient

        controls = DaemonControls(self)
        self.sync = SyncClient(self.settings, self.db_path, controls=controls,
                               status=self.status)
        if self.status is not None:
            self.status.sync = self.sync
        self.sync.start()
        mqtt = self.settings.mqtt
        self.notes.append(f"sync: MQTT to {mqtt.host}:{mqtt.port}"
                          f"{' (TLS)' if mqtt.tls else ''} as {self.settings.device.id}")

    def _start_web(self) -> None:
        from werkzeug.serving import make_server

        from webui import create_app

        app = create_app(self.web_config())
        web = self.settings.web
        ssl_context = (str(web.tls_cert), str(web.tls_key)) if web.tls_cert else None
        try:
            self.server = make_server(self.host, self.port, app, threaded=True,
                                      ssl_context=ssl_context)
        except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
            from common.errors import BadInput

            why = exc if isinstance(exc, OSError) else "address in use or not available"
            raise BadInput(f"web.port: cannot listen on {self.host}:{self.port} ({why}); "
                           "choose another port with --port or web.port") from None
        self.port = self.server.server_port  # port 0 asks for a free one
        app.config["WEB_PORT"] = self.port
        self._thread("web", self.server.serve_forever)
        if web.tls_cert and web.redirect_port:
            self._start_redirect(app, web.redirect_port)
        self.notes.extend(self.address_notes())

    def _start_redirect(self, app: Any, port: int) -> None:
        """Plain http on ``port``: /trust and the CA certificate, everything else to https."""
        from werkzeug.serving import make_server

        from webui.trust import HttpsRedirect

        try:
            self.redirect_server = make_server(self.host, port, HttpsRedirect(app, self.port),
                                               threaded=True)
        except (OSError, SystemExit) as exc:
            from common.errors import BadInput

            why = exc if isinstance(exc, OSError) else "address in use or not available"
            raise BadInput(f"web.redirect_port: cannot listen on {self.host}:{port} ({why}); "
                           "choose another port or leave it empty") from None
        self.redirect_port = self.redirect_server.server_port
        self._thread("web-redirect", self.redirect_server.serve_forever)

    def address_notes(self) -> list[str]:
        """One line per address a phone can open (every LAN address, not just 127.0.0.1)."""
        from webui.lan import web_urls

        scheme = "https" if self.settings.web.tls_cert else "http"
        notes = [f"web app: {url}" for url in web_urls(scheme, self.host, self.port)]
        if self.redirect_server is not None:
            first = web_urls("http", self.host, self.redirect_port)[0]
            notes.append(f"web app: http on port {self.redirect_port} leads to https; a new "
                         f"phone first opens {first}trust to trust this device")
        return notes

    def web_config(self) -> dict[str, Any]:
        """What ``create_app`` needs from the device settings (``webui.config_from_settings``),
        with this daemon's data dir, address and running parts."""
        from webui import config_from_settings

        return {
            **config_from_settings(self.settings),
            "DATA_DIR": self.data_dir,
            "WEB_HOST": self.host,
            "WEB_PORT": self.port,
            "APPLIANCE": self.appliance,
            "STATUS": self.status,
            "SYNC": self.sync,
            "SHUTDOWN": self._stop,  # ends open live streams when the daemon stops
        }

    def _start_watchdog(self) -> None:
        from device.watchdog import Watchdog

        self.watchdog = Watchdog(self.status).start()  # READY=1 now that every part runs

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.web.tls_cert else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{scheme}://{host}:{self.port}/"

    # -- running ----------------------------------------------------------------------------

    def _watch_sessions(self) -> None:
        """Award achievements when a session ends (however it ended), and feed ``on_state``."""
        assert self.appliance is not None
        engine = self.appliance.engine
        updates = engine.subscribe()
        awarded: str | None = None  # one session at a time: the last one is all to remember
        try:
            while True:
                try:
                    state = updates.get(timeout=0.2)
                except queue.Empty:
                    if self._stop.is_set():
                        return  # only once drained: the last session's end is awarded too
                    continue
                if self.on_state is not None and state.status in ACTIVE + FINAL:
                    self.on_state(state)
                sid = state.session_id
                if state.status in FINAL and sid and sid != awarded:
                    awarded = sid
                    self._award(sid)
        finally:
            engine.unsubscribe(updates)

    def _award(self, session_id: str) -> None:
        try:
            outcome = session_outcome(self.db_path, session_id, award=True)
        except Exception:  # noqa: BLE001 - a failed award must not stop the device
            log.exception("session %s: could not work out its achievements", session_id)
            return
        for achievement in outcome.achievements:
            log.info("achievement earned: %s", achievement.kind)

    def _retention_loop(self) -> None:
        """Delete sessions older than the owner's retention, at start and then daily."""
        while True:
            self.apply_retention()
            if self._stop.wait(RETENTION_EVERY_S):
                return

    def apply_retention(self) -> int:
        try:
            from device.store.retention import apply_retention
        except ImportError:  # pragma: no cover - lands with the web app issue
            return 0
        from device.privacy import effective_privacy

        db = open_db(self.db_path)
        try:
            prefs = effective_privacy(self.settings, db)
            removed = apply_retention(db, prefs.retention, datetime.now(UTC))
        except Exception:  # noqa: BLE001 - retention is retried tomorrow; the device goes on
            log.exception("retention pass failed")
            return 0
        finally:
            db.close()
        if removed:
            log.info("retention (%s): deleted %d old session(s)", prefs.retention, removed)
        return removed

    @property
    def stop_event(self) -> threading.Event:
        """Set it (a signal handler does) and :meth:`wait` returns."""
        return self._stop

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    def start_session(self, pattern_id: str, minutes: float) -> dict[str, Any]:
        """Begin a session now, as the button or the web app would."""
        return DaemonControls(self).start_session(pattern_id, minutes)

    # -- stop -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every part in order; a session in progress ends as ``stopped`` (a crash
        would leave it ``interrupted``)."""
        if self.appliance is not None and self.appliance.engine.status in ACTIVE:
            try:
                self.appliance.engine.stop()
            except Exception:  # noqa: BLE001 - close() keeps it as interrupted instead
                log.exception("could not stop the session in progress")
        self._stop.set()
        for part, stop in ((self.watchdog, "stop"), (self.server, "shutdown"),
                           (self.redirect_server, "shutdown"), (self.sync, "stop")):
            if part is not None:
                try:
                    getattr(part, stop)()
                except Exception:  # noqa: BLE001 - stop the rest regardless
                    log.exception("stopping %s failed", type(part).__name__)
        for thread in self._threads:
            thread.join(timeout=5)
        if self.appliance is not None:
            self.appliance.close()
            self.appliance = None


class DaemonControls:
    """What the fleet may do to this device over MQTT (``device.sync`` calls these)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def _engine(self) -> Any:
        assert self.daemon.appliance is not None
        return self.daemon.appliance.engine

    def start_session(self, pattern_id: str, minutes: float) -> dict[str, Any]:
        from device.store.patterns_repo import get_pattern

        db = open_db(self.daemon.db_path)
        try:
            pattern = get_pattern(db, pattern_id).pattern
        finally:
            db.close()
        state = self._engine().start(pattern_id, minutes)
        assert self.daemon.appliance is not None
        self.daemon.appliance.follow(pattern)
        return state.to_dict()

    def stop_session(self) -> dict[str, Any]:
        return self._engine().stop().to_dict()

    def apply_config(self, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Nothing is swapped under a running appliance: the sync client has validated and
        stored ``changes``; they take effect at the next start (the reply says so)."""
        return {}, {}

    def reboot(self) -> None:
        import subprocess

        subprocess.run(["systemctl", "reboot"], check=True)
