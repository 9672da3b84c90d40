"""Where the relay keeps what it received: SQLite by default, PostgreSQL for several relays.

``open_store(settings.store_url)`` picks the backend from the URL; the SQL is the same for both
(see :mod:`relay.store.store`). Call ``migrate()`` once at start.
"""

from __future__ import annotations

from pathlib import Path

from relay.store.postgres import PostgresBackend
from relay.store.rows import DeviceRow, MintRow, Outcome, timestamp
from relay.store.schema import LATEST, migrate, schema_version
from relay.store.sqlite import SqliteBackend
from relay.store.store import RelayStore

__all__ = ["LATEST", "DeviceRow", "MintRow", "Outcome", "RelayStore", "migrate", "open_store",
           "schema_version", "timestamp"]


def open_store(url: str, *, migrate_now: bool = True) -> RelayStore:
    """A store for ``relay.store_url``: a path or sqlite:///PATH, or postgresql://..."""
    if url.startswith(("postgresql://", "postgres://")):
        store = RelayStore(PostgresBackend(url))
    else:
        path = url.removeprefix("sqlite://") if url.startswith("sqlite://") else url
        store = RelayStore(SqliteBackend(Path(path)))
    if migrate_now:
        migrate(store, timestamp())
    return store
