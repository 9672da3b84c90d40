"""The persistent outbox: messages for the relay survive restarts until the relay acks them.

paho keeps its queue in memory only (FACTS.md), so anything that must reach the relay is written
here first, in the same transaction as the change it reports (see
``sessions_repo.finish_session``). The sync client sends ``pending`` messages, calls
``record_attempt`` when it tries and ``ack`` when the relay confirms. Ids are message ids: the
relay de-duplicates by them, so re-sending after a crash is safe.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from device.store.db import timestamp


@dataclass(frozen=True)
class Outgoing:
    """A message to enqueue: topic (relative to the device's topic root) and JSON payload."""

    topic: str
    payload: dict[str, Any]
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    topic: str
    payload: dict[str, Any]
    created: str
    attempts: int
    last_attempt: str | None


def enqueue(db: Database, message: Outgoing, *, now: datetime | None = None) -> str:
    """Store a message for sending; joins the caller's transaction if one is open."""
    if not message.topic:
        raise ValueError("outbox topic must not be empty")
    db["outbox"].insert(
        {
            "id": message.message_id,
            "topic": message.topic,
            "payload": json.dumps(message.payload, ensure_ascii=False, allow_nan=False),
            "created": timestamp(now),
            "attempts": 0,
            "last_attempt": None,
        }
    )
    return message.message_id


def _message(row: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        topic=row["topic"],
        payload=json.loads(row["payload"]),
        created=row["created"],
        attempts=row["attempts"],
        last_attempt=row["last_attempt"],
    )


def pending(db: Database, *, limit: int = 100) -> list[OutboxMessage]:
    """Messages not yet acked, oldest first."""
    rows = db.query("SELECT * FROM outbox ORDER BY created, rowid LIMIT ?", [limit])
    return [_message(r) for r in rows]


def record_attempt(db: Database, message_id: str, *, now: datetime | None = None) -> None:
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_attempt = ? WHERE id = ?",
        [timestamp(now), message_id],
    )


def ack(db: Database, message_id: str) -> bool:
    """Forget a message the relay confirmed; False if it was already gone."""
    return db.execute("DELETE FROM outbox WHERE id = ?", [message_id]).rowcount > 0


def count(db: Database) -> int:
    return db.execute("SELECT count(*) FROM outbox").fetchone()[0]
