"""How the device is doing, for /api/health, /api/stats, MQTT telemetry and the watchdog.

One object reads every part (store, disk, camera, pacing loop, sync) so the three consumers
always agree. Nothing here names a person or a session: health and stats are safe to show
without a login and to send to the fleet.

``health()`` says whether the device can do its job (and why not); ``liveness()`` is the
narrower question the systemd watchdog asks: is the process stuck (frames stopped, pacing loop
stopped)? A full disk degrades health but a restart would not fix it, so it is not liveness.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIN_FREE_BYTES = 50 * 1024 * 1024  # below this, sessions may fail to save on the SD card
STEP_STALE_S = 5.0  # the pacing loop steps at 50 Hz: 5 s without a step means it is stuck
STARTUP_GRACE_S = 10.0  # before the first step, give the loop this long to begin
THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
PROC = Path("/proc")

# camera states (LiveBreath reports the first four; "absent" means no camera at all)
FLOWING, STARTING, FROZEN, FAILED, ABSENT = "flowing", "starting", "frozen", "failed", "absent"


def package_version() -> str:
    """The installed breathe version (``0+unknown`` when run from an uninstalled checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("breathe")
    except PackageNotFoundError:
        return "0+unknown"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cpu_temp_c(path: Path = THERMAL_PATH) -> float | None:
    """SoC temperature in °C from the kernel's thermal zone (millidegrees); None without one."""
    text = _read_text(path)
    try:
        return round(int(text.strip()) / 1000.0, 1) if text else None
    except ValueError:
        return None


def _kib_field(text: str | None, key: str) -> float | None:
    """``key:   1234 kB`` from a /proc status-style file, in MB."""
    for line in (text or "").splitlines():
        if line.startswith(key + ":"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return round(int(parts[1]) / 1024.0, 1)
    return None


def memory_mb(proc: Path = PROC) -> dict[str, float | None]:
    """This process's resident memory and the memory the system still has available."""
    return {
        "rss_mb": _kib_field(_read_text(proc / "self" / "status"), "VmRSS"),
        "available_mb": _kib_field(_read_text(proc / "meminfo"), "MemAvailable"),
    }


class DeviceStatus:
    """Health and stats of the running device.

    ``appliance``: anything with ``.engine`` (a SessionEngine; its ``last_step_at`` is read when
    present) and ``.breath`` (a LiveBreath or None). ``sync``: anything with ``.state``,
    ``.last_sync`` and ``.outbox_depth()``; None when the daemon runs no sync client.
    ``started_at``: ``time.monotonic()`` seconds (or an aware datetime) when the daemon started;
    default: now. ``camera_expected``: False when the camera is off on purpose (no camera is
    then not a problem).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        appliance: Any | None = None,
        sync: Any | None = None,
        started_at: float | datetime | None = None,
        version: str | None = None,
        camera_expected: bool = True,
        thermal_path: Path = THERMAL_PATH,
        proc: Path = PROC,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.appliance = appliance
        self.sync = sync
        self.started_at = time.monotonic() if started_at is None else started_at
        self.version = version or package_version()
        self.camera_expected = camera_expected
        self.thermal_path = thermal_path
        self.proc = proc

    # -- the parts ------------------------------------------------------------------------------

    def uptime_s(self) -> float:
        if isinstance(self.started_at, datetime):
            return max(0.0, (datetime.now(UTC) - self.started_at).total_seconds())
        return max(0.0, time.monotonic() - self.started_at)

    def _breath(self) -> Any | None:
        return getattr(self.appliance, "breath", None)

    def camera(self) -> dict[str, Any]:
        """Camera state, frames/s over the last few seconds, restarts and the reason it stopped."""
        breath = self._breath()
        if breath is None:
            return {"state": ABSENT, "fps": None, "restarts": 0, "since_frame_s": None,
                    "error": None}
        live = breath.status()
        state = getattr(live, "state", None) or (FLOWING if live.running else FAILED)
        since = getattr(live, "since_frame_s", None)
        return {
            "state": state,
            "fps": round(float(live.fps), 1),
            "restarts": int(getattr(live, "restarts", 0)),
            "since_frame_s": None if since is None else round(since, 1),
            "error": live.error,
        }

    def pacing_stalled_s(self) -> float | None:
        """Seconds since the pacing loop last stepped, when that means it is stuck; else None.

        Unknown (an engine without ``last_step_at``, or no appliance) counts as not stuck.
        """
        engine = getattr(self.appliance, "engine", None)
        if engine is None or not hasattr(engine, "last_step_at"):
            return None
        last = engine.last_step_at
        if last is None:
            waited = self.uptime_s()
            return waited if waited > STARTUP_GRACE_S else None
        since = engine.clock.now() - last
        return since if since > STEP_STALE_S else None

    def _store_problem(self) -> str | None:
        from device.store import StoreError, open_db
        from device.store.db import db_path_for

        try:
            db = open_db(db_path_for(self.data_dir))
        except StoreError:
            return "database: cannot open the store"
        try:
            db.execute("SELECT 1").fetchone()
        except Exception:  # noqa: BLE001 - any failure here means the store is unusable
            return "database: cannot read the store"
        finally:
            db.close()
        return None

    def _disk_problem(self) -> str | None:
        try:
            free = shutil.disk_usage(self.data_dir).free
        except OSError:
            return "disk: data dir not readable"
        if free < MIN_FREE_BYTES:
            return (f"disk: only {free // (1024 * 1024)} MB free in the data dir "
                    f"(needs {MIN_FREE_BYTES // (1024 * 1024)} MB)")
        return None

    def _mqtt_state(self) -> str:
        return "disabled" if self.sync is None else str(self.sync.state)

    # -- what the consumers ask -----------------------------------------------------------------

    def liveness(self) -> list[str]:
        """Why the process looks stuck (empty: it is alive). The watchdog pings only when empty.

        Frames must flow when there is a camera; a camera still starting up is given time
        (LiveBreath restarts a frozen one itself first).
        """
        reasons: list[str] = []
        cam = self.camera()
        if cam["state"] == FROZEN:
            reasons.append(f"camera: no frame for {cam['since_frame_s']} s "
                           f"({cam['restarts']} restart(s))")
        elif cam["state"] == FAILED:
            reasons.append(f"camera: stopped ({cam['error'] or 'no reason given'})")
        stalled = self.pacing_stalled_s()
        if stalled is not None:
            reasons.append(f"pacing: loop has not stepped for {stalled:.0f} s")
        return reasons

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded", "reasons": [...]}``: store, disk, camera, pacing loop,
        MQTT (when sync is on). No personal data."""
        reasons = [r for r in (self._store_problem(), self._disk_problem()) if r]
        if self.appliance is not None:
            reasons += self.liveness()
            if self._breath() is None and self.camera_expected:
                reasons.append("camera: none found; pacing only, no breath measurement")
        mqtt = self._mqtt_state()
        if mqtt not in ("disabled", "connected"):
            last = getattr(self.sync, "last_sync", None)
            reasons.append(f"mqtt: {mqtt} (last sync {last or 'never'})")
        return {"status": "degraded" if reasons else "ok", "reasons": reasons}

    def _outbox_depth(self) -> int | None:
        if self.sync is not None:
            return int(self.sync.outbox_depth())
        from device.store import open_db
        from device.store.db import db_path_for
        from device.store.outbox_repo import count

        try:
            db = open_db(db_path_for(self.data_dir))
        except Exception:  # noqa: BLE001 - health reports the store; stats just say unknown
            return None
        try:
            return count(db)
        finally:
            db.close()

    def inference_ms(self) -> float | None:
        breath = self._breath()
        if breath is None:
            return None
        value = getattr(breath.status(), "inference_ms", None)
        return None if value is None else round(float(value), 2)

    def stats(self) -> dict[str, Any]:
        """Uptime, version, camera, inference time, CPU temperature, memory, outbox, MQTT."""
        cam = self.camera()
        return {
            "uptime_s": round(self.uptime_s(), 1),
            "version": self.version,
            "camera": {"fps": cam["fps"], "state": cam["state"], "restarts": cam["restarts"]},
            "inference_ms": self.inference_ms(),
            "cpu_temp_c": cpu_temp_c(self.thermal_path),
            "memory": memory_mb(self.proc),
            "outbox_depth": self._outbox_depth(),
            "mqtt": {"state": self._mqtt_state(),
                     "last_sync": getattr(self.sync, "last_sync", None)},
        }
