"""``breathe relay report``: how the fleet is used, from the devices whose owners allow it.

Only consenting data is read: sessions shared with ``analytics: true`` and devices whose latest
telemetry says ``analytics: true``. Both filters live here, in :func:`consenting_sessions` and
:func:`consenting_devices`, so nothing else in the report can see a non-consenting row.

Everything is aggregated: sessions per day, completion rate, sessions and median adherence per
pattern (custom patterns are named by their phase lengths, never by the name their owner gave
them), and device health. Days are calendar days in UTC; ``since=7`` is today and the six days
before it. A session counts on the day it started.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from relay.store import RelayStore, catalog, timestamp
from wire import protocol
from wire.patterns import BUILT_INS
from wire.protocol import ProtocolError, SessionMessage

log = logging.getLogger(__name__)

OFFLINE_AFTER_MIN = 15.0  # silent this long (telemetry comes every 30 s by default): offline
CLOCK_SLACK = timedelta(days=1)  # a device clock ahead of the relay's by up to this is still read


@dataclass(frozen=True)
class SharedSession:
    """What the report needs of one consenting session; nothing that names a person."""

    device: str
    pattern: str  # a built-in's id, or "custom:<phases>"
    label: str
    started: datetime
    status: str
    duration_s: float
    adherence: float | None


@dataclass(frozen=True)
class DeviceHealth:
    device: str
    status: str
    last_seen: str | None
    last_seen_s: float | None
    offline: bool
    fps: float | None
    inference_ms: float | None
    outbox_depth: int | None
    oldest_unsent_s: float | None
    telemetry_at: str | None


@dataclass(frozen=True)
class Report:
    generated_at: str
    since_days: int
    first_day: str
    last_day: str
    sessions: dict[str, Any]
    per_day: list[dict[str, Any]]
    patterns: list[dict[str, Any]]
    health: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"timezone": "UTC",
                "consent": "only sessions and devices whose owner allows fleet analytics",
                **asdict(self)}


def window(since_days: int, now: datetime) -> tuple[date, date]:
    """(first, last) calendar day in UTC: the last ``since_days`` days, today included."""
    if since_days < 1:
        raise ValueError(f"since_days must be at least 1 (got {since_days})")
    today = now.astimezone(UTC).date()
    return today - timedelta(days=since_days - 1), today


def _pattern_key(pattern_id: str, pattern: dict[str, Any]) -> tuple[str, str]:
    """(key, label): built-ins by id; custom ones by their phases, so no owner-given name (or
    a pattern id made from it) reaches the report, and identical patterns count together."""
    if pattern_id in BUILT_INS:
        return pattern_id, BUILT_INS[pattern_id].name
    phases = "-".join(f"{float(pattern.get(name, 0)):g}"
                      for name in ("inhale", "hold_in", "exhale", "hold_out"))
    return f"custom:{phases}", f"custom {phases} s"


def _session(device: str, data: dict[str, Any]) -> SharedSession:
    key, label = _pattern_key(data["pattern_id"], data.get("pattern") or {})
    adherence = (data.get("metrics") or {}).get("adherence")
    return SharedSession(device=device, pattern=key, label=label,
                         started=datetime.fromisoformat(data["started"]).astimezone(UTC),
                         status=data["status"], duration_s=float(data["duration_s"]),
                         adherence=None if adherence is None else float(adherence))


def consenting_sessions(store: RelayStore, since: int, now: datetime | None = None
                        ) -> list[SharedSession]:
    """Sessions started in the last ``since`` days (UTC) that analytics may count: shared with
    ``analytics: true`` and not taken back by the device's ``retract`` tombstone (the rule is
    :func:`relay.store.catalog.analytics_sessions`). The one place the report reads sessions."""
    now = now or datetime.now(UTC)
    first, last = window(since, now)
    received_from = timestamp(datetime.combine(first, time(), UTC) - CLOCK_SLACK)
    sessions, stored_before_checks = [], 0
    for device, _id, data in catalog.analytics_sessions(store, since=received_from):
        if not _sane(data):  # stored by a relay from before today's wire checks
            stored_before_checks += 1
            continue
        session = _session(device, data)
        if first <= session.started.date() <= last:
            sessions.append(session)
    if stored_before_checks:
        log.warning("relay report: %d stored session(s) fail today's wire checks (NaN, "
                    "out-of-range values, duplicate keys) and are left out", stored_before_checks)
    return sessions


def _sane(data: dict[str, Any]) -> bool:
    """Whether a stored session passes the checks the relay now makes on arrival."""
    try:
        protocol.decode(SessionMessage, json.dumps(data))
    except (ProtocolError, ValueError):  # ValueError: NaN cannot be written as JSON
        return False
    return True


def _age_s(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    return round(max(0.0, (now - datetime.fromisoformat(iso)).total_seconds()), 1)


def consenting_devices(store: RelayStore, now: datetime | None = None,
                       offline_after_min: float = OFFLINE_AFTER_MIN) -> list[DeviceHealth]:
    """Health of devices whose latest telemetry allows analytics, unless it came before the
    device's retraction. Offline: the broker said so (last will), or nothing heard for
    ``offline_after_min``."""
    now = now or datetime.now(UTC)
    retracted = catalog.retracted_devices(store)
    found = []
    for row in store.devices():
        telemetry = json.loads(row.telemetry) if row.telemetry else {}
        if telemetry.get("analytics") is not True or (
                row.id in retracted and (row.telemetry_at or "") <= retracted[row.id]):
            continue
        seen_s = _age_s(row.last_seen, now)
        found.append(DeviceHealth(
            device=row.id, status=row.status, last_seen=row.last_seen, last_seen_s=seen_s,
            offline=row.status == "offline" or seen_s is None or seen_s > offline_after_min * 60,
            fps=telemetry.get("fps"), inference_ms=telemetry.get("inference_ms"),
            outbox_depth=telemetry.get("outbox_depth"),
            oldest_unsent_s=telemetry.get("oldest_unsent_s"), telemetry_at=row.telemetry_at))
    return found


def _median(values: list[float], digits: int) -> float | None:
    return round(statistics.median(values), digits) if values else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(sessions: list[SharedSession], devices: list[DeviceHealth], *, since_days: int,
              now: datetime, offline_after_min: float = OFFLINE_AFTER_MIN) -> Report:
    """The report's numbers from consenting rows only (pure: no store, no clock)."""
    first, last = window(since_days, now)
    sessions = [s for s in sessions if first <= s.started.date() <= last]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    per_day = {day: [0, 0] for day in days}
    by_pattern: dict[str, list[SharedSession]] = {}
    for s in sessions:
        counts = per_day[s.started.date()]
        counts[0] += 1
        counts[1] += s.status == "completed"
        by_pattern.setdefault(s.pattern, []).append(s)
    completed = sum(s.status == "completed" for s in sessions)
    patterns = []
    for key, group in by_pattern.items():
        scores = [s.adherence for s in group if s.adherence is not None]
        done = sum(s.status == "completed" for s in group)
        patterns.append({"pattern": key, "label": group[0].label, "sessions": len(group),
                         "completed": done, "completion_rate": _share(done, len(group)),
                         "median_adherence": _median(scores, 4), "adherence_sessions": len(scores)})
    patterns.sort(key=lambda p: (-p["sessions"], p["pattern"]))
    fps = [d.fps for d in devices if d.fps is not None]
    inference = [d.inference_ms for d in devices if d.inference_ms is not None]
    depths = [d.outbox_depth for d in devices if d.outbox_depth is not None]
    unsent = [d.oldest_unsent_s for d in devices if d.oldest_unsent_s is not None]
    return Report(
        generated_at=timestamp(now), since_days=since_days,
        first_day=first.isoformat(), last_day=last.isoformat(),
        sessions={
            "total": len(sessions), "completed": completed,
            "stopped": sum(s.status == "stopped" for s in sessions),
            "interrupted": sum(s.status == "interrupted" for s in sessions),
            "completion_rate": _share(completed, len(sessions)),
            "devices": len({s.device for s in sessions}),
            "minutes": round(sum(s.duration_s for s in sessions) / 60, 1)},
        per_day=[{"day": day.isoformat(), "sessions": n, "completed": c}
                 for day, (n, c) in per_day.items()],
        patterns=patterns,
        health={
            "devices": len(devices), "offline": sum(d.offline for d in devices),
            "offline_after_min": offline_after_min,
            "median_fps": _median(fps, 1), "median_inference_ms": _median(inference, 1),
            "max_outbox_depth": max(depths, default=None),
            "max_oldest_unsent_s": max(unsent, default=None),
            "rows": [asdict(d) for d in devices]},
    )


