"""Profiles: the people who use this device (a display name, optionally a wallet)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from common.errors import BadInput
from device.store.db import timestamp
from device.store.errors import NotFound

_WALLET = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Profile:
    id: str
    display_name: str
    wallet_address: str | None
    created: str


def _check(display_name: str, wallet_address: str | None) -> str:
    name = display_name.strip()
    if not 1 <= len(name) <= 50 or not name.isprintable():
        raise BadInput(
            f"display_name: invalid (got {display_name!r}; allowed 1–50 printable characters)"
        )
    if wallet_address is not None and not _WALLET.fullmatch(wallet_address):
        raise BadInput(
            f"wallet_address: invalid (got {wallet_address!r}; allowed 0x and 40 hex digits)"
        )
    return name


def _profile(row: dict[str, Any]) -> Profile:
    return Profile(row["id"], row["display_name"], row["wallet_address"], row["created"])


def create_profile(
    db: Database,
    display_name: str,
    *,
    wallet_address: str | None = None,
    profile_id: str | None = None,
    now: datetime | None = None,
) -> Profile:
    name = _check(display_name, wallet_address)
    row = {
        "id": profile_id or uuid.uuid4().hex,
        "display_name": name,
        "wallet_address": wallet_address,
        "created": timestamp(now),
    }
    db["profiles"].insert(row)
    return _profile(row)


def get_profile(db: Database, profile_id: str) -> Profile:
    rows = list(db.query("SELECT * FROM profiles WHERE id = ?", [profile_id]))
    if not rows:
        raise NotFound(f"profile: no profile with id {profile_id!r}")
    return _profile(rows[0])


def list_profiles(db: Database) -> list[Profile]:
    return [_profile(r) for r in db.query("SELECT * FROM profiles ORDER BY created, id")]


def update_profile(
    db: Database, profile_id: str, *, display_name: str, wallet_address: str | None
) -> Profile:
    name = _check(display_name, wallet_address)
    get_profile(db, profile_id)
    db["profiles"].update(profile_id, {"display_name": name, "wallet_address": wallet_address})
    return get_profile(db, profile_id)
