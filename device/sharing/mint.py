"""Mint requests: the owner pressed Mint for an earned achievement; the relay mints it.

Nothing personal goes on chain. The request names the achievement's kind and day and carries a
*commitment*: sha256 of a random salt followed by the canonical JSON of the summary that earned
it (the achievement, when, and the session behind it). The salt and the summary stay in this
database (``mint_requests.salt`` / ``summary``), so the owner can later prove what the token
stands for, and nobody else can guess it from the token.

Exactly once: a request and its outbox message are written in one ``BEGIN IMMEDIATE``
transaction, and an achievement has at most one request that has not failed (a partial unique
index, m003), so pressing Mint twice returns the first request instead of making a second.
The relay refuses a second mint for the same request id, so re-sending is always safe. Only a
request that *failed* may be followed by a new one (with a new id and salt).

Status: ``pending`` (queued) → ``sent`` (the relay acked it) → ``minted`` | ``failed``
(``mint/result``). Results are applied idempotently and a minted request never goes back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlite_utils import Database

from common.errors import BadInput
from device.store.errors import NotFound
from device.store.outbox_repo import Outgoing, ack_many, enqueue
from device.store.transaction import timestamp, write_transaction
from wire import protocol

log = logging.getLogger(__name__)

_WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")
SALT_BYTES = 32


MintStatus = Literal["pending", "sent", "minted", "failed"]


class MintRequestRecord(BaseModel):
    """One mint request as stored, with the salt and summary that open its commitment (the
    web app's export shows them to the owner; nothing else does)."""

    model_config = ConfigDict(frozen=True)

    id: str
    achievement_id: int
    kind: str | None
    day: str | None
    wallet_address: str
    status: MintStatus
    commitment: str | None = Field(description="sha256(salt || summary), as sent to the relay")
    salt: str | None = Field(repr=False, description="Hex; with the summary it proves what "
                                                     "the token stands for")
    summary: str | None = Field(repr=False, description="The exact canonical JSON the "
                                                        "commitment covers")
    token_id: str | None
    tx_hash: str | None
    contract: str | None
    chain_id: int | None
    error: str | None
    created: str
    updated: str

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


_COLUMNS = ", ".join(MintRequestRecord.model_fields)


def _record(row: dict[str, Any]) -> MintRequestRecord:
    return MintRequestRecord(**{name: row[name] for name in MintRequestRecord.model_fields})


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def commitment_of(salt: bytes, summary: Any) -> str:
    """sha256(salt || canonical JSON of ``summary``), hex."""
    return hashlib.sha256(salt + canonical_json(summary)).hexdigest()


def local_day(earned_at: str) -> date:
    """The device's calendar day of an ISO timestamp (streaks count local days too)."""
    return datetime.fromisoformat(earned_at).astimezone().date()


def _summary(db: Database, achievement: dict[str, Any]) -> dict[str, Any]:
    """What the commitment covers: the achievement and the session that earned it."""
    session = None
    if achievement["session_id"] is not None:
        rows = list(db.query(
            "SELECT id, pattern, started, ended, status, duration_s, metrics FROM sessions "
            "WHERE id = ?", [achievement["session_id"]]))
        if rows:
            row = rows[0]
            session = {"id": row["id"], "pattern_id": row["pattern"], "started": row["started"],
                       "ended": row["ended"], "status": row["status"],
                       "duration_s": row["duration_s"], "metrics": json.loads(row["metrics"])}
    return {"achievement": achievement["kind"], "earned_at": achievement["earned_at"],
            "session": session}


def get_request(db: Database, request_id: str) -> MintRequestRecord | None:
    rows = list(db.query(f"SELECT {_COLUMNS} FROM mint_requests WHERE id = ?", [request_id]))
    return _record(rows[0]) if rows else None


def live_request(db: Database, achievement_id: int) -> MintRequestRecord | None:
    """The achievement's request that has not failed, if any (there is at most one)."""
    rows = list(db.query(f"SELECT {_COLUMNS} FROM mint_requests WHERE achievement_id = ? "
                         "AND status != 'failed'", [achievement_id]))
    return _record(rows[0]) if rows else None


def latest_requests(db: Database) -> dict[int, MintRequestRecord]:
    """Each achievement's newest request (for showing mint status next to it)."""
    rows = db.query(f"SELECT {_COLUMNS} FROM mint_requests ORDER BY created, rowid")
    return {r["achievement_id"]: _record(r) for r in rows}


def unanswered(db: Database) -> list[MintRequestRecord]:
    """Requests the relay acked (``sent``) and has not answered yet, oldest first."""
    rows = db.query(f"SELECT {_COLUMNS} FROM mint_requests WHERE status = 'sent' "
                    "ORDER BY created, rowid")
    return [_record(r) for r in rows]


def check_wallet(wallet: str | None) -> str:
    if not wallet:
        raise BadInput("mint: set a wallet address in Settings first (no wallet address)")
    if not _WALLET.match(wallet):
        raise BadInput(f"mint: wallet address {wallet!r} is not valid (allowed: 0x and 40 hex "
                       "digits)")
    return wallet


def request_mint(db: Database, achievement_id: int, *, device_id: str, wallet: str | None,
                 now: datetime | None = None) -> MintRequestRecord:
    """Ask the relay to mint achievement ``achievement_id`` to ``wallet``.

    Returns the new request, or the existing one if the achievement already has a request
    that has not failed. Raises :class:`NotFound` for an unknown achievement and
    :class:`BadInput` without a (valid) wallet or for an achievement that is not mintable.
    """
    wallet = check_wallet(wallet)
    topic = protocol.topic(device_id, protocol.MINT_REQUEST)  # checks the device id
    with write_transaction(db):
        rows = list(db.query("SELECT * FROM achievements WHERE id = ?", [achievement_id]))
        if not rows:
            raise NotFound(f"achievement: no achievement with id {achievement_id!r}")
        achievement = rows[0]
        if not achievement["mintable"]:
            raise BadInput(f"achievement {achievement_id} ({achievement['kind']}): this kind "
                           "cannot be minted")
        existing = live_request(db, achievement_id)
        if existing is not None:
            return existing
        request_id = uuid.uuid4().hex
        salt = os.urandom(SALT_BYTES)
        summary = _summary(db, achievement)
        message = protocol.MintRequest(
            id=request_id, device_id=device_id, achievement=achievement["kind"],
            day=local_day(achievement["earned_at"]), commitment=commitment_of(salt, summary),
            wallet=wallet)
        when = timestamp(now)
        db["mint_requests"].insert({
            "id": request_id, "achievement_id": achievement_id, "wallet_address": wallet,
            "status": "pending", "created": when, "updated": when,
            "kind": achievement["kind"], "day": message.day.isoformat(), "salt": salt.hex(),
            "commitment": message.commitment, "summary": canonical_json(summary).decode(),
        })
        enqueue(db, Outgoing(topic=topic, payload=message.model_dump(mode="json", by_alias=True),
                             message_id=request_id), now=now)
        record = get_request(db, request_id)
    assert record is not None
    log.info("mint requested for achievement %s (%s): request %s", achievement_id,
             achievement["kind"], request_id)
    return record


def mark_sent(db: Database, request_ids: list[str], *, now: datetime | None = None) -> int:
    """The relay acked these mint requests (ids of other messages are ignored)."""
    if not request_ids:
        return 0
    when = timestamp(now)
    with write_transaction(db):
        return sum(db.execute(
            "UPDATE mint_requests SET status = 'sent', updated = ? "
            "WHERE id = ? AND status = 'pending'", [when, rid]).rowcount for rid in request_ids)


def mark_refused(db: Database, request_id: str, error: str, *,
                 now: datetime | None = None) -> bool:
    """The relay refused the request outright (its ack said not ok): it failed."""
    return db.execute(
        "UPDATE mint_requests SET status = 'failed', error = ?, updated = ? "
        "WHERE id = ? AND status IN ('pending', 'sent')",
        [error or "refused by the relay", timestamp(now), request_id]).rowcount > 0


def apply_mint_result(db: Database, result: protocol.MintResult, *,
                      now: datetime | None = None) -> MintRequestRecord | None:
    """Store what the relay reports for request ``result.id``; applying it again changes
    nothing, and a minted request stays minted. None for a request this device never made."""
    with write_transaction(db):
        current = get_request(db, result.id)
        if current is None:
            log.warning("mint/result for unknown request %s ignored", result.id)
            return None
        ack_many(db, [result.id])  # a result implies the relay has the request
        if current.status == "minted":
            return current
        when = timestamp(now)
        other = live_request(db, current.achievement_id)
        if result.ok and current.status == "failed" and other is not None:
            # reported failed, then minted after all, and the owner already asked again: keep
            # the token on record without breaking "one live request per achievement"
            log.error("mint request %s reported minted after it failed; request %s is also "
                      "live for achievement %s", result.id, other.id, current.achievement_id)
            db.execute(
                "UPDATE mint_requests SET token_id = ?, tx_hash = ?, contract = ?, chain_id = ?,"
                " error = ?, updated = ? WHERE id = ?",
                [result.token_id, result.tx_hash, result.contract, result.chain_id,
                 f"minted after it was reported failed; see request {other.id}", when,
                 result.id])
        elif result.ok:
            db.execute(
                "UPDATE mint_requests SET status = 'minted', token_id = ?, tx_hash = ?, "
                "contract = ?, chain_id = ?, error = NULL, updated = ? WHERE id = ?",
                [result.token_id, result.tx_hash, result.contract, result.chain_id, when,
                 result.id])
        elif current.status != "failed" or current.error != result.error:
            db.execute(
                "UPDATE mint_requests SET status = 'failed', error = ?, updated = ? WHERE id = ?",
                [result.error or "the relay could not mint", when, result.id])
        record = get_request(db, result.id)
    if record is not None and record.status != current.status:
        log.info("mint request %s: %s%s", result.id, record.status,
                 f" (token {record.token_id})" if record.token_id else f": {record.error}")
    return record
