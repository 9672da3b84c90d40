"""Achievements: each kind stored once per profile, marked mintable for the sync work.

Sessions started without a profile belong to the device itself; the achievements table needs a
profile (``profile NOT NULL REFERENCES profiles``), so those are kept under
``DEVICE_PROFILE_ID``, a profile row made on first use. Which achievements a history has
earned is decided by ``device.session.history``; this module only stores and reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from device.store.transaction import timestamp, write_transaction

DEVICE_PROFILE_ID = "device"
DEVICE_PROFILE_NAME = "This device"


@dataclass(frozen=True)
class AchievementRecord:
    id: int
    profile: str
    kind: str
    earned_at: str
    session_id: str | None
    mintable: bool


@dataclass(frozen=True)
class NewAchievement:
    """What to store: the kind, when and by which session it was earned."""

    kind: str
    earned_at: datetime
    session_id: str | None
    mintable: bool = True


def _record(row: dict[str, Any]) -> AchievementRecord:
    return AchievementRecord(
        id=row["id"],
        profile=row["profile"],
        kind=row["kind"],
        earned_at=row["earned_at"],
        session_id=row["session_id"],
        mintable=bool(row["mintable"]),
    )


def owner_of(db: Database, profile: str | None) -> str:
    """The profile achievements are stored under; makes the device's own profile if needed."""
    if profile is not None:
        return profile
    db.execute(
        "INSERT OR IGNORE INTO profiles (id, display_name, wallet_address, created) "
        "VALUES (?, ?, NULL, ?)",
        [DEVICE_PROFILE_ID, DEVICE_PROFILE_NAME, timestamp()],
    )
    return DEVICE_PROFILE_ID


def held_kinds(db: Database, profile: str) -> set[str]:
    """Kinds the profile already holds."""
    rows = db.query("SELECT kind FROM achievements WHERE profile = ?", [profile])
    return {r["kind"] for r in rows}


def store_achievements(
    db: Database, profile: str, earned: Iterable[NewAchievement]
) -> list[AchievementRecord]:
    """Store each kind once (``INSERT OR IGNORE``); returns the rows that are new now."""
    added: list[AchievementRecord] = []
    with write_transaction(db):
        for item in earned:
            cursor = db.execute(
                "INSERT OR IGNORE INTO achievements (profile, kind, earned_at, session_id, "
                "mintable) VALUES (?, ?, ?, ?, ?)",
                [profile, item.kind, timestamp(item.earned_at), item.session_id,
                 int(item.mintable)],
            )
            if cursor.rowcount:
                rows = db.query(
                    "SELECT * FROM achievements WHERE profile = ? AND kind = ?",
                    [profile, item.kind],
                )
                added.extend(_record(r) for r in rows)
    return added


def list_achievements(db: Database, profile: str | None = None) -> list[AchievementRecord]:
    """Oldest first; every profile's when ``profile`` is None."""
    sql, params = "SELECT * FROM achievements", []
    if profile is not None:
        sql += " WHERE profile = ?"
        params.append(profile)
    return [_record(r) for r in db.query(sql + " ORDER BY earned_at, id", params)]
