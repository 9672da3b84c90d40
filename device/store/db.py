"""Opening the appliance database: one SQLite file in the data dir, WAL, migrated on open.

One connection per thread. Python's sqlite3 connections refuse use from another thread, and a
shared connection would mix transactions; the session loop, each web request and the sync
client each call ``open_db`` (cheap: a file open and a few pragmas) and close when done. WAL
lets those readers and one writer work at the same time; ``busy_timeout`` makes a second writer
wait instead of failing.

Writes: ``db.execute`` commits each statement on its own (FACTS.md); group multi-row writes in
``with write_transaction(db):`` so they land together or not at all, waiting their turn.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlite_utils import Database

from device.store.errors import StoreError
from device.store.migrations import MIGRATIONS
from device.store.patterns_repo import builtin_changes, sync_builtins
from device.store.transaction import write_transaction

DB_FILENAME = "breathe.db"
BUSY_TIMEOUT_MS = 5000


def db_path_for(data_dir: str | Path) -> Path:
    """Where the database lives inside a data dir (``~`` expanded)."""
    return Path(data_dir).expanduser() / DB_FILENAME


def _refuse_newer(db: Database) -> None:
    known = set(migration_names())
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in known]
    if unknown:
        raise StoreError(
            f"database has migrations this version does not know ({', '.join(unknown)}): it was "
            "written by a newer breathe; upgrade breathe, or point device.data_dir elsewhere"
        )


def migrate(db: Database) -> list[str]:
    """Apply pending migrations; returns the names applied now. Refuses a newer database."""
    _refuse_newer(db)
    pending = [m.name for m in MIGRATIONS.pending(db)]
    if pending:
        MIGRATIONS.apply(db)
    return pending


def _prepare(db: Database) -> None:
    """Migrate and sync built-ins, writing only when something is out of date.

    Two processes may open a fresh database at once (daemon and web app at boot): the work
    runs under ``BEGIN IMMEDIATE``, so one prepares while the other waits (busy_timeout) and
    then finds nothing left to do. Each migration still commits or fails with its record (a
    savepoint inside this transaction).
    """
    _refuse_newer(db)
    if not MIGRATIONS.pending(db) and not builtin_changes(db):
        return  # the usual case: read-only, no lock taken
    with write_transaction(db):
        migrate(db)
        sync_builtins(db)


def migration_names() -> list[str]:
    """Every migration this code knows, in order (pending against an empty database)."""
    with Database(memory=True, execute_plugins=False) as empty:
        return [m.name for m in MIGRATIONS.pending(empty)]


def applied_migrations(db: Database) -> list[str]:
    """Names of the applied migrations, oldest first."""
    return [m.name for m in MIGRATIONS.applied(db)]


def _enable_wal(db: Database) -> None:
    """Switch to WAL (persistent in the file, so only the first open does real work).

    The switch needs the file to itself, and SQLite reports "locked" at once rather than using
    the busy timeout when another connection is opening it too: retry for as long as that
    timeout would have waited.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def open_db(path: str | Path, *, migrate_schema: bool = True) -> Database:
    """Open (creating it and its parent dirs if needed) the database at ``path``.

    Turns on WAL, foreign keys and a busy timeout, applies pending migrations and brings the
    built-in patterns in line with the code. Use the result from the calling thread only.
    """
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        db = Database(target)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(
            f"{target}: cannot open the database ({exc}); check device.data_dir "
            "exists and is writable"
        ) from exc
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        _enable_wal(db)
        # NORMAL is safe in WAL mode (no corruption on power loss, the last commit may be
        # lost) and spares an SD card one fsync per transaction.
        db.execute("PRAGMA synchronous = NORMAL")
        if migrate_schema:
            _prepare(db)
    except sqlite3.OperationalError as exc:
        db.close()
        raise StoreError(f"{target}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StoreError(f"{target}: {exc}; is it a breathe database?") from exc
    except BaseException:
        db.close()
        raise
    return db
