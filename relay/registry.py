"""The fleet registry as the operator sees it: devices, their health, desired vs reported config.

The rows are kept by the consumer (status, telemetry and config/reported messages update them);
this module reads them for the CLI and publishes the desired config, which is retained on
``breathe/v1/<device>/config/desired`` so a device that is offline gets it when it connects.
"""

from __future__ import annotations

import difflib
import json
import queue
import uuid
from datetime import UTC, datetime
from typing import Any

from common.config import Settings
from common.errors import BadInput
from relay.mqtt import guarded, operator_connected, publish_wait
from relay.settings import RelaySettings
from relay.store import DeviceRow, RelayStore, timestamp
from wire import protocol
from wire.protocol import ConfigDesired, ConfigReported, ProtocolError


def _age_s(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    return max(0.0, (now - datetime.fromisoformat(iso)).total_seconds())


def fleet(store: RelayStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """One dict per device: status, last seen (ISO + seconds ago), version, outbox depth, fps."""
    now = now or datetime.now(UTC)
    rows = []
    for row in store.devices():
        telemetry = json.loads(row.telemetry) if row.telemetry else {}
        rows.append({
            "device": row.id, "status": row.status, "last_seen": row.last_seen,
            "last_seen_s": _age_s(row.last_seen, now), "version": row.version,
            "outbox_depth": telemetry.get("outbox_depth"), "fps": telemetry.get("fps"),
            "oldest_unsent_s": telemetry.get("oldest_unsent_s"),
            "camera": telemetry.get("camera"), "session": telemetry.get("session"),
        })
    return rows


def parse_assignments(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["pacing.haptic_strength=0.4", "camera.fps=20"]`` → a dict; values are JSON when they
    parse as JSON (numbers, true/false, lists), else text. Keys must name a setting."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"{pair!r} is not KEY=VALUE (e.g. pacing.haptic_strength=0.4)")
        _check_key(key)
        try:
            changes[key] = json.loads(text)
        except json.JSONDecodeError:
            changes[key] = text
    if not changes:
        raise BadInput("give at least one KEY=VALUE (e.g. pacing.haptic_strength=0.4)")
    return changes


def _check_key(key: str) -> None:
    """The key names a setting of the device's config (the device decides what it accepts)."""
    section, _, name = key.partition(".")
    sections = Settings.model_fields
    if section not in sections or section == "relay":
        known = [s for s in sections if s != "relay"]
        near = difflib.get_close_matches(section, known, n=1)
        raise BadInput(f"{key!r}: unknown settings section {section!r}"
                       + (f"; did you mean {near[0]!r}?" if near else "")
                       + f" (allowed: {', '.join(known)})")
    names = list(getattr(sections[section].annotation, "model_fields", {}))
    if name not in names:
        near = difflib.get_close_matches(name, names, n=1)
        raise BadInput(f"{key!r}: unknown key in [{section}]"
                       + (f"; did you mean '{section}.{near[0]}'?" if near else "")
                       + f" (allowed: {', '.join(names)})")


def _device(device_id: str) -> str:
    try:
        protocol.topic(device_id)
    except ProtocolError as exc:
        raise BadInput(str(exc)) from None
    return device_id


def set_config(settings: RelaySettings, store: RelayStore, device_id: str,
               changes: dict[str, Any], *, replace: bool = False,
               wait_s: float = 0.0) -> tuple[ConfigDesired, ConfigReported | None]:
    """Merge ``changes`` into the device's desired config (``replace``: start afresh), store it
    and publish it retained. ``wait_s`` > 0: wait that long for the device's report on it."""
    _device(device_id)
    row = store.device(device_id)
    merged = {} if replace or row is None or not row.desired else json.loads(row.desired)
    merged.update(changes)
    desired = ConfigDesired(id=uuid.uuid4().hex, changes=merged)
    reports: queue.Queue[ConfigReported] = queue.Queue()
    with operator_connected(settings) as client:
        if wait_s > 0:
            @guarded("config report")
            def on_message(_c: Any, _u: Any, message: Any) -> None:
                try:
                    report = protocol.decode(ConfigReported, message.payload)
                except ProtocolError:
                    return  # not ours to judge here; the relay service counts it
                if report.desired_id == desired.id and report.device_id == device_id:
                    reports.put(report)

            client.on_message = on_message
            client.subscribe(protocol.topic(device_id, protocol.CONFIG_REPORTED), qos=1)
        store.set_desired(device_id, desired.id, json.dumps(merged), timestamp())
        publish_wait(client, protocol.topic(device_id, protocol.CONFIG_DESIRED), desired,
                     retain=True)
        try:
            return desired, reports.get(timeout=wait_s) if wait_s > 0 else None
        except queue.Empty:
            return desired, None


def config_view(store: RelayStore, device_id: str) -> dict[str, Any]:
    """Desired (what the operator asked) and reported (what the device says it applied)."""
    row: DeviceRow | None = store.device(_device(device_id))
    if row is None:
        raise BadInput(f"device {device_id!r} is not known to the relay (never seen, never "
                       "configured); `breathe relay devices` lists the fleet")
    reported = json.loads(row.reported) if row.reported else None
    return {
        "device": row.id,
        "desired": {"id": row.desired_id, "at": row.desired_at,
                    "changes": json.loads(row.desired) if row.desired else {}},
        "reported": None if reported is None else {
            "at": row.reported_at, "desired_id": reported.get("desired_id"),
            "applied": reported.get("applied", {}), "rejected": reported.get("rejected", {}),
            "config": reported.get("config", {})},
        "in_sync": reported is not None and reported.get("desired_id") == row.desired_id,
    }
