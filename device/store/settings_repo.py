"""Settings changed at run time (from the web app or the fleet), stored as JSON by key.

The TOML config holds defaults; these are the person's later choices, such as the default
pattern or the privacy retention, and they outlive restarts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from device.store.transaction import timestamp


def get_setting(db: Database, key: str, default: Any = None) -> Any:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return default if row is None else json.loads(row[0])


def set_setting(db: Database, key: str, value: Any, *, now: datetime | None = None) -> None:
    """Store any JSON-serialisable value (ValueError for NaN or non-JSON values)."""
    if not key:
        raise ValueError("setting key must not be empty")
    encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    db.execute(
        "INSERT INTO settings (key, value, updated) VALUES (?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        [key, encoded, timestamp(now)],
    )


def delete_setting(db: Database, key: str) -> bool:
    return db.execute("DELETE FROM settings WHERE key = ?", [key]).rowcount > 0


def all_settings(db: Database) -> dict[str, Any]:
    return {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM settings")}
