"""The shared pattern catalog in the relay store: listings, ratings, imports, retractions, and
the relay-side rules for minting a pattern as an original. Same SQL on SQLite and PostgreSQL.

Catalog messages are applied one by one in arrival order inside the consumer's batch
transaction (:meth:`RelayStore.record`), so a publish and an unpublish in one batch end as the
device meant. Each message id is applied once (``catalog_messages`` remembers it and any
refusal), so a re-sent message changes nothing and gets the same answer.

Analytics (for ``breathe relay report``): use :func:`analytics_sessions` — it returns only
sessions whose payload says ``"analytics": true`` and that were received *after* the device's
latest retraction, if any (a device wiped by its owner and claimed again by someone who
allows analytics counts again from then on).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from relay.store.rows import MINT_COLUMNS, MintRow, Outcome, Tx, timestamp
from relay.validate import CATALOG, Inbound
from wire import protocol
from wire.protocol import (
    CatalogEntry,
    CatalogQuery,
    PatternImported,
    PatternListing,
    PatternMintRequest,
    PatternRating,
    PatternUnlisting,
)

if TYPE_CHECKING:
    from relay.store.store import RelayStore

PATTERN = "pattern"  # mint_requests.kind of a pattern mint request


def apply(tx: Tx, items: Sequence[Inbound], outcomes: list, now: str) -> None:
    """Apply the batch's catalog messages and pattern mint requests; fills their outcomes."""
    for i, item in enumerate(items):
        if item.kind == protocol.PATTERN_MINT_REQUEST:
            outcomes[i] = _pattern_mint(tx, item, now)
        elif item.kind in CATALOG:
            claimed = tx.execute(
                "INSERT INTO catalog_messages (device, id, kind, received) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (device, id) DO NOTHING RETURNING id",
                (item.device_id, item.message.id, item.kind, now)).fetchone()
            if claimed is None:  # applied before: the same answer again
                error = tx.execute("SELECT error FROM catalog_messages WHERE device = ? AND "
                                   "id = ?", (item.device_id, item.message.id)).fetchone()[0]
                outcomes[i] = Outcome(stored=False, error=error)
                continue
            error = _HANDLERS[item.kind](tx, item.device_id, item.message, now)
            if error is not None:
                tx.execute("UPDATE catalog_messages SET error = ? WHERE device = ? AND id = ?",
                           (error[:500], item.device_id, item.message.id))
            outcomes[i] = Outcome(stored=True, error=error)


# --- one handler per kind: None when applied, else why it was refused --------------------------

def _listing(tx: Tx, listing_id: str) -> tuple[str, str, str | None] | None:
    """(device, content_hash, unpublished) of a listing, or None."""
    return tx.execute("SELECT device, content_hash, unpublished FROM catalog_listings "
                      "WHERE listing_id = ?", (listing_id,)).fetchone()


def _publish(tx: Tx, device: str, message: PatternListing, now: str) -> str | None:
    pattern = message.pattern
    old = tx.execute("SELECT listing_id, content_hash FROM catalog_listings WHERE device = ? "
                     "AND pattern_key = ?", (device, message.pattern_key)).fetchone()
    if old is not None and old[1] != message.content_hash and _original(tx, old[1]):
        return (f"listing {old[0]} is minted as a token, so its phases cannot change; publish "
                "the changed pattern as a new one")
    cycle = pattern.inhale + pattern.hold_in + pattern.exhale + pattern.hold_out
    search = "\n".join((pattern.name, pattern.description, *message.tags)).casefold()
    tx.execute(
        "INSERT INTO catalog_listings (listing_id, device, pattern_key, creator, pattern, "
        "category, tags, content_hash, cycle_s, search, created, updated, unpublished) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) "
        "ON CONFLICT (device, pattern_key) DO UPDATE SET creator = excluded.creator, "
        "pattern = excluded.pattern, category = excluded.category, tags = excluded.tags, "
        "content_hash = excluded.content_hash, cycle_s = excluded.cycle_s, "
        "search = excluded.search, updated = excluded.updated, unpublished = NULL",
        (protocol.listing_id_for(device, message.pattern_key), device, message.pattern_key,
         message.creator,
         pattern.model_dump_json(), message.category, json.dumps(list(message.tags)),
         message.content_hash, cycle, search, now, now))
    return None


def _unpublish(tx: Tx, device: str, message: PatternUnlisting, now: str) -> None:
    """Withdrawing what is not (or no longer) listed is not an error: the result is the same."""
    tx.execute("UPDATE catalog_listings SET unpublished = ?, updated = ? WHERE device = ? AND "
               "pattern_key = ? AND unpublished IS NULL", (now, now, device, message.pattern_key))


