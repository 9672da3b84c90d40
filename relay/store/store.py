"""The relay store: one set of SQL for SQLite and PostgreSQL, behind one class.

Every statement is written once, with ``?`` placeholders; :class:`Tx` turns them into the
backend's style (``%s`` for psycopg) — the only dialect difference the queries see. Both
backends speak INSERT ... ON CONFLICT DO NOTHING / DO UPDATE and RETURNING, which is what makes
storing idempotent: a message id already stored is simply not returned by the insert.

Writes that may meet another relay's writes take locks in one global order (sessions, then
mint requests, then the catalog, then devices, then rejected; rows sorted by key), so two
PostgreSQL relays cannot deadlock on one another.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from relay.store import catalog
from relay.store.rows import DEVICE_COLUMNS, MINT_COLUMNS, DeviceRow, MintRow, Outcome, Tx
from relay.validate import Inbound
from wire.protocol import ConfigReported, Status, Telemetry

_CHUNK = 400  # rows per multi-row INSERT (well under SQLite's variable limit)
# a session's outcome is one of two (frozen) values: shared, not built for every row
_STORED, _DUPLICATE = Outcome(stored=True), Outcome(stored=False)

def _values(count: int, width: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


def _chunks(rows: list[tuple], size: int = _CHUNK) -> Iterator[list[tuple]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


class RelayStore:
    """Sessions, mint requests, the fleet registry and rejection counts."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    # --- connections and transactions (one connection per thread) ---------------------------

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.backend.connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            try:
                conn.close()
            except self.backend.errors():
                pass

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        """Commit on success, roll back on any error; a broken connection is replaced.
        ``write=False``: a read that never waits for the writer (SQLite WAL)."""
        conn = self._connection()
        try:
            conn.execute(self.backend.begin if write else "BEGIN")
            yield Tx(conn, self.backend.placeholder)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except self.backend.errors():
                self._drop()
            raise

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except self.backend.errors():
                pass
        self._local = threading.local()

    # --- the ingest write: one transaction per batch ------------------------------------------

    def record(self, items: Sequence[Inbound], rejected: Counter[str], now: str
               ) -> list[Outcome | None]:
        """Store a batch in one transaction; one Outcome per session / mint request (None for
        the registry-only kinds). Committed when this returns, so acks may go out."""
        outcomes: list[Outcome | None] = [None] * len(items)
        with self.transaction() as tx:
            self._sessions(tx, items, outcomes, now)
            self._mints(tx, items, outcomes, now)
            catalog.apply(tx, items, outcomes, now)
            self._devices(tx, items, now)
            if rejected:
                rows = sorted((reason, n, now) for reason, n in rejected.items())
                tx.execute(f"INSERT INTO rejected (reason, count, last_at) VALUES "
                           f"{_values(len(rows), 3)} ON CONFLICT (reason) DO UPDATE SET "
                           "count = rejected.count + excluded.count, last_at = excluded.last_at",
                           [v for row in rows for v in row])
        return outcomes

    def _sessions(self, tx: Tx, items: Sequence[Inbound], outcomes: list, now: str) -> None:
        first: dict[tuple[str, str], int] = {}
        for i, item in enumerate(items):
            if item.kind == "sessions":
                key = (item.device_id, item.message.id)
                if key in first:
                    outcomes[i] = _DUPLICATE  # the same message twice in one batch
                else:
                    first[key] = i
        stored: set[tuple[str, str]] = set()
        rows = sorted((dev, mid, items[i].payload, now) for (dev, mid), i in first.items())
        for chunk in _chunks(rows):
            cursor = tx.execute(f"INSERT INTO sessions (device, id, payload, received) VALUES "
                                f"{_values(len(chunk), 4)} ON CONFLICT (device, id) DO NOTHING "
                                "RETURNING device, id", [v for row in chunk for v in row])
            stored.update((dev, mid) for dev, mid in cursor.fetchall())
        for key, i in first.items():
            outcomes[i] = _STORED if key in stored else _DUPLICATE

    def _mints(self, tx: Tx, items: Sequence[Inbound], outcomes: list, now: str) -> None:
        first: dict[tuple[str, str], int] = {}
        for i, item in enumerate(items):
            if item.kind == "mint/request":
                key = (item.device_id, item.message.id)
                if key in first:
                    outcomes[i] = Outcome(stored=False)
                else:
                    first[key] = i
        if not first:
            return
        stored: set[tuple[str, str]] = set()
        rows = sorted((dev, mid, items[i].payload, "pending", now, now)
                      for (dev, mid), i in first.items())
        for chunk in _chunks(rows):
            cursor = tx.execute(
                f"INSERT INTO mint_requests (device, id, payload, status, received, updated) "
                f"VALUES {_values(len(chunk), 6)} ON CONFLICT (device, id) DO NOTHING "
                "RETURNING device, id", [v for row in chunk for v in row])
            stored.update((dev, mid) for dev, mid in cursor.fetchall())
        again = [key for key in first if key not in stored]
        existing = {(row.device, row.id): row for row in self._mint_rows(tx, again)}
        for key, i in first.items():  # a duplicate carries its row: its result is sent again
            outcomes[i] = Outcome(stored=key in stored, mint=existing.get(key))

    def _devices(self, tx: Tx, items: Sequence[Inbound], now: str) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for item in items:  # in arrival order: the last word of each kind wins
            seen = latest.setdefault(item.device_id, {"status": "online", "version": None,
                                                      "telemetry": None, "reported": None})
            message = item.message
            if isinstance(message, Status):
                seen["status"] = message.state
                seen["version"] = message.version or seen["version"]
            else:
                seen["status"] = "online"  # it just spoke, so it is connected
                if isinstance(message, Telemetry):
                    seen["telemetry"] = item.payload
                elif isinstance(message, ConfigReported):
                    seen["reported"] = item.payload
        if not latest:
            return
        rows = [(dev, now, now, s["status"], s["version"], s["telemetry"],
                 now if s["telemetry"] else None, s["reported"], now if s["reported"] else None)
                for dev, s in sorted(latest.items())]
        tx.execute(
            "INSERT INTO devices (id, first_seen, last_seen, status, version, telemetry, "
            f"telemetry_at, reported, reported_at) VALUES {_values(len(rows), 9)} "
            "ON CONFLICT (id) DO UPDATE SET "
            "first_seen = COALESCE(devices.first_seen, excluded.first_seen), "
            "last_seen = CASE WHEN devices.last_seen IS NULL "
            "  OR excluded.last_seen > devices.last_seen "
            "  THEN excluded.last_seen ELSE devices.last_seen END, "
            "status = excluded.status, "
            "version = COALESCE(excluded.version, devices.version), "
            "telemetry = COALESCE(excluded.telemetry, devices.telemetry), "
            "telemetry_at = COALESCE(excluded.telemetry_at, devices.telemetry_at), "
            "reported = COALESCE(excluded.reported, devices.reported), "
            "reported_at = COALESCE(excluded.reported_at, devices.reported_at)",
            [v for row in rows for v in row])

    # --- mint requests ------------------------------------------------------------------------

    def _mint_rows(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> list[MintRow]:
        rows: list[MintRow] = []
        for chunk in _chunks(sorted(set(keys))):
            where = " OR ".join(["(device = ? AND id = ?)"] * len(chunk))
            cursor = tx.execute(f"SELECT {', '.join(MINT_COLUMNS)} FROM mint_requests "
                                f"WHERE {where}", [v for key in chunk for v in key])
            rows += [MintRow(*row) for row in cursor.fetchall()]
        return rows

    def mint(self, device_id: str, request_id: str) -> MintRow | None:
        with self.transaction(write=False) as tx:
            rows = self._mint_rows(tx, [(device_id, request_id)])
        return rows[0] if rows else None

    def mints(self, status: str | None = None, limit: int = 1000) -> list[MintRow]:
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        with self.transaction(write=False) as tx:
            cursor = tx.execute(f"SELECT {', '.join(MINT_COLUMNS)} FROM mint_requests {where} "
                                "ORDER BY received, device, id LIMIT ?", [*params, limit])
            return [MintRow(*row) for row in cursor.fetchall()]

    def claim_mint(self, device_id: str, request_id: str, owner: str, now: str,
                   stale_before: str) -> MintRow | None:
        """Take a pending request for ``owner``, unless another relay holds a fresh claim."""
        with self.transaction() as tx:
            row = tx.execute(
                "UPDATE mint_requests SET claimed_by = ?, claimed_at = ?, "
                "attempts = attempts + 1, updated = ? WHERE device = ? AND id = ? AND "
                "status = 'pending' AND "
                "(claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?) "
                f"RETURNING {', '.join(MINT_COLUMNS)}",
                (owner, now, now, device_id, request_id, owner, stale_before)).fetchone()
        return MintRow(*row) if row else None

    def finish_mint(self, device_id: str, request_id: str, owner: str, now: str, *,
                    token_id: str | None = None, tx_hash: str | None = None,
                    contract: str | None = None, chain_id: int | None = None,
                    error: str | None = None) -> MintRow | None:
        """pending → minted (token_id given) or failed (error only); None if not ours/pending."""
        status = "minted" if token_id is not None else "failed"
        with self.transaction() as tx:
            row = tx.execute(
                "UPDATE mint_requests SET status = ?, token_id = ?, tx_hash = ?, contract = ?, "
                "chain_id = ?, error = ?, updated = ?, claimed_by = NULL, claimed_at = NULL "
                "WHERE device = ? AND id = ? AND status = 'pending' AND claimed_by = ? "
                f"RETURNING {', '.join(MINT_COLUMNS)}",
                (status, token_id, tx_hash, contract, chain_id, error, now, device_id,
                 request_id, owner)).fetchone()
        return MintRow(*row) if row else None

    def note_mint_error(self, device_id: str, request_id: str, owner: str, now: str,
                        error: str) -> None:
        """A transient failure: stays pending (and claimed) for the next try; shown by the CLI."""
        with self.transaction() as tx:
            tx.execute("UPDATE mint_requests SET error = ?, updated = ? WHERE device = ? AND "
                       "id = ? AND status = 'pending' AND claimed_by = ?",
                       (error[:500], now, device_id, request_id, owner))

    # --- the fleet registry -------------------------------------------------------------------

    def devices(self) -> list[DeviceRow]:
        with self.transaction(write=False) as tx:
            cursor = tx.execute(f"SELECT {', '.join(DEVICE_COLUMNS)} FROM devices ORDER BY id")
            return [DeviceRow(*row) for row in cursor.fetchall()]

    def device(self, device_id: str) -> DeviceRow | None:
        with self.transaction(write=False) as tx:
            row = tx.execute(f"SELECT {', '.join(DEVICE_COLUMNS)} FROM devices WHERE id = ?",
                             (device_id,)).fetchone()
        return DeviceRow(*row) if row else None

    def set_desired(self, device_id: str, desired_id: str, desired: str, now: str) -> None:
        with self.transaction() as tx:
            tx.execute("INSERT INTO devices (id, status, desired, desired_id, desired_at) "
                       "VALUES (?, 'unknown', ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                       "desired = excluded.desired, desired_id = excluded.desired_id, "
                       "desired_at = excluded.desired_at", (device_id, desired, desired_id, now))

    def stats(self) -> dict[str, Any]:
        """Counts for ``breathe relay stats``: nothing per person, only totals."""
        with self.transaction(write=False) as tx:
            sessions = tx.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            devices = tx.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
            mints = dict(tx.execute("SELECT status, COUNT(*) FROM mint_requests "
                                    "GROUP BY status ORDER BY status").fetchall())
            rejected = dict(tx.execute("SELECT reason, count FROM rejected "
                                       "ORDER BY reason").fetchall())
            listed, unlisted = tx.execute(
                "SELECT COUNT(*) - COUNT(unpublished), COUNT(unpublished) "
                "FROM catalog_listings").fetchone()
            catalog = {
                "published": listed, "unpublished": unlisted,
                "ratings": tx.execute("SELECT COUNT(*) FROM catalog_ratings").fetchone()[0],
                "imports": tx.execute("SELECT COUNT(*) FROM catalog_imports").fetchone()[0],
                "retracted_devices": tx.execute(
                    "SELECT COUNT(*) FROM retractions").fetchone()[0]}
        return {"sessions": sessions, "devices": devices, "mints": mints,
                "rejected": rejected, "catalog": catalog}

    def session_ids(self, device_id: str | None = None) -> list[tuple[str, str]]:
        """(device, id) of stored sessions, for checks and tests."""
        where, params = ("WHERE device = ?", [device_id]) if device_id else ("", [])
        with self.transaction(write=False) as tx:
            return [tuple(r) for r in tx.execute(
                f"SELECT device, id FROM sessions {where} ORDER BY device, id",
                params).fetchall()]
