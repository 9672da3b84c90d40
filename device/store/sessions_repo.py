"""Sessions and their per-second timeline.

Life of a session: ``create_session`` (status ``running``), ``checkpoint_session`` every few
seconds (duration, metrics so far, new timeline seconds; so a power cut loses little), then
``finish_session`` with ``completed`` or ``stopped``, which can enqueue the sync message in the
same transaction. At start-up ``interrupt_running`` closes sessions a crash left open.

Each session keeps a JSON snapshot of its pattern, so history stays readable after the pattern
is edited or deleted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlite_utils import Database

from common.errors import BadInput
from device.store.db import timestamp, write_transaction
from device.store.errors import NotFound
from device.store.outbox_repo import Outgoing, enqueue
from device.store.patterns_repo import get_pattern
from wire.metrics import TimelinePoint
from wire.patterns import Pattern

Status = Literal["running", "completed", "stopped", "interrupted"]
FINAL_STATUSES: tuple[Status, ...] = ("completed", "stopped", "interrupted")


@dataclass(frozen=True)
class SessionRecord:
    id: str
    profile: str | None
    pattern_id: str | None  # None once the pattern itself is deleted
    pattern: Pattern | None  # the snapshot taken at the start
    started: str
    ended: str | None
    duration_s: float
    status: Status
    metrics: dict[str, Any]


def _record(row: dict[str, Any]) -> SessionRecord:
    snapshot = row.get("pattern_json")
    return SessionRecord(
        id=row["id"],
        profile=row["profile"],
        pattern_id=row["pattern"],
        pattern=Pattern.model_validate_json(snapshot) if snapshot else None,
        started=row["started"],
        ended=row["ended"],
        duration_s=row["duration_s"],
        status=row["status"],
        metrics=json.loads(row["metrics"]),
    )


def _json(value: dict[str, Any] | None, what: str) -> str:
    try:
        return json.dumps(value or {}, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{what}: not storable as JSON ({exc})") from exc


def create_session(
    db: Database,
    pattern_id: str,
    *,
    profile: str | None = None,
    session_id: str | None = None,
    now: datetime | None = None,
) -> SessionRecord:
    """Start a session on a stored pattern (NotFound if it does not exist)."""
    pattern = get_pattern(db, pattern_id).pattern
    new_id = session_id or uuid.uuid4().hex
    db["sessions"].insert(
        {
            "id": new_id,
            "profile": profile,
            "pattern": pattern_id,
            "pattern_json": pattern.model_dump_json(),
            "started": timestamp(now),
            "ended": None,
            "duration_s": 0.0,
            "status": "running",
            "metrics": "{}",
        }
    )
    return get_session(db, new_id)


def _write_timeline(db: Database, session_id: str, points: Iterable[TimelinePoint]) -> None:
    rows = [{"session_id": session_id, **asdict(p)} for p in points]
    if rows:
        # replace: a checkpoint re-sent after a hiccup overwrites the same seconds
        db["session_timeline"].insert_all(rows, replace=True)


def _require_running(db: Database, session_id: str) -> None:
    status = get_session(db, session_id).status
    if status != "running":
        raise BadInput(f"session: {session_id!r} is already {status}; it cannot change")


def checkpoint_session(
    db: Database,
    session_id: str,
    *,
    duration_s: float,
    metrics: dict[str, Any] | None = None,
    timeline: Iterable[TimelinePoint] = (),
) -> None:
    """Save progress of a running session: all of it or (on any error) none of it."""
    with write_transaction(db):
        _require_running(db, session_id)
        db["sessions"].update(
            session_id,
            {"duration_s": duration_s, "metrics": _json(metrics, "metrics")},
        )
        _write_timeline(db, session_id, timeline)


def finish_session(
    db: Database,
    session_id: str,
    *,
    status: Status,
    duration_s: float,
    metrics: dict[str, Any] | None = None,
    timeline: Iterable[TimelinePoint] = (),
    outbox: Sequence[Outgoing] = (),
    now: datetime | None = None,
) -> SessionRecord:
    """Close a running session and enqueue its sync messages, in one transaction."""
    if status not in FINAL_STATUSES:
        raise BadInput(f"status: cannot finish as {status!r} (allowed {', '.join(FINAL_STATUSES)})")
    with write_transaction(db):
        _require_running(db, session_id)
        db["sessions"].update(
            session_id,
            {
                "status": status,
                "ended": timestamp(now),
                "duration_s": duration_s,
                "metrics": _json(metrics, "metrics"),
            },
        )
        _write_timeline(db, session_id, timeline)
        for message in outbox:
            enqueue(db, message, now=now)
    return get_session(db, session_id)


def interrupt_running(db: Database, *, now: datetime | None = None) -> int:
    """Mark sessions left ``running`` (by a crash or power cut) as interrupted."""
    cursor = db.execute(
        "UPDATE sessions SET status = 'interrupted', ended = ? WHERE status = 'running'",
        [timestamp(now)],
    )
    return cursor.rowcount


def get_session(db: Database, session_id: str) -> SessionRecord:
    rows = list(db.query("SELECT * FROM sessions WHERE id = ?", [session_id]))
    if not rows:
        raise NotFound(f"session: no session with id {session_id!r}")
    return _record(rows[0])


def list_sessions(
    db: Database,
    *,
    profile: str | None = None,
    status: Status | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[SessionRecord]:
    """Newest first; ``profile``/``status`` filter when given."""
    where, params = [], []
    if profile is not None:
        where.append("profile = ?")
        params.append(profile)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    sql = "SELECT * FROM sessions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started DESC, id LIMIT ? OFFSET ?"
    return [_record(r) for r in db.query(sql, [*params, limit, offset])]


def session_timeline(db: Database, session_id: str) -> list[TimelinePoint]:
    rows = db.query(
        "SELECT * FROM session_timeline WHERE session_id = ? ORDER BY second", [session_id]
    )
    return [
        TimelinePoint(
            second=r["second"],
            target_phase=r["target_phase"],
            measured_phase=r["measured_phase"],
            rate=r["rate"],
            quality=r["quality"],
            displacement=r["displacement"],
        )
        for r in rows
    ]


def delete_session(db: Database, session_id: str) -> None:
    """Delete a session and (by cascade) its timeline."""
    get_session(db, session_id)
    db.execute("DELETE FROM sessions WHERE id = ?", [session_id])


def delete_sessions_older_than(db: Database, cutoff: datetime) -> int:
    """Privacy retention: delete finished sessions started before ``cutoff``, with timelines."""
    cursor = db.execute(
        "DELETE FROM sessions WHERE started < ? AND status != 'running'", [timestamp(cutoff)]
    )
    return cursor.rowcount