def _rate(tx: Tx, device: str, message: PatternRating, now: str) -> str | None:
    listing = _listing(tx, message.listing_id)
    if listing is None or listing[2] is not None:
        return f"listing {message.listing_id} is not in the catalog (unknown or unpublished)"
    if listing[0] == device:
        return f"listing {message.listing_id} is this device's own pattern; creators cannot " \
               "rate their own"
    tx.execute("INSERT INTO catalog_ratings (listing_id, device, stars, updated) VALUES "
               "(?, ?, ?, ?) ON CONFLICT (listing_id, device) DO UPDATE SET "
               "stars = excluded.stars, updated = excluded.updated",
               (message.listing_id, device, message.stars, now))
    return None


def _imported(tx: Tx, device: str, message: PatternImported, now: str) -> str | None:
    """Counted once per device; an import that crossed an unpublish still counts."""
    listing = _listing(tx, message.listing_id)
    if listing is None:
        return f"listing {message.listing_id} is not in the catalog"
    if listing[0] == device:
        return f"listing {message.listing_id} is this device's own pattern; not an import"
    tx.execute("INSERT INTO catalog_imports (listing_id, device, imported) VALUES (?, ?, ?) "
               "ON CONFLICT (listing_id, device) DO NOTHING", (message.listing_id, device, now))
    return None


def _retract(tx: Tx, device: str, message: Any, now: str) -> None:
    retract_in(tx, device, message.id, now)


_HANDLERS = {protocol.CATALOG_PUBLISH: _publish, protocol.CATALOG_UNPUBLISH: _unpublish,
             protocol.CATALOG_RATE: _rate, protocol.CATALOG_IMPORTED: _imported,
             protocol.RETRACT: _retract}


# --- retraction (the owner deleted the account) ------------------------------------------------

def retract_in(tx: Tx, device: str, message_id: str, now: str) -> None:
    """Unpublish every listing of ``device``, drop the ratings and imports it gave, drop its
    last telemetry (the fleet health report reads it) and record the tombstone: its sessions
    received up to ``now`` leave analytics. Repeating it changes nothing that is visible."""
    tx.execute("UPDATE catalog_listings SET unpublished = ?, updated = ? WHERE device = ? AND "
               "unpublished IS NULL", (now, now, device))
    tx.execute("DELETE FROM catalog_ratings WHERE device = ?", (device,))
    tx.execute("DELETE FROM catalog_imports WHERE device = ?", (device,))
    tx.execute("INSERT INTO retractions (device, message_id, retracted) VALUES (?, ?, ?) "
               "ON CONFLICT (device) DO UPDATE SET message_id = excluded.message_id, "
               "retracted = CASE WHEN excluded.retracted > retractions.retracted "
               "THEN excluded.retracted ELSE retractions.retracted END",
               (device, message_id, now))
    tx.execute("UPDATE devices SET telemetry = NULL, telemetry_at = NULL WHERE id = ?",
               (device,))


def retract_device(store: RelayStore, device_id: str, *, message_id: str = "operator",
                   now: str | None = None) -> None:
    """Apply a retraction outside MQTT (an operator, a test); same effect as ``retract``."""
    with store.transaction() as tx:
        retract_in(tx, device_id, message_id, now or timestamp())


def retracted_devices(store: RelayStore) -> dict[str, str]:
    """device → when its latest retraction was applied (ISO UTC)."""
    with store.transaction(write=False) as tx:
        return dict(tx.execute("SELECT device, retracted FROM retractions").fetchall())


ANALYTICS_SQL = (
    "SELECT s.device, s.id, s.payload, s.received FROM sessions s "
    "LEFT JOIN retractions r ON r.device = s.device "
    "WHERE (r.device IS NULL OR s.received > r.retracted) AND s.received >= ? "
    "ORDER BY s.received, s.device, s.id")


def analytics_sessions(store: RelayStore, *, since: str = "") -> list[tuple[str, str, dict]]:
    """(device, id, payload dict) of every session the fleet's analytics may count: received
    at or after ``since`` (ISO UTC; default all), not retracted, payload ``analytics`` true."""
    with store.transaction(write=False) as tx:
        rows = tx.execute(ANALYTICS_SQL, (since,)).fetchall()
    out = []
    for device, message_id, payload, _received in rows:
        data = json.loads(payload)
        if data.get("analytics") is True:
            out.append((device, message_id, data))
    return out


# --- pattern mint requests: the relay's friendly early refusals --------------------------------

def _original(tx: Tx, content_hash: str) -> tuple[str, str, str] | None:
    """(device, listing_id, status) of the pattern minted (or being minted) with this hash."""
    return tx.execute("SELECT device, listing_id, status FROM mint_requests WHERE kind = ? AND "
                      "content_hash = ? AND status <> 'failed'",
                      (PATTERN, content_hash)).fetchone()


