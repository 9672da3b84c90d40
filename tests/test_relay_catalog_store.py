"""The catalog in the relay store, on SQLite and PostgreSQL through the same SQL: what devices
browse (filters, sorts, paging), one rating and one import per device, unpublish and retract
honoured everywhere, the analytics filter a retraction feeds, and the relay's early refusals
of pattern mints (not the creator, unpublished, a second original).

The same flows through a real broker and relay are in tests/test_relay_catalog.py."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import test_relay_store as base

from relay.fleetsim import WALLET, pattern_listing, session_message
from relay.store import Outcome, RelayStore
from relay.store.catalog import analytics_sessions, retract_device, retracted_devices, search
from relay.validate import Inbound, check
from wire import protocol
from wire.protocol import (
    CatalogQuery,
    PatternImported,
    PatternMintRequest,
    PatternRating,
    PatternUnlisting,
    Retraction,
)

# the relay store tests' fixtures: every test here runs on SQLite and on PostgreSQL
postgres, store_url, store = base.postgres, base.store_url, base.store

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
KIND = {"PatternListing": protocol.CATALOG_PUBLISH, "PatternUnlisting": protocol.CATALOG_UNPUBLISH,
        "PatternRating": protocol.CATALOG_RATE, "PatternImported": protocol.CATALOG_IMPORTED,
        "Retraction": protocol.RETRACT, "PatternMintRequest": protocol.PATTERN_MINT_REQUEST,
        "SessionMessage": protocol.SESSIONS}


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> str:
        self.at += timedelta(seconds=1)
        return self.at.isoformat(timespec="milliseconds")


@pytest.fixture
def apply(store: RelayStore):
    clock = Clock()

    def send(*messages) -> list[Outcome]:
        items = []
        for message in messages:
            result = check(f"breathe/v1/{message.device_id}/{KIND[type(message).__name__]}",
                           message.encode())
            assert isinstance(result, Inbound), result
            items.append(result)
        return store.record(items, Counter(), clock())

    send.clock = clock
    return send


def _ids(store: RelayStore, **query) -> list[str]:
    items, _ = search(store, CatalogQuery(id="q", **query))
    return [item.pattern.name for item in items]


def _listing_id(store: RelayStore, name: str) -> str:
    items, _ = search(store, CatalogQuery(id="q", text=name, page_size=50))
    return next(item.listing_id for item in items if item.pattern.name == name)


def _rate(device: str, listing_id: str, stars: int) -> PatternRating:
    return PatternRating(id=uuid.uuid4().hex, device_id=device, listing_id=listing_id,
                         stars=stars)


def _imported(device: str, listing_id: str) -> PatternImported:
    return PatternImported(id=uuid.uuid4().hex, device_id=device, listing_id=listing_id)


def _mint(device: str, listing_id: str, content_hash: str) -> PatternMintRequest:
    return PatternMintRequest(id=uuid.uuid4().hex, device_id=device, listing_id=listing_id,
                              content_hash=content_hash, wallet=WALLET)


@pytest.fixture
def catalog(store, apply):
    """Four listings from two devices, published one second apart."""
    for listing in (
            pattern_listing("kitchen", "a", name="Calm Évening", inhale=4, exhale=6,
                            category="sleep", tags=("evening", "slow")),
            pattern_listing("kitchen", "b", name="Box focus", inhale=4, hold_in=4, exhale=4,
                            hold_out=4, category="focus", tags=("box",),
                            description="Square breathing 100% of the time"),
            pattern_listing("bedroom", "c", name="Wake up", inhale=3, exhale=2,
                            category="energy", tags=()),
            pattern_listing("bedroom", "d", name="Deep sleep", inhale=4, hold_in=7, exhale=8,
                            category="sleep", tags=("night",))):
        assert apply(listing)[0].error is None
    return {name: _listing_id(store, name)
            for name in ("Calm Évening", "Box focus", "Wake up", "Deep sleep")}


def test_browsing_filters_sorts_and_pages(store, catalog, apply):
    assert _ids(store) == ["Deep sleep", "Wake up", "Box focus", "Calm Évening"]  # newest
    assert _ids(store, sort="shortest_cycle") == ["Wake up", "Calm Évening", "Box focus",
                                                  "Deep sleep"]
    assert _ids(store, sort="longest_cycle")[0] == "Deep sleep"
    assert _ids(store, category="sleep") == ["Deep sleep", "Calm Évening"]
    assert _ids(store, text="éVENING") == ["Calm Évening"]  # name, any case, not only ASCII
    assert _ids(store, text="SQUARE") == ["Box focus"]  # description
    assert _ids(store, text="night") == ["Deep sleep"]  # tag
    assert _ids(store, text="100%") == ["Box focus"]  # % is a character, not a wildcard
    assert _ids(store, text="%") == ["Box focus"]
    assert _ids(store, text="sleep", category="energy") == []
    page, total = search(store, CatalogQuery(id="q", page=2, page_size=3))
    assert total == 4 and [i.pattern.name for i in page] == ["Calm Évening"]

    for device in ("hall", "porch", "attic"):
        apply(_imported(device, catalog["Wake up"]))
    apply(_imported("hall", catalog["Box focus"]))
    apply(_rate("hall", catalog["Box focus"], 5), _rate("porch", catalog["Calm Évening"], 3))
    assert _ids(store, sort="most_imported")[:2] == ["Wake up", "Box focus"]
    assert _ids(store, sort="top_rated")[:2] == ["Box focus", "Calm Évening"]  # unrated last
    first = search(store, CatalogQuery(id="q", sort="most_imported"))[0][0]
    assert (first.imports, first.rating, first.ratings, first.creator) == (3, None, 0, "Ada")


def test_one_rating_and_one_import_per_device_the_later_rating_replacing(store, catalog,
                                                                          apply):
    box = catalog["Box focus"]
    apply(_rate("hall", box, 2), _rate("porch", box, 4))
    apply(_rate("hall", box, 5))  # hall changed its mind
    apply(_imported("hall", box), _imported("hall", box))
    apply(_imported("hall", box))
    entry = search(store, CatalogQuery(id="q", text="box focus"))[0][0]
    assert (entry.rating, entry.ratings, entry.imports) == (4.5, 2, 1)


def test_refusals_say_why_and_a_resent_message_gets_the_same_answer(store, catalog, apply):
    own = _rate("kitchen", catalog["Box focus"], 5)
    unknown = _rate("hall", "nosuchlisting", 5)
    outcomes = apply(own, unknown, _imported("kitchen", catalog["Calm Évening"]))
    assert "own pattern" in outcomes[0].error and "not in the catalog" in outcomes[1].error
    assert "own pattern" in outcomes[2].error
    again = apply(own)[0]
    assert (again.stored, again.error) == (False, outcomes[0].error)


def test_unpublish_hides_a_listing_and_republishing_brings_it_back_with_its_id(store, catalog,
                                                                               apply):
    before = search(store, CatalogQuery(id="q", text="calm"))[0][0]
    unpublish = PatternUnlisting(id=uuid.uuid4().hex, device_id="kitchen", pattern_key="a")
    assert apply(unpublish)[0].error is None
    assert "Calm Évening" not in _ids(store)
    assert "not in the catalog" in apply(_rate("hall", before.listing_id, 4))[0].error
    assert apply(PatternUnlisting(id=uuid.uuid4().hex, device_id="kitchen",
                                  pattern_key="never"))[0].error is None  # nothing to withdraw
    apply(pattern_listing("kitchen", "a", name="Calm evening 2", inhale=4, exhale=7))
    after = search(store, CatalogQuery(id="q", text="calm"))[0][0]
    assert (after.listing_id, after.created) == (before.listing_id, before.created)
    assert after.pattern.name == "Calm evening 2"
    assert after.content_hash != before.content_hash


def test_a_retraction_takes_back_listings_ratings_imports_and_analytics_once(store, catalog,
                                                                            apply):
    early = session_message("kitchen", analytics=True)
    private = session_message("kitchen", analytics=False)
    other = session_message("bedroom", analytics=True)
    apply(early, private, other)
    apply(_rate("kitchen", catalog["Wake up"], 1), _imported("kitchen", catalog["Deep sleep"]))
    assert {s[1] for s in analytics_sessions(store)} == {early.id, other.id}

    tombstone = Retraction(id=uuid.uuid4().hex, device_id="kitchen")
    assert apply(tombstone)[0].error is None
    assert _ids(store) == ["Deep sleep", "Wake up"]  # kitchen's two listings are gone
    wake = search(store, CatalogQuery(id="q", text="wake"))[0][0]
    deep = search(store, CatalogQuery(id="q", text="deep"))[0][0]
    assert (wake.ratings, deep.imports) == (0, 0)
    assert [s[1] for s in analytics_sessions(store)] == [other.id]
    assert set(retracted_devices(store)) == {"kitchen"}

    state = (_ids(store), analytics_sessions(store), retracted_devices(store))
    again = apply(tombstone)[0]  # the outbox re-sent it
    assert (again.stored, again.error) == (False, None)
    assert (_ids(store), analytics_sessions(store), retracted_devices(store)) == state

    later = session_message("kitchen", analytics=True)  # claimed again by a consenting owner
    apply(later)
    assert [s[1] for s in analytics_sessions(store)] == [other.id, later.id]
    retract_device(store, "kitchen", now=apply.clock())  # an operator's retraction
    assert [s[1] for s in analytics_sessions(store)] == [other.id]


def test_only_the_creator_mints_a_published_pattern_and_only_one_original_per_phases(
        store, catalog, apply):
    box = search(store, CatalogQuery(id="q", text="box focus"))[0][0]
    refused = {
        "only the device that published": _mint("hall", box.listing_id, box.content_hash),
        "does not match": _mint("kitchen", box.listing_id, "0" * 64),
        "not in the catalog": _mint("kitchen", "nosuchlisting", box.content_hash),
    }
    for words, request in refused.items():
        outcome = apply(request)[0]
        assert outcome.stored and outcome.mint.status == "failed", words
        assert words in outcome.mint.error

    first = apply(_mint("kitchen", box.listing_id, box.content_hash))[0]
    assert (first.mint.status, first.mint.kind, first.mint.error) == ("pending", "pattern", None)
    assert apply(_mint("kitchen", box.listing_id, box.content_hash))[0].mint.error == (
        f"listing {box.listing_id} is already minted (or being minted)")

    # the same four phases under another name, from another device: a copy, not an original
    apply(pattern_listing("bedroom", "copy", name="My square", inhale=4, hold_in=4, exhale=4,
                          hold_out=4, category="focus"))
    copy = search(store, CatalogQuery(id="q", text="my square"))[0][0]
    assert copy.content_hash == box.content_hash
    dup = apply(_mint("bedroom", copy.listing_id, copy.content_hash))[0]
    assert dup.mint.status == "failed"
    assert f"already minted as an original (listing {box.listing_id})" in dup.mint.error

    # a pending original's phases cannot change under it
    changed = pattern_listing("kitchen", "b", name="Box focus", inhale=5, exhale=5)
    assert "cannot change" in apply(changed)[0].error

    unpublish = PatternUnlisting(id=uuid.uuid4().hex, device_id="bedroom", pattern_key="c")
    apply(unpublish)
    wake = catalog["Wake up"]
    wake_hash = pattern_listing("bedroom", inhale=3, exhale=2).content_hash
    assert "unpublished" in apply(_mint("bedroom", wake, wake_hash))[0].mint.error
