"""The device's side of the shared pattern catalog (issue 7): what leaves, and only by choice.

Every change that must reach the relay is written to the outbox in the same transaction as the
change itself, and is acked by id like a session:

- making a custom pattern public enqueues a :class:`~wire.protocol.PatternListing`
  (creator = the owner's display name, ``content_hash`` = :func:`protocol.content_hash`);
  editing a listed pattern lists it again; making it private or deleting it enqueues a
  :class:`~wire.protocol.PatternUnlisting`;
- rating a listing enqueues a :class:`~wire.protocol.PatternRating`; one rating per
  listing is kept here, and a second one replaces the first (an earlier rating not yet sent is
  dropped from the outbox: only the owner's latest choice goes);
- importing a catalog entry stores a custom pattern (validated like any other) and enqueues a
  :class:`~wire.protocol.PatternImported`; importing the same listing again does not;
- deleting the account enqueues a :class:`~wire.protocol.Retraction` tombstone.

Listing ids: the relay's ack carries no data, so a creator's device must know its listings'
ids without being told. :func:`protocol.listing_id_for` derives one from the device id and
the pattern's id on the device (``pattern_key``); the relay uses the same rule.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from common.errors import BadInput
from device.store.db import timestamp, write_transaction
from device.store.outbox_repo import Outgoing, enqueue
from device.store.patterns_repo import (
    PatternRecord,
    add_pattern,
    get_pattern,
    remove_pattern,
    replace_pattern,
)
from wire import protocol
from wire.patterns import NAME_MAX, Pattern

CATEGORIES = protocol.CATEGORIES
MAX_TAGS = 8
_TAG = re.compile(protocol.TAG_PATTERN)
ALLOWED_TAGS = (f"up to {MAX_TAGS} tags of 1–24 lowercase letters, digits, spaces or '-', "
                "starting with a letter or digit")


def new_id() -> str:
    return uuid.uuid4().hex


def _outgoing(device_id: str, subtopic: str, message: protocol.Message) -> Outgoing:
    return Outgoing(topic=protocol.topic(device_id, subtopic),
                    payload=message.model_dump(mode="json", by_alias=True),
                    message_id=message.id)


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags as the catalog takes them: trimmed, lower case, no repeats, in the order given."""
    cleaned: list[str] = []
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise BadInput(f"tags.{i}: must be text (got {tag!r}; allowed {ALLOWED_TAGS})")
        value = " ".join(tag.split()).lower()
        if not _TAG.match(value):
            raise BadInput(f"tags.{i}: not a valid tag (got {tag!r}; allowed {ALLOWED_TAGS})")
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_TAGS:
        raise BadInput(f"tags: too many ({len(cleaned)}; allowed {ALLOWED_TAGS})")
    return tuple(cleaned)


def creator_name(db: Database, record: PatternRecord) -> str:
    """The display name the owner chose: the pattern owner's profile, or (a pattern of the
    device itself) the device owner's."""
    rows = list(db.query("SELECT display_name FROM profiles WHERE id IS ? UNION ALL "
                         "SELECT display_name FROM profiles", [record.owner]))
    if not rows:
        raise BadInput("publish: nobody owns this device yet, so there is no creator name "
                       "to list the pattern under; claim the device first")
    return rows[0]["display_name"][:64]


def listing_message(db: Database, record: PatternRecord, device_id: str) -> protocol.PatternListing:
    """The listing for ``record`` as it is stored now."""
    pattern = Pattern.model_validate(record.pattern.model_dump())
    return protocol.PatternListing(
        id=new_id(), device_id=device_id, pattern_key=record.id,
        creator=creator_name(db, record), pattern=pattern,
        category=record.category,  # type: ignore[arg-type]
        tags=record.tags, content_hash=protocol.content_hash(pattern))


