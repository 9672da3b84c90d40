"""Schema migrations, forward-only, in order; never edit one that has shipped, add a new one.

sqlite-utils ``Migrations`` runs each function inside a transaction together with the row that
records it in ``_sqlite_migrations``, so a failed migration leaves no trace and applying again
only runs what is pending. Timestamps are ISO 8601 UTC text (see ``device.store.db.timestamp``),
JSON columns are text checked with ``json_valid``.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("breathe")

_PHASES = "('inhale', 'hold_in', 'exhale', 'hold_out')"
_MEASURED = "('inhale', 'exhale', 'hold')"  # device.breath.types.Phase

_CORE = [
    """CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        wallet_address TEXT,
        created TEXT NOT NULL
    )""",
    # owner NULL = the device itself (built-ins, and custom patterns added without a profile).
    """CREATE TABLE patterns (
        id TEXT PRIMARY KEY,
        owner TEXT REFERENCES profiles(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        inhale REAL NOT NULL CHECK (inhale > 0),
        hold_in REAL NOT NULL DEFAULT 0 CHECK (hold_in >= 0),
        exhale REAL NOT NULL CHECK (exhale > 0),
        hold_out REAL NOT NULL DEFAULT 0 CHECK (hold_out >= 0),
        description TEXT NOT NULL DEFAULT '',
        benefits TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(benefits)),
        is_public INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
        built_in INTEGER NOT NULL DEFAULT 0 CHECK (built_in IN (0, 1)),
        created TEXT NOT NULL
    )""",
    # Unique per owner, case-insensitively; NULL owners compare equal here (coalesce).
    "CREATE UNIQUE INDEX patterns_owner_name ON patterns (coalesce(owner, ''), lower(name))",
    """CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        profile TEXT REFERENCES profiles(id) ON DELETE SET NULL,
        pattern TEXT REFERENCES patterns(id) ON DELETE SET NULL,
        started TEXT NOT NULL,
        ended TEXT,
        duration_s REAL NOT NULL DEFAULT 0 CHECK (duration_s >= 0),
        status TEXT NOT NULL DEFAULT 'running'
            CHECK (status IN ('running', 'completed', 'stopped', 'interrupted')),
        metrics TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
        CHECK ((status = 'running') = (ended IS NULL))
    )""",
    "CREATE INDEX sessions_started ON sessions (started)",
    f"""CREATE TABLE session_timeline (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        second INTEGER NOT NULL CHECK (second >= 0),
        target_phase TEXT NOT NULL CHECK (target_phase IN {_PHASES}),
        measured_phase TEXT CHECK (measured_phase IS NULL OR measured_phase IN {_MEASURED}),
        rate REAL,
        quality REAL CHECK (quality IS NULL OR quality BETWEEN 0 AND 1),
        displacement REAL,
        PRIMARY KEY (session_id, second)
    )""",
    """CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL CHECK (json_valid(payload)),
        created TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_attempt TEXT
    )""",
    """CREATE TABLE achievements (
        id INTEGER PRIMARY KEY,
        profile TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        earned_at TEXT NOT NULL,
        session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
        mintable INTEGER NOT NULL DEFAULT 0 CHECK (mintable IN (0, 1)),
        UNIQUE (profile, kind)
    )""",
    """CREATE TABLE mint_requests (
        id TEXT PRIMARY KEY,
        achievement_id INTEGER NOT NULL REFERENCES achievements(id) ON DELETE CASCADE,
        wallet_address TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sent', 'minted', 'failed')),
        token_id TEXT,
        tx_hash TEXT,
        error TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    )""",
    """CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL CHECK (json_valid(value)),
        updated TEXT NOT NULL
    )""",
]


@MIGRATIONS(name="m001_core")
def m001_core(db: Database) -> None:
    """Every table the appliance needs, with the constraints that keep rows honest."""
    for statement in _CORE:
        db.execute(statement)


@MIGRATIONS(name="m002_pattern_snapshots")
def m002_pattern_snapshots(db: Database) -> None:
    """Sessions keep a copy of their pattern, so editing or deleting a custom pattern does not
    rewrite history; patterns get an ``updated`` time; indexes for the common queries."""
    db["sessions"].add_column("pattern_json", str)
    db["patterns"].add_column("updated", str)
    db.execute(
        """UPDATE sessions SET pattern_json = (
            SELECT json_object(
                'name', p.name, 'description', p.description, 'benefits', json(p.benefits),
                'inhale', p.inhale, 'hold_in', p.hold_in,
                'exhale', p.exhale, 'hold_out', p.hold_out)
            FROM patterns AS p WHERE p.id = sessions.pattern)
        WHERE pattern_json IS NULL"""
    )
    db["sessions"].create_index(["profile", "started"], index_name="sessions_profile_started")
    db["outbox"].create_index(["created"], index_name="outbox_created")


@MIGRATIONS(name="m003_sync")
def m003_sync(db: Database) -> None:
    """What sync and minting keep: the relay's refusal of an outbox message (kept, never
    re-sent), and per mint request the commitment, its salt and the summary it commits to
    (so the owner can open it later), the achievement's kind and day, and where it was
    minted. At most one mint request per achievement that has not failed, enforced here so
    two presses of Mint at once still make one request."""
    db["outbox"].add_column("refused", str)
    for name in ("kind", "day", "salt", "commitment", "summary", "contract"):
        db["mint_requests"].add_column(name, str)
    db["mint_requests"].add_column("chain_id", int)
    # should an older version have left two live requests for one achievement, keep the oldest
    db.execute(
        """UPDATE mint_requests SET status = 'failed',
               error = 'superseded by an earlier request for the same achievement'
           WHERE status != 'failed' AND EXISTS (
               SELECT 1 FROM mint_requests AS older
               WHERE older.achievement_id = mint_requests.achievement_id
                 AND older.status != 'failed'
                 AND (older.created, older.rowid) < (mint_requests.created, mint_requests.rowid))"""
    )
    db.execute(
        "CREATE UNIQUE INDEX mint_requests_one_live ON mint_requests (achievement_id) "
        "WHERE status != 'failed'"
    )


_CATEGORIES = "('stress', 'sleep', 'energy', 'focus')"  # wire.protocol.CATEGORIES


@MIGRATIONS(name="m004_catalog")
def m004_catalog(db: Database) -> None:
    """The shared pattern catalog (issue 7). A custom pattern the owner made public carries
    its category and tags, the listing id it has in the catalog and the device id it was
    listed from (so an edit or a delete can follow it to the relay); an imported pattern
    remembers the listing it came from (imported once per listing); one rating per listing
    from this device (a second one replaces it). ``is_public`` (m001) keeps its meaning:
    shareable beyond this device."""
    db.execute(f"ALTER TABLE patterns ADD COLUMN category TEXT "
               f"CHECK (category IS NULL OR category IN {_CATEGORIES})")
    db.execute("ALTER TABLE patterns ADD COLUMN tags TEXT NOT NULL DEFAULT '[]' "
               "CHECK (json_valid(tags))")
    for name in ("listing_id", "listed_by", "imported_from"):
        db["patterns"].add_column(name, str)
    db.execute("CREATE UNIQUE INDEX patterns_listing ON patterns (listing_id) "
               "WHERE listing_id IS NOT NULL")
    db.execute("CREATE UNIQUE INDEX patterns_imported_from ON patterns (imported_from) "
               "WHERE imported_from IS NOT NULL")
    db.execute(
        """CREATE TABLE catalog_ratings (
            listing_id TEXT PRIMARY KEY,
            stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
            message_id TEXT NOT NULL,
            rated TEXT NOT NULL
        )"""
    )
