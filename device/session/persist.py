"""What the session engine writes to the store: create, checkpoint, finish, recover.

Kept apart from the engine's state machine so the loop reads as timing and commands, and this
reads as rows and messages. Each call opens its own short-lived connection (the store's rule:
one connection per thread; commands and the loop may be on different threads). A failed
checkpoint or finish is logged and swallowed: pacing must never stop because a write failed,
and a row left ``running`` becomes ``interrupted`` at the next start, holding its last
checkpoint.

Consent: a session leaves the device only if its owner shares metrics
(:func:`device.privacy.effective_privacy`: the person's stored choice over the config's
``[privacy]`` defaults, which the engine passes as ``privacy``; without them the built-in
default, share nothing, applies). It is decided when the session ends, in the transaction that
writes the end: no consent, no outbox row; the session itself is always kept on the device.
Its ``analytics`` flag (whether it may count in the fleet's anonymous usage report) is the
owner's ``allow_analytics`` at that same moment.
"""

from __future__ import annotations

import logging
import sqlite3
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlite_utils import Database

from common.config.models import PrivacySettings
from common.errors import BadInput
from device.pacing.engine import PacingEngine
from device.privacy import effective_privacy
from device.session.live_state import SessionStatus
from device.session.metrics import MetricsAccumulator
from device.session.own_rate import SessionRate
from device.store.db import open_db, timestamp, write_transaction
from device.store.errors import StoreError
from device.store.outbox_repo import Outgoing, enqueue
from device.store.patterns_repo import get_pattern, list_patterns
from device.store.sessions_repo import (
    SessionRecord,
    checkpoint_session,
    create_session,
    finish_session,
    get_session,
    interrupt_running,
)
from wire.metrics import SessionMetrics, TimelinePoint
from wire.patterns import Pattern

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass
class LiveSession:
    """The moving parts of the session in progress."""

    id: str
    pattern_id: str
    pattern: Pattern
    profile: str | None
    started: str
    pacing: PacingEngine
    metrics: MetricsAccumulator
    last_checkpoint: float  # clock seconds
    written_from: int = 0  # first timeline second the next checkpoint (re)writes
    checkpoints: int = 0
    rate: SessionRate = field(default_factory=SessionRate)  # from the session's own breaths

    def unwritten(self, snapshot: SessionMetrics) -> list[TimelinePoint]:
        """Timeline rows not yet stored; the last second written may have been partial, so it
        is written again (rows are replaced)."""
        timeline = snapshot.timeline
        return list(timeline[bisect_left(timeline, self.written_from, key=_second) :])


def _second(point: TimelinePoint) -> int:
    return point.second


@contextmanager
def connect(db_path: Path) -> Iterator[Database]:
    db = open_db(db_path, migrate_schema=False)
    try:
        yield db
    finally:
        db.close()


def shares_metrics(db: Database, privacy: PrivacySettings | None = None) -> bool:
    """Whether the owner lets session metrics leave the device (``privacy``: the config's
    ``[privacy]`` defaults; None: the built-in ones)."""
    defaults = SimpleNamespace(privacy=privacy or PrivacySettings())
    return effective_privacy(defaults, db).share_metrics


def allows_analytics(db: Database, privacy: PrivacySettings | None = None) -> bool:
    """Whether the owner allows this device in the fleet's anonymous usage counts."""
    defaults = SimpleNamespace(privacy=privacy or PrivacySettings())
    return effective_privacy(defaults, db).allow_analytics


def sessions_topic(device_id: str) -> str:
    return f"breathe/v1/{device_id}/sessions"


def recover(db_path: Path, *, device_id: str | None = None,
            privacy: PrivacySettings | None = None) -> int:
    """Migrate a fresh file once; mark sessions a crash left ``running`` as ``interrupted``.

    With ``device_id``, each one the owner shares also gets its sync message (holding its last
    checkpoint), in the same transaction, so a crash does not keep a session from the relay.
    """
    db = open_db(db_path)
    try:
        with write_transaction(db):
            running = [r["id"] for r in db.query("SELECT id FROM sessions "
                                                  "WHERE status = 'running'")]
            now = datetime.now(UTC)
            count = interrupt_running(db, now=now)
            if device_id is not None and running and shares_metrics(db, privacy):
                analytics = allows_analytics(db, privacy)
                for session_id in running:
                    message = _recovered_message(db, session_id, device_id, analytics)
                    if message is not None:
                        enqueue(db, message, now=now)
        return count
    finally:
        db.close()