def publish(db: Database, pattern_id: str, *, device_id: str, category: str,
            tags: Iterable[str] = (), now: datetime | None = None) -> PatternRecord:
    """Make a custom pattern public and list it (again, with this category and these tags)."""
    if category not in CATEGORIES:
        raise BadInput(f"category: not a catalog category (got {category!r}; allowed "
                       f"{', '.join(CATEGORIES)})")
    cleaned = clean_tags(tags)
    protocol.topic(device_id)  # a device id the wire accepts, before anything is written
    with write_transaction(db):
        record = get_pattern(db, pattern_id)
        if record.built_in:
            raise BadInput(f"pattern: {pattern_id!r} is a built-in; only your own patterns "
                           "can be published (allowed: custom patterns)")
        if record.imported_from is not None:
            raise BadInput(f"pattern: {pattern_id!r} was imported from the catalog (listing "
                           f"{record.imported_from}); only patterns you made can be published")
        if record.listed_by not in (None, device_id):
            _unlist(db, record)  # listed under an earlier device id: withdraw that listing
        db["patterns"].update(pattern_id, {
            "is_public": 1, "category": category, "tags": json.dumps(list(cleaned)),
            "listing_id": protocol.listing_id_for(device_id, pattern_id), "listed_by": device_id,
            "updated": timestamp(now)})
        record = get_pattern(db, pattern_id)
        enqueue(db, _outgoing(device_id, protocol.CATALOG_PUBLISH,
                              listing_message(db, record, device_id)), now=now)
    return record


def unpublish(db: Database, pattern_id: str, *, now: datetime | None = None) -> PatternRecord:
    """Make a pattern private again; a listed one is withdrawn from the catalog. Its category
    and tags are kept for the next time it is published."""
    with write_transaction(db):
        record = get_pattern(db, pattern_id)
        if record.built_in:
            raise BadInput(f"pattern: {pattern_id!r} is a built-in and cannot be unpublished "
                           "(allowed: custom patterns)")
        _unlist(db, record)
        db["patterns"].update(pattern_id, {"is_public": 0, "listing_id": None,
                                           "listed_by": None, "updated": timestamp(now)})
        return get_pattern(db, pattern_id)


def _unlist(db: Database, record: PatternRecord) -> None:
    if record.listing_id is None or record.listed_by is None:
        return
    message = protocol.PatternUnlisting(id=new_id(), device_id=record.listed_by,
                                        pattern_key=record.id)
    enqueue(db, _outgoing(record.listed_by, protocol.CATALOG_UNPUBLISH, message))


def follow_edit(db: Database, record: PatternRecord, *, now: datetime | None = None) -> None:
    """After an edit (inside its transaction): a listed pattern is listed again as it is now."""
    if record.listing_id is not None and record.listed_by is not None:
        enqueue(db, _outgoing(record.listed_by, protocol.CATALOG_PUBLISH,
                              listing_message(db, record, record.listed_by)), now=now)


def follow_delete(db: Database, record: PatternRecord) -> None:
    """With a delete (inside its transaction): a listed pattern leaves the catalog too."""
    _unlist(db, record)


def update_pattern(db: Database, pattern_id: str, pattern: Pattern, *,
                   is_public: bool | None = None, now: datetime | None = None) -> PatternRecord:
    """Replace a custom pattern's content; a pattern listed in the shared catalog is listed
    again with the new content, in the same transaction."""
    with write_transaction(db):
        updated = replace_pattern(db, pattern_id, pattern, is_public=is_public, now=now)
        follow_edit(db, updated, now=now)
    return updated


def delete_pattern(db: Database, pattern_id: str) -> None:
    """Delete a custom pattern; a listed one is withdrawn from the catalog in the same
    transaction."""
    with write_transaction(db):
        follow_delete(db, remove_pattern(db, pattern_id))


# -- ratings --------------------------------------------------------------------------------

def own_listing(db: Database, listing_id: str) -> PatternRecord | None:
    rows = list(db.query("SELECT id FROM patterns WHERE listing_id = ?", [listing_id]))
    return get_pattern(db, rows[0]["id"]) if rows else None


def rate(db: Database, listing_id: str, stars: int, *, device_id: str,
         now: datetime | None = None) -> int:
    """Rate a listing 1–5 (this device's one rating of it; a second replaces the first).
    Returns the stars stored."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise BadInput(f"stars: must be a whole number from 1 to 5 (got {stars!r})")
    message = protocol.PatternRating(id=new_id(), device_id=device_id, listing_id=listing_id,
                                     stars=stars)
    with write_transaction(db):
        if own_listing(db, listing_id) is not None:
            raise BadInput(f"listing_id: {listing_id} is your own pattern; rate other "
                           "people's patterns")
        previous = list(db.query("SELECT message_id FROM catalog_ratings WHERE listing_id = ?",
                                 [listing_id]))
        if previous:  # not sent yet? then only the new choice goes
            db.execute("DELETE FROM outbox WHERE id = ? AND refused IS NULL",
                       [previous[0]["message_id"]])
        db.execute("INSERT INTO catalog_ratings (listing_id, stars, message_id, rated) "
                   "VALUES (?, ?, ?, ?) ON CONFLICT (listing_id) DO UPDATE SET "
                   "stars = excluded.stars, message_id = excluded.message_id, "
                   "rated = excluded.rated", [listing_id, stars, message.id, timestamp(now)])
        enqueue(db, _outgoing(device_id, protocol.CATALOG_RATE, message), now=now)
    return stars


def my_ratings(db: Database) -> dict[str, int]:
    """This device's rating per listing id."""
    return {r["listing_id"]: r["stars"] for r in
            db.query("SELECT listing_id, stars FROM catalog_ratings")}


