"""SQLite for a single relay: one file, WAL so the CLI can read while the relay writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.errors import ConfigError


class SqliteBackend:
    """Connections and dialect details for SQLite; the SQL itself lives in the store."""

    name = "sqlite"
    begin = "BEGIN IMMEDIATE"  # writes take the lock up front: no lock-upgrade deadlocks
    placeholder = "?"

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"relay.store_url: cannot open SQLite database {self.path}: "
                              f"{exc}") from None
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def transient(self, exc: BaseException) -> bool:
        """Worth retrying: another process holds the write lock for too long."""
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)