def _mint_refusal(tx: Tx, device: str, request: PatternMintRequest) -> str | None:
    listing = _listing(tx, request.listing_id)
    if listing is None:
        return f"listing {request.listing_id} is not in the catalog"
    creator, content_hash, unpublished = listing
    if creator != device:
        return f"only the device that published listing {request.listing_id} may mint it"
    if unpublished is not None:
        return f"listing {request.listing_id} is unpublished; publish it again to mint it"
    if request.content_hash != content_hash:
        return (f"content_hash does not match listing {request.listing_id}'s pattern (it was "
                "re-published with other phases?)")
    original = _original(tx, content_hash)
    if original is not None:
        if original[1] == request.listing_id:
            return f"listing {request.listing_id} is already minted (or being minted)"
        return (f"a pattern with the same phases is already minted as an original (listing "
                f"{original[1]}); a copy cannot be minted again")
    return None


def _pattern_mint(tx: Tx, item: Inbound, now: str) -> Outcome:
    request = item.message
    assert isinstance(request, PatternMintRequest)
    columns = ", ".join(MINT_COLUMNS)
    row = tx.execute(f"SELECT {columns} FROM mint_requests WHERE device = ? AND id = ?",
                     (item.device_id, request.id)).fetchone()
    if row is not None:
        return Outcome(stored=False, mint=MintRow(*row))
    error = _mint_refusal(tx, item.device_id, request)
    row = tx.execute(
        "INSERT INTO mint_requests (device, id, payload, status, received, updated, error, "
        "kind, listing_id, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        f"RETURNING {columns}",
        (item.device_id, request.id, item.payload, "failed" if error else "pending", now, now,
         error, PATTERN, request.listing_id, request.content_hash)).fetchone()
    return Outcome(stored=True, mint=MintRow(*row))


def listing_of_mint(store: RelayStore, row: MintRow) -> CatalogEntry | None:
    """The listing a pattern mint request is for (its pattern goes into the token)."""
    request = protocol.decode(PatternMintRequest, row.payload)
    with store.transaction(write=False) as tx:
        found = tx.execute(f"SELECT {_ENTRY} FROM catalog_listings l WHERE l.listing_id = ?",
                           (request.listing_id,)).fetchone()
    return _entry(found) if found else None


# --- browsing ----------------------------------------------------------------------------------

_ENTRY = (
    "l.listing_id, l.creator, l.pattern, l.category, l.tags, l.content_hash, l.created, "
    "l.cycle_s, "
    "(SELECT COUNT(*) FROM catalog_imports i WHERE i.listing_id = l.listing_id) AS imports, "
    "(SELECT AVG(stars) FROM catalog_ratings r WHERE r.listing_id = l.listing_id) AS rating, "
    "(SELECT COUNT(*) FROM catalog_ratings r WHERE r.listing_id = l.listing_id) AS ratings, "
    "(SELECT MAX(m.token_id) FROM mint_requests m WHERE m.kind = 'pattern' AND "
    " m.listing_id = l.listing_id AND m.status = 'minted') AS token_id")

_ORDER = {
    "newest": "created DESC, listing_id",
    "most_imported": "imports DESC, created DESC, listing_id",
    "top_rated": "(CASE WHEN rating IS NULL THEN 1 ELSE 0 END), rating DESC, ratings DESC, "
                 "created DESC, listing_id",
    "shortest_cycle": "cycle_s ASC, created DESC, listing_id",
    "longest_cycle": "cycle_s DESC, created DESC, listing_id",
}


def _entry(row: Sequence[Any]) -> CatalogEntry:
    (listing_id, creator, pattern, category, tags, content_hash, created, _cycle, imports,
     rating, ratings, token_id) = row
    return CatalogEntry(
        listing_id=listing_id, creator=creator, pattern=json.loads(pattern), category=category,
        tags=tuple(json.loads(tags)), content_hash=content_hash, created=created,
        imports=int(imports), rating=None if rating is None else round(float(rating), 2),
        ratings=int(ratings), token_id=token_id)


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(store: RelayStore, query: CatalogQuery) -> tuple[list[CatalogEntry], int]:
    """One page of published listings matching ``query``, and how many match in all."""
    where, params = ["l.unpublished IS NULL"], []
    if query.text and query.text.strip():
        where.append("l.search LIKE ? ESCAPE '\\'")
        params.append(_like(query.text.strip()))
    if query.category:
        where.append("l.category = ?")
        params.append(query.category)
    condition = " AND ".join(where)
    with store.transaction(write=False) as tx:
        total = tx.execute(f"SELECT COUNT(*) FROM catalog_listings l WHERE {condition}",
                           params).fetchone()[0]
        rows = tx.execute(
            f"SELECT * FROM (SELECT {_ENTRY} FROM catalog_listings l WHERE {condition}) AS q "
            f"ORDER BY {_ORDER[query.sort]} LIMIT ? OFFSET ?",
            [*params, query.page_size, (query.page - 1) * query.page_size]).fetchall()
    return [_entry(row) for row in rows], int(total)