# -- imports --------------------------------------------------------------------------------

def imported_listings(db: Database) -> dict[str, str]:
    """listing id → id of the local pattern imported from it."""
    return {r["imported_from"]: r["id"] for r in db.query(
        "SELECT id, imported_from FROM patterns WHERE imported_from IS NOT NULL")}


def _free_name(db: Database, name: str, creator: str, owner: str | None) -> str:
    """``name``, or ``name (creator)``, or ``name (2)``...: one no pattern of this owner (nor a
    built-in) has."""
    def taken(candidate: str) -> bool:
        return bool(list(db.query(
            "SELECT 1 FROM patterns WHERE lower(name) = lower(?) AND (built_in = 1 "
            "OR owner IS ?)", [candidate, owner])))

    def fit(base: str, suffix: str) -> str:
        return base[:NAME_MAX - len(suffix)].rstrip() + suffix

    candidates = [name, fit(name, f" ({creator[:20]})")]
    candidates += [fit(name, f" ({n})") for n in range(2, 100)]
    for candidate in candidates:
        if not taken(candidate):
            return candidate
    raise BadInput(f"name: every variant of {name!r} is taken; rename one of your patterns")


def import_entry(db: Database, entry: protocol.CatalogEntry, *, device_id: str,
                 owner: str | None, now: datetime | None = None) -> tuple[PatternRecord, bool]:
    """Store a catalog entry as a custom pattern of ``owner`` and tell the relay (once).

    Returns (the local pattern, whether it was created now): a listing imported before
    returns the pattern made then."""
    # validated again like any custom pattern, whatever the relay let through
    pattern = Pattern.model_validate(entry.pattern.model_dump())
    message = protocol.PatternImported(id=new_id(), device_id=device_id,
                                       listing_id=entry.listing_id)
    with write_transaction(db):
        existing = imported_listings(db).get(entry.listing_id)
        if existing is not None:
            return get_pattern(db, existing), False
        if own_listing(db, entry.listing_id) is not None:
            raise BadInput(f"listing_id: {entry.listing_id} is your own pattern; it is on "
                           "this device already")
        name = _free_name(db, pattern.name, entry.creator, owner)
        record = add_pattern(db, pattern.model_copy(update={"name": name}), owner=owner,
                             imported_from=entry.listing_id, now=now)
        enqueue(db, _outgoing(device_id, protocol.CATALOG_IMPORTED, message), now=now)
    return record, True


# -- account deletion -------------------------------------------------------------------------

def enqueue_retraction(db: Database, device_id: str, *, now: datetime | None = None) -> str:
    """The tombstone for a deleted account (joins the caller's transaction): the relay
    unpublishes this device's patterns and drops its analytics. Returns the message id."""
    message = protocol.Retraction(id=new_id(), device_id=device_id)
    return enqueue(db, _outgoing(device_id, protocol.RETRACT, message), now=now)


# -- what the device has seen of the catalog ------------------------------------------------------

@dataclass
class SeenEntries:
    """The catalog entries of recent query answers, newest kept (bounded): importing takes the
    entry from here, so the device imports exactly what the relay showed."""

    limit: int = 1000

    def __post_init__(self) -> None:
        self._entries: OrderedDict[str, protocol.CatalogEntry] = OrderedDict()
        self._lock = threading.Lock()  # web requests run in threads

    def remember(self, entries: Iterable[protocol.CatalogEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._entries[entry.listing_id] = entry
                self._entries.move_to_end(entry.listing_id)
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)

    def get(self, listing_id: str) -> protocol.CatalogEntry | None:
        with self._lock:
            return self._entries.get(listing_id)
