"""The persistent outbox: messages for the relay survive restarts until the relay acks them.

paho keeps its queue in memory only (FACTS.md), so anything that must reach the relay is written
here first, in the same transaction as the change it reports (see
``sessions_repo.finish_session``). The sync client sends ``pending`` messages, records its
attempts and deletes a message when the relay's ``ack`` for its id arrives. Ids are message
ids: the relay de-duplicates by them, so re-sending after a crash is safe.

A message the relay *refused* (its ack said ``ok: false``, e.g. it failed validation) is kept
with the reason but no longer counted or re-sent: the same bytes would be refused again, and
deleting it would lose data the owner may still want.

``topic`` is the full MQTT topic (``breathe/v1/<device>/sessions``); a topic without the
``breathe/v1/`` root is taken as relative to the sending device's root.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from device.store.transaction import timestamp, write_transaction


@dataclass(frozen=True)
class Outgoing:
    """A message to enqueue: topic (full, or relative to the device's root) and JSON payload."""

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
    refused: str | None = None


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
        refused=row.get("refused"),
    )


def pending(db: Database, *, limit: int = 100) -> list[OutboxMessage]:
    """Messages not yet acked (nor refused), oldest first."""
    rows = db.query(
        "SELECT * FROM outbox WHERE refused IS NULL ORDER BY created, rowid LIMIT ?", [limit]
    )
    return [_message(r) for r in rows]


def pending_heads(db: Database, *, limit: int = 100) -> list[tuple[str, str]]:
    """(id, topic) of the messages :func:`pending` would return, without their payloads."""
    return db.execute(
        "SELECT id, topic FROM outbox WHERE refused IS NULL ORDER BY created, rowid LIMIT ?",
        [limit]).fetchall()


def raw_payloads(db: Database, ids: list[str]) -> dict[str, bytes]:
    """The stored JSON of each message, as bytes ready to send (no decode and re-encode)."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT id, payload FROM outbox WHERE id IN ({marks})", ids)
    return {message_id: payload.encode() for message_id, payload in rows}


def refused(db: Database) -> list[OutboxMessage]:
    """Messages the relay refused, oldest first, with its reason in ``refused``."""
    rows = db.query("SELECT * FROM outbox WHERE refused IS NOT NULL ORDER BY created, rowid")
    return [_message(r) for r in rows]


def record_attempt(db: Database, message_id: str, *, now: datetime | None = None) -> None:
    record_attempts(db, [message_id], now=now)


def record_attempts(db: Database, ids: Iterable[str], *, now: datetime | None = None) -> None:
    """Count one more sending of each message, in one transaction."""
    when = timestamp(now)
    with write_transaction(db):
        db.conn.executemany(
            "UPDATE outbox SET attempts = attempts + 1, last_attempt = ? WHERE id = ?",
            [(when, message_id) for message_id in ids],
        )


def ack(db: Database, message_id: str) -> bool:
    """Forget a message the relay confirmed; False if it was already gone."""
    return bool(ack_many(db, [message_id]))


def ack_many(db: Database, ids: Iterable[str]) -> list[str]:
    """Forget every message the relay confirmed, in one transaction; returns those removed
    now (a duplicate ack is harmless)."""
    removed = []
    with write_transaction(db):
        for message_id in ids:
            if db.execute("DELETE FROM outbox WHERE id = ?", [message_id]).rowcount:
                removed.append(message_id)
    return removed


def refuse(db: Database, message_id: str, reason: str) -> bool:
    """Keep a message the relay refused, with its reason, and stop sending it."""
    cursor = db.execute("UPDATE outbox SET refused = ? WHERE id = ? AND refused IS NULL",
                        [reason or "refused by the relay", message_id])
    return cursor.rowcount > 0


def count(db: Database) -> int:
    """Messages still to deliver (refused ones are not counted)."""
    return db.execute("SELECT count(*) FROM outbox WHERE refused IS NULL").fetchone()[0]


def oldest_created(db: Database) -> str | None:
    """When the oldest message still to deliver was written (ISO text), or None."""
    return db.execute("SELECT min(created) FROM outbox WHERE refused IS NULL").fetchone()[0]