def _recovered_message(db: Database, session_id: str, device_id: str,
                       analytics: bool) -> Outgoing | None:
    record = get_session(db, session_id)
    if record.pattern is None or record.pattern_id is None:
        log.warning("session %s: interrupted without its pattern; not synced", session_id)
        return None
    payload = {
        "schema": SCHEMA_VERSION, "id": record.id, "device_id": device_id,
        "profile": record.profile, "pattern_id": record.pattern_id,
        "pattern": record.pattern.model_dump(mode="json"), "started": record.started,
        "ended": record.ended, "status": "interrupted", "duration_s": record.duration_s,
        "metrics": SessionMetrics.from_dict(record.metrics).to_dict(),
        "analytics": analytics,
    }
    return Outgoing(topic=sessions_topic(device_id), payload=payload, message_id=record.id)


def create(
    db_path: Path, pattern: str | Pattern, profile: str | None
) -> tuple[str, Pattern, SessionRecord]:
    """Resolve the pattern against the store and create the session row."""
    with connect(db_path) as db:
        pattern_id, resolved = _resolve(db, pattern, profile)
        return pattern_id, resolved, create_session(db, pattern_id, profile=profile)


def _resolve(db: Database, pattern: str | Pattern, profile: str | None) -> tuple[str, Pattern]:
    if isinstance(pattern, str):
        return pattern, get_pattern(db, pattern).pattern  # NotFound lists the known ids
    records = list_patterns(db, owner=profile)
    for same in (lambda r: r.pattern == pattern, lambda r: r.pattern.phases == pattern.phases):
        for record in records:
            if same(record):
                return record.id, record.pattern
    known = ", ".join(r.id for r in records)
    raise BadInput(
        f"pattern: {pattern.name!r} ({pattern.label}) is not stored, and a session must "
        f"refer to a stored pattern (known: {known}); save it with 'breathe patterns add'"
    )


def checkpoint(db_path: Path, live: LiveSession, now: float) -> None:
    """Save duration, metrics so far and the new timeline seconds; never stops pacing."""
    live.last_checkpoint = now  # on failure, retry at the next interval, not every step
    snapshot = live.metrics.snapshot()
    points = live.unwritten(snapshot)
    try:
        with connect(db_path) as db:
            checkpoint_session(
                db,
                live.id,
                duration_s=round(live.pacing.elapsed(), 3),
                metrics=snapshot.to_dict(),
                timeline=points,
            )
    except (StoreError, sqlite3.Error, BadInput):
        log.exception("session %s: checkpoint failed; pacing goes on", live.id)
        return
    if points:
        live.written_from = points[-1].second
    live.checkpoints += 1


def outbox_payload(
    live: LiveSession,
    *,
    device_id: str,
    status: SessionStatus,
    ended: datetime,
    duration_s: float,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """The session's sync message (``breathe/v1/<device>/sessions``)."""
    return {
        "schema": SCHEMA_VERSION,
        "id": live.id,
        "device_id": device_id,
        "profile": live.profile,
        "pattern_id": live.pattern_id,
        "pattern": live.pattern.model_dump(mode="json"),
        "started": live.started,
        "ended": timestamp(ended),
        "status": status,
        "duration_s": duration_s,
        "metrics": metrics,
    }


def finish(db_path: Path, live: LiveSession, status: SessionStatus, device_id: str, *,
           privacy: PrivacySettings | None = None) -> float:
    """Close the session with its metrics and, if the owner shares metrics, its sync message,
    in one transaction (``privacy``: the config's ``[privacy]`` defaults).

    Returns the active duration saved. On failure the row stays ``running`` and becomes
    ``interrupted`` at the next start, holding the last checkpoint: the person still gets
    their session back.
    """
    snapshot = live.metrics.snapshot()
    points = live.unwritten(snapshot)
    duration_s = round(live.pacing.elapsed(), 3)
    ended = datetime.now(UTC)
    metrics = snapshot.to_dict()
    payload = outbox_payload(
        live, device_id=device_id, status=status, ended=ended, duration_s=duration_s,
        metrics=metrics,
    )
    try:
        with connect(db_path) as db, write_transaction(db):
            # both choices are read when the session ends, in the transaction that ends it
            payload["analytics"] = allows_analytics(db, privacy)
            message = Outgoing(topic=sessions_topic(device_id), payload=payload,
                               message_id=live.id)
            outbox = [message] if shares_metrics(db, privacy) else []
            finish_session(db, live.id, status=status, duration_s=duration_s,  # type: ignore[arg-type]
                           metrics=metrics, timeline=points, outbox=outbox, now=ended)
    except (StoreError, sqlite3.Error, BadInput):
        log.exception("session %s: could not save its end", live.id)
    return duration_s
