"""What the device tells the fleet about itself: status, telemetry, reported config.

``status`` is retained: ``online`` on every connect, ``offline`` on a clean stop and, as the
connection's last will, when the device vanishes. Telemetry (QoS 0, every
``mqtt.telemetry_interval_s``) carries health numbers only: uptime, camera fps, inference time,
CPU temperature, outbox depth and the age of the oldest unsent message, and whether a session
runs, never who or what. Numbers come from ``device.status.DeviceStatus.stats()`` when the
daemon hands one over (duck-typed: anything with ``stats() -> dict``); the outbox numbers are
read here, from the sync worker's own connection.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from common.config.models import PrivacySettings, Settings
from device.session.persist import allows_analytics
from device.store import outbox_repo
from device.sync.fleet_config import (
    SYNC_RUNTIME,
    ConfigOutcome,
    reported_config,
    save_overrides,
    validate_changes,
)
from wire import protocol

log = logging.getLogger(__name__)


def new_id() -> str:
    return uuid.uuid4().hex


def status_message(device_id: str, state: str, version: str | None, *,
                   at: datetime | None = None) -> protocol.Status:
    return protocol.Status(id=new_id(), device_id=device_id, state=state,  # type: ignore[arg-type]
                           version=version[:32] if version else None, at=at)


def outbox_numbers(db: Database, now: datetime | None = None) -> tuple[int, float | None]:
    """(messages waiting, seconds the oldest has waited or None)."""
    depth = outbox_repo.count(db)
    oldest = outbox_repo.oldest_created(db)
    if oldest is None:
        return depth, None
    age = ((now or datetime.now(UTC)) - datetime.fromisoformat(oldest)).total_seconds()
    return depth, max(0.0, round(age, 1))


def _number(value: Any, *, signed: bool = False) -> float | None:
    """A finite number (>= 0 unless ``signed``) for telemetry, else None: the wire refuses
    NaN and infinity, and a glitching sensor must not stop the message."""
    if not isinstance(value, int | float) or isinstance(value, bool) \
            or not math.isfinite(value):
        return None
    return float(value) if signed or value >= 0 else None


def session_state(status: Any) -> str | None:
    """idle / running / paused from the appliance behind ``status``, if it has one."""
    engine = getattr(getattr(status, "appliance", None), "engine", None)
    value = getattr(engine, "status", None)
    if value is None:
        return None
    return value if value in ("running", "paused") else "idle"


def telemetry_message(device_id: str, status: Any, db: Database, *, uptime_s: float,
                      privacy: PrivacySettings | None = None) -> protocol.Telemetry:
    """One telemetry message; a failing ``status.stats()`` leaves its numbers out.
    ``analytics`` says whether the owner allows it in the fleet's health report, read now
    (``privacy``: the config's ``[privacy]`` defaults)."""
    stats: dict[str, Any] = {}
    if status is not None:
        try:
            stats = dict(status.stats())
        except Exception:  # noqa: BLE001 - telemetry goes out with what is known
            log.exception("status.stats() failed; telemetry without device numbers")
    camera = stats.get("camera") if isinstance(stats.get("camera"), dict) else {}
    now = datetime.now(UTC)
    depth, oldest = outbox_numbers(db, now)
    cam_state = camera.get("state")
    temp = stats.get("cpu_temp_c")
    return protocol.Telemetry(
        id=new_id(), device_id=device_id, at=now,
        uptime_s=_number(stats.get("uptime_s")) or round(uptime_s, 1),
        fps=_number(camera.get("fps")), inference_ms=_number(stats.get("inference_ms")),
        outbox_depth=depth, oldest_unsent_s=oldest,
        cpu_temp_c=_number(temp, signed=True),
        camera=str(cam_state)[:32] if cam_state is not None else None,
        session=session_state(status),
        analytics=allows_analytics(db, privacy),
    )


def apply_changes(
    settings: Settings,
    db: Database,
    changes: dict[str, Any],
    apply_config: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]],
) -> tuple[ConfigOutcome, Settings]:
    """Validate ``changes``, let the device apply what it can now, store what was accepted.

    Returns the outcome and the settings with the accepted changes. The sync client applies
    :data:`SYNC_RUNTIME` keys itself; the rest go to ``apply_config`` (``DeviceControls``).
    """
    accepted, rejected, merged = validate_changes(settings, changes)
    outcome = ConfigOutcome(accepted=accepted, rejected=rejected)
    outcome.applied_now = {k: v for k, v in accepted.items() if k in SYNC_RUNTIME}
    others = {k: v for k, v in accepted.items() if k not in SYNC_RUNTIME}
    if others:
        try:
            now, refused = apply_config(others)
        except Exception:  # noqa: BLE001 - stored for the next start all the same
            log.exception("controls.apply_config failed; changes apply at the next start")
            now, refused = {}, {}
        outcome.applied_now.update({k: v for k, v in now.items() if k in others})
        for key, why in refused.items():
            if key in others:
                accepted.pop(key)
                outcome.applied_now.pop(key, None)
                rejected[key] = str(why)
        if refused:
            merged = validate_changes(settings, accepted)[2]
    if accepted:
        save_overrides(db, accepted)
    for key, why in rejected.items():
        log.warning("config %s rejected: %s", key, why)
    return outcome, merged


def reported_message(device_id: str, settings: Settings, *, desired_id: str | None = None,
                     outcome: ConfigOutcome | None = None,
                     rejected: dict[str, str] | None = None) -> protocol.ConfigReported | None:
    """``config/reported``: what was applied and refused, and the config now (masked)."""
    try:
        return protocol.ConfigReported(
            id=new_id(), device_id=device_id, desired_id=desired_id,
            applied=outcome.accepted if outcome else {},
            at_next_start=tuple(outcome.at_next_start) if outcome else (),
            rejected={**(outcome.rejected if outcome else {}), **(rejected or {})},
            config=reported_config(settings))
    except ValidationError:
        log.exception("config/reported could not be built")
        return None
