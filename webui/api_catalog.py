"""The shared pattern catalog: browse it, import and rate listings, publish your own patterns.

Browsing asks the relay over MQTT (``SyncClient.query_catalog``, a request answered on the
device's inbox), through the daemon's sync client in ``app.config["SYNC"]``: with sync off, or
no relay answering, ``GET /api/catalog`` is 503 with a message saying which. Everything else
goes through the outbox (``device.sharing.catalog``): publish, unpublish, rate and import are
stored here at once and reach the relay when it is reachable; they need sync to be on (409
``sync_off`` otherwise), since without a relay there is no catalog to take part in.

Importing takes the entry from the catalog pages this device fetched recently, so what is
imported is exactly what the owner saw. "Try it for one minute" on the Catalog page imports
the pattern (a session must refer to a stored pattern, and keeps a snapshot of it) and then
starts a 1-minute session through ``POST /api/session``; the imported copy can be deleted
afterwards like any custom pattern.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import Field
from werkzeug.wrappers import Response

from common.errors import BadInput
from device.sharing import catalog
from device.store.errors import NotFound
from device.store.patterns_repo import PatternRecord, find_pattern, list_patterns
from device.sync.inbox import RelayUnavailable
from webui import api_error, bad_input_error, get_db
from webui.api_models import Out, PatternDetail, reply
from webui.auth import current_owner, login_required
from webui.openapi import documented
from webui.payloads import Body, Query
from wire import protocol
from wire.patterns import Pattern

bp = Blueprint("api_catalog", __name__, url_prefix="/api")

Category = Literal["stress", "sleep", "energy", "focus"]
Sort = Literal["newest", "most_imported", "top_rated", "shortest_cycle", "longest_cycle"]
_LISTING_ID = re.compile(protocol.MESSAGE_ID_PATTERN)
SYNC_OFF = ("sync is off on this device, so there is no shared catalog to take part in; "
            "whoever set up the device can turn sync on in its configuration")
NO_SYNC_CLIENT = ("the catalog is reached through the device's sync client, which is not "
                  "running in this web app (start the device with 'breathe run')")


# -- models ---------------------------------------------------------------------------------

class CatalogQueryArgs(Query):
    text: str | None = Field(None, max_length=64, description="Words in the name, "
                                                              "description or tags")
    category: Category | None = Field(None, description="Only this category")
    sort: Sort = Field("newest", description="Order of the listings")
    page: int = Field(1, ge=1, le=1000, description="Page number, from 1")
    page_size: int = Field(20, ge=1, le=50, description="Listings per page")


class CatalogItem(Out):
    listing_id: str
    creator: str = Field(description="The display name the creator chose")
    pattern: Pattern
    cycle_s: float
    category: Category
    tags: list[str]
    content_hash: str
    created: datetime
    imports: int
    rating: float | None = Field(description="Average stars, or null before any rating")
    ratings: int
    token_id: str | None = Field(description="Minted as an original: its token id")
    mine: bool = Field(description="Published from this device")
    imported_pattern_id: str | None = Field(description="The local copy, if imported")
    my_rating: int | None = Field(description="This device's stars for it, or null")


class CatalogPageOut(Out):
    """One page of the shared catalog, as the relay answered it."""

    items: list[CatalogItem]
    total: int
    page: int
    page_size: int


class Imported(Out):
    """The local pattern made from a listing (or made before, when imported already)."""

    created: bool = Field(description="False: it was imported before; nothing new was sent")
    pattern: PatternDetail


class RateBody(Body):
    stars: int = Field(ge=1, le=5, description="1–5; a second rating replaces the first")


class Rated(Out):
    listing_id: str
    stars: int


class PublishBody(Body):
    """Share a custom pattern in the catalog (public true) or withdraw it (public false)."""

    public: bool
    category: Category | None = Field(None, description="Required the first time a pattern "
                                                        "is published; kept afterwards")
    tags: list[str] | None = Field(None, max_length=catalog.MAX_TAGS,
                                   description=catalog.ALLOWED_TAGS + "; left out: kept")


class PublishState(Out):
    """A custom pattern's place in the shared catalog."""

    pattern_id: str
    name: str
    public: bool
    category: Category | None
    tags: list[str]
    listing_id: str | None = Field(description="Its id in the catalog while listed")
    imported_from: str | None = Field(description="The listing it was imported from")


class PublishList(Out):
    patterns: list[PublishState]


# -- helpers --------------------------------------------------------------------------------

def _owner_id() -> str | None:
    owner = current_owner()
    return owner.profile.id if owner else None


def _sync_client() -> Any:
    """The daemon's sync client, or RelayUnavailable saying why there is none."""
    if not current_app.config["SYNC_ENABLED"]:
        raise RelayUnavailable(SYNC_OFF)
    client = current_app.config.get("SYNC")
    if client is None:
        raise RelayUnavailable(NO_SYNC_CLIENT)
    return client


def _sync_off() -> Response | None:
    if not current_app.config["SYNC_ENABLED"]:
        return api_error(409, "sync_off", SYNC_OFF)
    return None


def _unavailable(exc: RelayUnavailable) -> Response:
    return api_error(503, "catalog_unavailable", str(exc))


def _listing_id(listing_id: str) -> str:
    if not _LISTING_ID.match(listing_id):
        raise NotFound(f"listing_id: no listing with id {listing_id!r}; GET /api/catalog "
                       "lists them")
    return listing_id


def _own_custom(pattern_id: str) -> PatternRecord:
    record = find_pattern(get_db(), pattern_id)
    if record is None or record.built_in or record.owner not in (None, _owner_id()):
        raise NotFound(f"pattern_id: no custom pattern of yours with id {pattern_id!r}; GET "
                       "/api/patterns lists them")
    return record


