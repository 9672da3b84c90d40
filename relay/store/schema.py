"""The relay's tables and their migrations: forward-only, in order, the same SQL on both backends.

sqlite-utils ``Migrations`` would do this for SQLite alone; the relay also runs on PostgreSQL,
so a small runner in the same spirit: each migration runs in one transaction together with the
row that records it in ``relay_schema``. That row is inserted *first* with ON CONFLICT DO
NOTHING, which doubles as a lock: a second relay starting at the same moment blocks on it
(PostgreSQL) or on the write lock (SQLite), then sees it taken and skips the migration.

Timestamps are ISO 8601 UTC text, JSON is text: portable, and sorted text compares as time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.errors import ConfigError

if TYPE_CHECKING:
    from relay.store.store import RelayStore

MINT_STATUSES = ("pending", "minted", "failed")

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "sessions, mint requests, fleet registry, rejected counts", [
        # One row per shared session; (device, id) so one device can never shadow another's.
        """CREATE TABLE sessions (
            device TEXT NOT NULL,
            id TEXT NOT NULL,
            payload TEXT NOT NULL,
            received TEXT NOT NULL,
            PRIMARY KEY (device, id)
        )""",
        "CREATE INDEX sessions_received ON sessions (received)",
        # (device, id), like the on-chain request id (relay.chain.request_id_bytes).
        f"""CREATE TABLE mint_requests (
            device TEXT NOT NULL,
            id TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN {MINT_STATUSES}),
            received TEXT NOT NULL,
            updated TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            claimed_at TEXT,
            token_id TEXT,
            tx_hash TEXT,
            contract TEXT,
            chain_id BIGINT,
            error TEXT,
            PRIMARY KEY (device, id),
            CHECK ((status = 'minted') = (token_id IS NOT NULL))
        )""",
        "CREATE INDEX mint_requests_status ON mint_requests (status, received)",
        # status 'unknown' and no last_seen: configured by the operator, never heard from yet.
        """CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            first_seen TEXT,
            last_seen TEXT,
            status TEXT NOT NULL CHECK (status IN ('online', 'offline', 'unknown')),
            version TEXT,
            telemetry TEXT,
            telemetry_at TEXT,
            desired TEXT,
            desired_id TEXT,
            desired_at TEXT,
            reported TEXT,
            reported_at TEXT
        )""",
        """CREATE TABLE rejected (
            reason TEXT PRIMARY KEY,
            count BIGINT NOT NULL,
            last_at TEXT NOT NULL
        )""",
    ]),
    (2, "the shared pattern catalog, pattern mint requests, retractions", [
        # A listing per (device, pattern_key); listing_id is what other devices see and use.
        # unpublished: when its creator withdrew it (NULL while published).
        """CREATE TABLE catalog_listings (
            listing_id TEXT PRIMARY KEY,
            device TEXT NOT NULL,
            pattern_key TEXT NOT NULL,
            creator TEXT NOT NULL,
            pattern TEXT NOT NULL,
            category TEXT NOT NULL,
            tags TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            cycle_s DOUBLE PRECISION NOT NULL,
            search TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            unpublished TEXT,
            UNIQUE (device, pattern_key)
        )""",
        "CREATE INDEX catalog_listings_created ON catalog_listings (unpublished, created)",
        "CREATE INDEX catalog_listings_hash ON catalog_listings (content_hash)",
        # One rating per (listing, device): a later one replaces it.
        """CREATE TABLE catalog_ratings (
            listing_id TEXT NOT NULL,
            device TEXT NOT NULL,
            stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
            updated TEXT NOT NULL,
            PRIMARY KEY (listing_id, device)
        )""",
        "CREATE INDEX catalog_ratings_device ON catalog_ratings (device)",
        """CREATE TABLE catalog_imports (
            listing_id TEXT NOT NULL,
            device TEXT NOT NULL,
            imported TEXT NOT NULL,
            PRIMARY KEY (listing_id, device)
        )""",
        "CREATE INDEX catalog_imports_device ON catalog_imports (device)",
        # Catalog messages already applied (idempotent by message id), with the refusal if any,
        # so a re-sent message gets the same answer.
        """CREATE TABLE catalog_messages (
            device TEXT NOT NULL,
            id TEXT NOT NULL,
            kind TEXT NOT NULL,
            received TEXT NOT NULL,
            error TEXT,
            PRIMARY KEY (device, id)
        )""",
        # Tombstones: the owner deleted the account. Sessions received up to ``retracted``
        # are out of every analytics report (see relay.store.catalog.analytics_sessions).
        """CREATE TABLE retractions (
            device TEXT PRIMARY KEY,
            message_id TEXT NOT NULL,
            retracted TEXT NOT NULL
        )""",
        # Pattern mint requests share the mint flow (claim, exactly once, mint/result).
        "ALTER TABLE mint_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'achievement'",
        "ALTER TABLE mint_requests ADD COLUMN listing_id TEXT",
        "ALTER TABLE mint_requests ADD COLUMN content_hash TEXT",
        # At most one original per content hash (the relay refuses a second before this).
        "CREATE UNIQUE INDEX mint_requests_original ON mint_requests (content_hash) "
        "WHERE kind = 'pattern' AND status <> 'failed'",
    ]),
]

LATEST = MIGRATIONS[-1][0]

_CREATE = """CREATE TABLE IF NOT EXISTS relay_schema (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied TEXT NOT NULL
)"""


def migrate(store: RelayStore, now: str) -> list[int]:
    """Apply what is pending; returns the versions applied by this call."""
    for attempt in range(3):  # concurrent CREATE TABLE IF NOT EXISTS can clash on PostgreSQL
        try:
            with store.transaction() as tx:
                tx.execute(_CREATE)
            break
        except store.backend.errors():
            if attempt == 2:
                raise
    with store.transaction() as tx:
        newest = tx.execute("SELECT MAX(version) FROM relay_schema").fetchone()[0]
    if newest is not None and newest > LATEST:
        raise ConfigError(f"relay.store_url: the database {store.backend.describe()} has schema "
                          f"version {newest}, newer than this relay knows ({LATEST}); "
                          "upgrade the relay")
    applied = []
    for version, name, statements in MIGRATIONS:
        with store.transaction() as tx:
            claimed = tx.execute(
                "INSERT INTO relay_schema (version, name, applied) VALUES (?, ?, ?) "
                "ON CONFLICT (version) DO NOTHING RETURNING version",
                (version, name, now)).fetchone()
            if claimed is None:
                continue  # applied before, or by a relay that started at the same time
            for statement in statements:
                tx.execute(statement)
            applied.append(version)
    return applied


def schema_version(store: RelayStore) -> int | None:
    with store.transaction(write=False) as tx:
        return tx.execute("SELECT MAX(version) FROM relay_schema").fetchone()[0]
