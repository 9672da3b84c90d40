"""The two things every repository needs, below ``open_db``: one timestamp format and a write
transaction that waits for the lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlite_utils import Database


def timestamp(when: datetime | None = None) -> str:
    """ISO 8601 UTC text with a fixed shape, so text order is time order in SQL."""
    when = when or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """A transaction that holds the write lock from its first statement (``BEGIN IMMEDIATE``).

    sqlite-utils' ``atomic()`` opens a plain (deferred) ``BEGIN``: its first statement often
    reads (sqlite-utils looks at the table first), and if another connection writes before our
    first write (the sync client deleting acked rows, a web request), SQLite fails our write at
    once with "database is locked" instead of waiting. Here the transaction waits its turn
    (busy_timeout). Inside an open transaction it is a savepoint of that one.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.execute("COMMIT")
