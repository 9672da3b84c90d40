"""Patterns in the store: built-ins mirrored from code, custom patterns added by people.

Built-ins (``wire.patterns.BUILT_INS``) are written on every ``open_db`` when the code
changed them, and can be neither edited nor deleted here. Custom patterns get an id made from
their name with a ``my-`` prefix (``Calm 4-6`` → ``my-calm-4-6``), so a built-in added in a
later version can never take an existing id. Names are unique per owner (case-insensitive) and
may not reuse a built-in's name. ``owner=None`` means the device itself (patterns added from the
CLI); those are shown to every profile.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from common.errors import BadInput
from device.store.db import timestamp, write_transaction
from device.store.errors import NotFound
from wire.patterns import ALLOWED, BUILT_INS, Pattern

CUSTOM_ID_PREFIX = "my-"
_COLUMNS = ("name", "description", "inhale", "hold_in", "exhale", "hold_out")


@dataclass(frozen=True)
class PatternRecord:
    """A stored pattern: the validated Pattern plus who owns it and when it was made."""

    id: str
    pattern: Pattern
    owner: str | None
    is_public: bool
    built_in: bool
    created: str
    updated: str | None
    category: str | None = None  # the catalog's: stress / sleep / energy / focus
    tags: tuple[str, ...] = ()
    listing_id: str | None = None  # set while the pattern is listed in the shared catalog
    listed_by: str | None = None  # the device id it was listed from
    imported_from: str | None = None  # the catalog listing this pattern was imported from

    def summary(self) -> dict[str, Any]:
        """The short form used by ``breathe patterns list --json`` and the web app."""
        p = self.pattern
        return {
            "id": self.id,
            "name": p.name,
            "inhale": p.inhale,
            "hold_in": p.hold_in,
            "exhale": p.exhale,
            "hold_out": p.hold_out,
            "cycle_s": p.cycle_s,
            "built_in": self.built_in,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "description": self.pattern.description,
            "benefits": list(self.pattern.benefits),
            "breaths_per_minute": round(self.pattern.breaths_per_minute, 2),
            "owner": self.owner,
            "is_public": self.is_public,
            "created": self.created,
            "updated": self.updated,
        }


def _row_values(pattern: Pattern) -> dict[str, Any]:
    values = {column: getattr(pattern, column) for column in _COLUMNS}
    values["benefits"] = json.dumps(list(pattern.benefits), ensure_ascii=False)
    return values


def _record(row: dict[str, Any]) -> PatternRecord:
    pattern = Pattern(
        **{column: row[column] for column in _COLUMNS},
        benefits=tuple(json.loads(row["benefits"])),
    )
    return PatternRecord(
        id=row["id"],
        pattern=pattern,
        owner=row["owner"],
        is_public=bool(row["is_public"]),
        built_in=bool(row["built_in"]),
        created=row["created"],
        updated=row.get("updated"),
        category=row.get("category"),
        tags=tuple(json.loads(row.get("tags") or "[]")),
        listing_id=row.get("listing_id"),
        listed_by=row.get("listed_by"),
        imported_from=row.get("imported_from"),
    )


def builtin_changes(db: Database) -> list[tuple[str, str]]:
    """What ``sync_builtins`` would do, as (action, id) pairs; reads only."""
    stored = {r["id"]: r for r in db.query("SELECT * FROM patterns WHERE built_in = 1")}
    changes = []
    for pattern_id, pattern in BUILT_INS.items():
        row = stored.pop(pattern_id, None)
        if row is None:
            changes.append(("insert", pattern_id))
        elif any(row[k] != v for k, v in _row_values(pattern).items()):
            changes.append(("update", pattern_id))
    changes += [("delete", pattern_id) for pattern_id in stored]
    return changes


def sync_builtins(db: Database) -> int:
    """Make the stored built-ins match the code; returns how many rows changed.

    A built-in the code no longer has is deleted; sessions keep their snapshot of it.
    """
    with write_transaction(db):
        changes = builtin_changes(db)
        for action, pattern_id in changes:
            if action == "delete":
                db["patterns"].delete(pattern_id)
                continue
            pattern = BUILT_INS[pattern_id]
            values = _row_values(pattern)
            if action == "update":
                db["patterns"].update(pattern_id, {**values, "updated": timestamp()})
            else:
                _make_room_for(db, pattern.name)
                db["patterns"].insert(
                    {"id": pattern_id, "owner": None, "is_public": 1, "built_in": 1,
                     "created": timestamp(), **values}
                )  # fmt: skip
    return len(changes)


def _make_room_for(db: Database, name: str) -> None:
    """Rename a device custom pattern that holds the name a new built-in needs."""
    for row in db.query(
        "SELECT id, name FROM patterns WHERE owner IS NULL AND built_in = 0 "
        "AND lower(name) = lower(?)",
        [name],
    ):
        db["patterns"].update(row["id"], {"name": f"{row['name'][:40]} (custom)"})


def find_pattern(db: Database, pattern_id: str) -> PatternRecord | None:
    rows = list(db.query("SELECT * FROM patterns WHERE id = ?", [pattern_id]))
    return _record(rows[0]) if rows else None


def get_pattern(db: Database, pattern_id: str) -> PatternRecord:
    """The pattern with this id, or NotFound naming the ids that exist."""
    record = find_pattern(db, pattern_id)
    if record is None:
        known = [r["id"] for r in db.query("SELECT id FROM patterns ORDER BY built_in DESC, id")]
        raise NotFound(
            f"pattern: no pattern with id {pattern_id!r} (known: {', '.join(known)}); "
            "see 'breathe patterns list'"
        )
    return record


def list_patterns(
    db: Database, *, owner: str | None = None, include_public: bool = True
) -> list[PatternRecord]:
    """Built-ins (in code order), then custom patterns by name: the device's own (owner None,
    shared with every profile), the owner's, and, with ``include_public``, others' public ones."""
    order = {pattern_id: i for i, pattern_id in enumerate(BUILT_INS)}
    where = "owner IS NULL OR owner IS ?" + (" OR is_public = 1" if include_public else "")
    records = [_record(r) for r in db.query(f"SELECT * FROM patterns WHERE {where}", [owner])]
    return sorted(
        records,
        key=lambda r: (not r.built_in, order.get(r.id, 0), r.pattern.name.lower(), r.id),
    )


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return CUSTOM_ID_PREFIX + (slug or "pattern")


def _new_id(db: Database, name: str) -> str:
    base = _slug(name)
    candidate, n = base, 1
    while find_pattern(db, candidate) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _check_name_free(
    db: Database, name: str, owner: str | None, exclude_id: str | None = None
) -> None:
    clash = list(
        db.query(
            """SELECT id, built_in FROM patterns
               WHERE lower(name) = lower(?) AND (built_in = 1 OR owner IS ?) AND id IS NOT ?""",
            [name, owner, exclude_id],
        )
    )
    if clash:
        whose = "a built-in pattern" if clash[0]["built_in"] else f"pattern {clash[0]['id']!r}"
        raise BadInput(f"name: already used by {whose} (got {name!r}; allowed {ALLOWED['name']})")


def _refuse_builtin(record: PatternRecord, action: str) -> None:
    if record.built_in:
        raise BadInput(
            f"pattern: {record.id!r} is a built-in and cannot be {action} (allowed: custom "
            "patterns only; add a copy under a new name instead)"
        )


def add_pattern(
    db: Database,
    pattern: Pattern,
    *,
    owner: str | None = None,
    is_public: bool = False,
    imported_from: str | None = None,
    now: datetime | None = None,
) -> PatternRecord:
    """Store a custom pattern; BadInput if its name is taken for this owner.
    ``imported_from``: the catalog listing it is a copy of."""
    with write_transaction(db):
        _check_name_free(db, pattern.name, owner)
        pattern_id = _new_id(db, pattern.name)
        try:
            db["patterns"].insert(
                {
                    "id": pattern_id,
                    "owner": owner,
                    "is_public": int(is_public),
                    "built_in": 0,
                    "created": timestamp(now),
                    "imported_from": imported_from,
                    **_row_values(pattern),
                }
            )
        except sqlite3.IntegrityError as exc:
            raise BadInput(f"pattern: cannot store {pattern.name!r}: {exc}") from exc
    return get_pattern(db, pattern_id)


def replace_pattern(
    db: Database,
    pattern_id: str,
    pattern: Pattern,
    *,
    is_public: bool | None = None,
    now: datetime | None = None,
) -> PatternRecord:
    """Replace a custom pattern's content (its id stays); built-ins are refused. The row only:
    ``device.sharing.catalog.update_pattern`` also keeps its catalog listing in step."""
    with write_transaction(db):
        record = get_pattern(db, pattern_id)
        _refuse_builtin(record, "edited")
        _check_name_free(db, pattern.name, record.owner, exclude_id=pattern_id)
        values = {**_row_values(pattern), "updated": timestamp(now)}
        if is_public is not None:
            values["is_public"] = int(is_public)
        db["patterns"].update(pattern_id, values)
        return get_pattern(db, pattern_id)


def remove_pattern(db: Database, pattern_id: str) -> PatternRecord:
    """Delete a custom pattern (its past sessions keep their snapshot of it) and return what it
    was. The row only: ``device.sharing.catalog.delete_pattern`` also withdraws its listing."""
    with write_transaction(db):
        record = get_pattern(db, pattern_id)
        _refuse_builtin(record, "deleted")
        db["patterns"].delete(pattern_id)
        return record