def _state(record: PatternRecord) -> PublishState:
    return PublishState(pattern_id=record.id, name=record.pattern.name,
                        public=record.is_public and record.listing_id is not None,
                        category=record.category,  # type: ignore[arg-type]
                        tags=list(record.tags), listing_id=record.listing_id,
                        imported_from=record.imported_from)


# -- views ----------------------------------------------------------------------------------

@bp.get("/catalog")
@login_required
@documented("browse catalog", tag="catalog", query=CatalogQueryArgs,
            responses={200: CatalogPageOut}, errors=(503,),
            description="A page of the fleet's shared patterns, asked of the relay now. 503 "
                        "when sync is off, the sync client is not running or the relay does "
                        "not answer in time.")
def browse(query: CatalogQueryArgs) -> Response:
    try:
        page = _sync_client().query_catalog(protocol.CatalogQuery(
            id=catalog.new_id(), **query.model_dump()))
    except RelayUnavailable as exc:
        return _unavailable(exc)
    db = get_db()
    ratings = catalog.my_ratings(db)
    imported = catalog.imported_listings(db)
    mine = {r["listing_id"] for r in db.query(
        "SELECT listing_id FROM patterns WHERE listing_id IS NOT NULL")}
    items = [CatalogItem(**entry.model_dump(), cycle_s=entry.pattern.cycle_s,
                         mine=entry.listing_id in mine,
                         imported_pattern_id=imported.get(entry.listing_id),
                         my_rating=ratings.get(entry.listing_id)) for entry in page.items]
    return reply(CatalogPageOut(items=items, total=page.total, page=page.page,
                                page_size=query.page_size))


@bp.post("/catalog/<listing_id>/import")
@login_required
@documented("import listing", tag="catalog", responses={201: Imported, 200: Imported},
            errors=(409, 503),
            description="Store a listing as your own custom pattern (validated like any "
                        "other; the name gets a suffix if you have one like it). 201: made "
                        "now; 200: imported before. The listing must be on a catalog page "
                        "this device fetched recently (404 otherwise: browse first).")
def import_listing(listing_id: str) -> Response:
    listing_id = _listing_id(listing_id)
    refused = _sync_off()
    if refused is not None:
        return refused
    db = get_db()
    existing = catalog.imported_listings(db).get(listing_id)
    entry = None
    if existing is None:
        try:
            entry = _sync_client().catalog_seen.get(listing_id)
        except RelayUnavailable as exc:
            return _unavailable(exc)
        if entry is None:
            raise NotFound(f"listing_id: listing {listing_id!r} is not on a catalog page this "
                           "device fetched recently; open the Catalog and try again")
    if entry is None:
        record, created = find_pattern(db, existing), False  # type: ignore[arg-type]
        assert record is not None
    else:
        try:
            record, created = catalog.import_entry(
                db, entry, device_id=current_app.config["DEVICE_ID"], owner=_owner_id())
        except BadInput as exc:  # your own listing, or no free name for it
            return bad_input_error(exc, 409, "conflict")
    return reply(Imported(created=created, pattern=PatternDetail(**record.detail())),
                 201 if created else 200)


@bp.post("/catalog/<listing_id>/rate")
@login_required
@documented("rate listing", tag="catalog", body=RateBody, responses={200: Rated},
            errors=(409,),
            description="1–5 stars, once per device: a second rating replaces the first. "
                        "409 for your own listing or with sync off.")
def rate(listing_id: str, body: RateBody) -> Response:
    listing_id = _listing_id(listing_id)
    refused = _sync_off()
    if refused is not None:
        return refused
    try:
        stars = catalog.rate(get_db(), listing_id, body.stars,
                             device_id=current_app.config["DEVICE_ID"])
    except BadInput as exc:
        return bad_input_error(exc, 409, "conflict")
    return reply(Rated(listing_id=listing_id, stars=stars))


@bp.get("/catalog/mine")
@login_required
@documented("my shared patterns", tag="catalog", responses={200: PublishList},
            description="Your custom patterns and whether each is listed in the catalog.")
def mine() -> Response:
    records = [r for r in list_patterns(get_db(), owner=_owner_id(), include_public=False)
               if not r.built_in]
    return reply(PublishList(patterns=[_state(r) for r in records]))


@bp.put("/patterns/<pattern_id>/publish")
@login_required
@documented("publish pattern", tag="catalog", body=PublishBody, responses={200: PublishState},
            errors=(409,),
            description="public true lists a custom pattern of yours in the shared catalog "
                        "(again, when it is listed: category and tags are updated); public "
                        "false withdraws it. Only the pattern, your display name, the "
                        "category and the tags leave the device. 409 with sync off, or for a "
                        "pattern imported from the catalog.")
def publish(pattern_id: str, body: PublishBody) -> Response:
    record = _own_custom(pattern_id)
    db = get_db()
    if not body.public:
        return reply(_state(catalog.unpublish(db, record.id)))
    refused = _sync_off()
    if refused is not None:
        return refused
    category = body.category or record.category
    if category is None:
        return api_error(400, "invalid", "required to publish a pattern: choose stress, "
                                         "sleep, energy or focus", "category")
    tags = record.tags if body.tags is None else body.tags
    try:
        stored = catalog.publish(db, record.id, device_id=current_app.config["DEVICE_ID"],
                                 category=category, tags=tags)
    except BadInput as exc:
        text = str(exc)
        status = 400 if text.startswith(("tags", "category")) else 409
        return bad_input_error(exc, status, "invalid" if status == 400 else "conflict")
    return reply(_state(stored))