def build_report(store: RelayStore, since_days: int = 7, *, now: datetime | None = None,
                 offline_after_min: float = OFFLINE_AFTER_MIN) -> Report:
    """The fleet report for the last ``since_days`` days, from consenting data only."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return summarise(consenting_sessions(store, since_days, now),
                     consenting_devices(store, now, offline_after_min),
                     since_days=since_days, now=now, offline_after_min=offline_after_min)


# --- text for terminals ------------------------------------------------------------------------

def _fmt(value: Any, spec: str = "{}") -> str:
    return "-" if value is None else spec.format(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def format_table(report: Report) -> str:
    """The report as plain text for a terminal."""
    s, h = report.sessions, report.health
    lines = [f"Fleet report {report.first_day} .. {report.last_day} (UTC, {report.since_days} "
             "days) - only devices whose owner allows analytics",
             "",
             f"sessions: {s['total']} from {s['devices']} device(s), {s['minutes']:g} min; "
             f"completed {s['completed']}, stopped {s['stopped']}, interrupted "
             f"{s['interrupted']}; completion rate {_fmt(s['completion_rate'], '{:.1%}')}",
             "", "Sessions per day"]
    lines += _table(["DAY", "SESSIONS", "COMPLETED"],
                    [[d["day"], str(d["sessions"]), str(d["completed"])]
                     for d in report.per_day])
    lines += ["", "Patterns"]
    lines += _table(["PATTERN", "SESSIONS", "COMPLETED", "MEDIAN ADHERENCE"],
                    [[p["label"], str(p["sessions"]), str(p["completed"]),
                      _fmt(p["median_adherence"], "{:.1%}")] for p in report.patterns]
                    ) if report.patterns else ["no consenting sessions in this period"]
    lines += ["", f"Device health: {h['devices']} device(s), {h['offline']} offline (silent "
              f"> {h['offline_after_min']:g} min or disconnected); median fps "
              f"{_fmt(h['median_fps'])}, median inference {_fmt(h['median_inference_ms'])} ms, "
              f"largest outbox {_fmt(h['max_outbox_depth'])}, oldest unsent "
              f"{_fmt(h['max_oldest_unsent_s'], '{:g} s')}"]
    if h["rows"]:
        lines += _table(["DEVICE", "STATE", "LAST SEEN", "FPS", "INFERENCE", "OUTBOX",
                         "OLDEST UNSENT"],
                        [[d["device"], "offline" if d["offline"] else "online",
                          _fmt(d["last_seen_s"], "{:.0f} s ago"), _fmt(d["fps"], "{:.1f}"),
                          _fmt(d["inference_ms"], "{:.1f} ms"), _fmt(d["outbox_depth"]),
                          _fmt(d["oldest_unsent_s"], "{:.0f} s")] for d in h["rows"]])
    return "\n".join(lines)
