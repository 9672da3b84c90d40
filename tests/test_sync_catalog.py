# ruff: noqa: F811 - pytest fixtures are imported from relay_support by name
"""The device side of the shared pattern catalog: what the owner's choices put in the outbox
(publish, edit, unpublish, delete, rate, import, retract), the analytics flag on sessions and
telemetry, and catalog queries over MQTT v5 request/response — against a real mosquitto with a
tiny in-test responder, and end to end with the real relay and two devices."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from relay_support import (  # noqa: F401 - fixtures
    config_file,
    relay_minter,
    relay_settings,
    start_relay,
)
from sync_client_support import quick_client
from test_sync_support import TIMEOUT, Controls, device_settings, wait_until

from common.config import PrivacySettings, Settings
from common.errors import BadInput
from device.clock import FakeClock
from device.pacing.engine import PacingEngine
from device.privacy import save_privacy
from device.session import persist
from device.session.metrics import MetricsAccumulator
from device.sharing import catalog
from device.sharing.catalog import delete_pattern, update_pattern
from device.store import open_db, outbox_repo
from device.store.patterns_repo import add_pattern, get_pattern
from device.store.profiles_repo import create_profile
from device.sync import fleet
from device.sync.client import RelayUnavailable, SyncClient
from wire import protocol
from wire.patterns import Pattern

DEVICE = "kitchen"
CALM = Pattern(name="Calm 4-6", description="Slow and even", inhale=4, exhale=6)


@pytest.fixture
def db(tmp_path):
    handle = open_db(tmp_path / "breathe.db")
    yield handle
    handle.close()


@pytest.fixture
def owner(db):
    return create_profile(db, "Ada").id


@contextmanager
def opened(db_path):
    db = open_db(db_path)
    try:
        yield db
    finally:
        db.close()


def outbox(db, subtopic=None):
    """(subtopic, payload) of every message waiting, oldest first."""
    found = []
    for m in outbox_repo.pending(db):
        rest = protocol.split_topic(m.topic)[1]
        if subtopic is None or rest == subtopic:
            found.append((rest, m.payload))
    return found


def entry(listing_id="l1", pattern=CALM, creator="Grace", **extra):
    return protocol.CatalogEntry(
        listing_id=listing_id, creator=creator, pattern=pattern, category="sleep",
        tags=("evening",), content_hash=protocol.content_hash(pattern),
        created=datetime(2026, 1, 1, tzinfo=UTC), imports=0, **extra)


# -- publishing -----------------------------------------------------------------------------

def test_publishing_enqueues_the_listing_with_the_owners_name_and_the_content_hash(db, owner):
    record = add_pattern(db, CALM, owner=owner)
    assert outbox(db) == []  # a new pattern stays home
    published = catalog.publish(db, record.id, device_id=DEVICE, category="sleep",
                                tags=[" Evening ", "wind  down", "evening"])
    assert published.is_public and published.category == "sleep"
    assert published.tags == ("evening", "wind down")
    assert published.listing_id == protocol.listing_id_for(DEVICE, record.id)
    [(subtopic, payload)] = outbox(db)
    assert subtopic == protocol.CATALOG_PUBLISH
    listing = protocol.PatternListing.model_validate(payload)
    assert listing.creator == "Ada" and listing.pattern_key == record.id
    assert listing.pattern == CALM and listing.category == "sleep"
    assert listing.tags == ("evening", "wind down")
    assert listing.content_hash == protocol.content_hash(CALM)
    assert listing.device_id == DEVICE


def test_editing_a_listed_pattern_lists_it_again_and_a_private_one_stays_home(db, owner):
    private = add_pattern(db, Pattern(name="Mine", inhale=3, exhale=3), owner=owner)
    update_pattern(db, private.id, Pattern(name="Mine", inhale=4, exhale=4))
    assert outbox(db) == []
    listed = add_pattern(db, CALM, owner=owner)
    catalog.publish(db, listed.id, device_id=DEVICE, category="stress")
    longer = CALM.model_copy(update={"exhale": 8.0})
    update_pattern(db, listed.id, longer)
    publishes = outbox(db, protocol.CATALOG_PUBLISH)
    assert len(publishes) == 2
    again = protocol.PatternListing.model_validate(publishes[-1][1])
    assert again.pattern.exhale == 8.0 and again.category == "stress"
    assert again.content_hash == protocol.content_hash(longer) != publishes[0][1]["content_hash"]


def test_unpublishing_and_deleting_withdraw_the_listing(db, owner):
    one = add_pattern(db, CALM, owner=owner)
    two = add_pattern(db, Pattern(name="Box", inhale=4, hold_in=4, exhale=4, hold_out=4),
                      owner=owner)
    for record in (one, two):
        catalog.publish(db, record.id, device_id=DEVICE, category="focus")
    private = catalog.unpublish(db, one.id)
    assert not private.is_public and private.listing_id is None
    assert private.category == "focus"  # remembered for the next time
    delete_pattern(db, two.id)
    unlistings = [protocol.PatternUnlisting.model_validate(p)
                  for _, p in outbox(db, protocol.CATALOG_UNPUBLISH)]
    assert [u.pattern_key for u in unlistings] == [one.id, two.id]
    # unpublishing what is not listed sends nothing more
    catalog.unpublish(db, one.id)
    assert len(outbox(db, protocol.CATALOG_UNPUBLISH)) == 2


def test_only_your_own_valid_choices_are_published(db, owner):
    record = add_pattern(db, CALM, owner=owner)
    with pytest.raises(BadInput, match="category: not a catalog category"):
        catalog.publish(db, record.id, device_id=DEVICE, category="party")
    with pytest.raises(BadInput, match=r"tags\.0: not a valid tag"):
        catalog.publish(db, record.id, device_id=DEVICE, category="sleep", tags=["<b>x</b>"])
    with pytest.raises(BadInput, match="built-in"):
        catalog.publish(db, "box", device_id=DEVICE, category="focus")
    copy, _ = catalog.import_entry(db, entry(), device_id=DEVICE, owner=owner)
    with pytest.raises(BadInput, match="imported from the catalog"):
        catalog.publish(db, copy.id, device_id=DEVICE, category="sleep")
    assert outbox(db, protocol.CATALOG_PUBLISH) == []
    assert not get_pattern(db, record.id).is_public


# -- rating and importing ------------------------------------------------------------------------

def test_a_second_rating_replaces_the_first(db, owner):
    catalog.rate(db, "l1", 2, device_id=DEVICE)
    catalog.rate(db, "l1", 5, device_id=DEVICE)
    assert catalog.my_ratings(db) == {"l1": 5}
    # the first was not sent yet: only the owner's latest choice goes
    [(_, payload)] = outbox(db, protocol.CATALOG_RATE)
    assert protocol.PatternRating.model_validate(payload).stars == 5
    with pytest.raises(BadInput, match="from 1 to 5"):
        catalog.rate(db, "l1", 6, device_id=DEVICE)
    mine = add_pattern(db, CALM, owner=owner)
    catalog.publish(db, mine.id, device_id=DEVICE, category="sleep")
    with pytest.raises(BadInput, match="your own pattern"):
        catalog.rate(db, protocol.listing_id_for(DEVICE, mine.id), 5, device_id=DEVICE)


def test_importing_makes_a_local_custom_pattern_once(db, owner):
    add_pattern(db, CALM, owner=owner)  # the owner already has one by that name
    record, created = catalog.import_entry(db, entry(), device_id=DEVICE, owner=owner)
    assert created and record.pattern.name == "Calm 4-6 (Grace)"
    assert record.owner == owner and not record.built_in and record.imported_from == "l1"
    assert record.pattern.phases == CALM.phases
    again, created_again = catalog.import_entry(db, entry(), device_id=DEVICE, owner=owner)
    assert not created_again and again.id == record.id
    [(_, payload)] = outbox(db, protocol.CATALOG_IMPORTED)
    assert protocol.PatternImported.model_validate(payload).listing_id == "l1"
    assert catalog.imported_listings(db) == {"l1": record.id}


def test_retraction_is_a_tombstone_for_this_device(db):
    catalog.enqueue_retraction(db, DEVICE)
    [(subtopic, payload)] = outbox(db)
    assert subtopic == protocol.RETRACT
    assert protocol.Retraction.model_validate(payload).device_id == DEVICE


# -- analytics consent ----------------------------------------------------------------------------

def _finish_one(db_path, privacy):
    pattern_id, pattern, record = persist.create(db_path, "box", None)
    pacing = PacingEngine(pattern, FakeClock(), duration_s=60)
    pacing.start()
    live = persist.LiveSession(id=record.id, pattern_id=pattern_id, pattern=pattern,
                               profile=None, started=record.started, pacing=pacing,
                               metrics=MetricsAccumulator(pattern), last_checkpoint=0.0)
    persist.finish(db_path, live, "stopped", DEVICE, privacy=privacy)
    return record.id


@pytest.mark.parametrize("allow", [True, False])
def test_sessions_and_telemetry_say_whether_the_owner_allows_analytics(tmp_path, allow):
    db_path = tmp_path / "breathe.db"
    defaults = PrivacySettings(share_metrics=True)
    db = open_db(db_path)
    save_privacy(db, PrivacySettings(share_metrics=True, allow_analytics=allow))
    session_id = _finish_one(db_path, defaults)
    [message] = [m for m in outbox_repo.pending(db) if m.id == session_id]
    assert protocol.SessionMessage.model_validate(message.payload).analytics is allow
    telemetry = fleet.telemetry_message(DEVICE, None, db, uptime_s=1.0, privacy=defaults)
    assert telemetry.analytics is allow
    db.close()


# -- catalog queries over MQTT ------------------------------------------------------------------

class Responder:
    """A tiny stand-in for the relay's catalog/query answering: a fixed catalog, filtered by
    category, answered on the query's response topic with its correlation data."""

    def __init__(self, broker, entries, *, answer=True):
        self.entries = entries
        self.answer = answer
        self.queries: list[protocol.CatalogQuery] = []
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="catalog-responder",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set("relay", broker.passwords["relay"])
        self.client.tls_set(ca_certs=str(broker.certs.ca))
        self.client.on_connect = lambda c, *a: c.subscribe("breathe/v1/+/catalog/query", 1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(TIMEOUT)

    def _on_message(self, client, userdata, message):
        query = protocol.decode(protocol.CatalogQuery, message.payload)
        self.queries.append(query)
        if not self.answer:
            return
        items = tuple(e for e in self.entries if query.category in (None, e.category))
        page = protocol.CatalogPage(id=query.id, items=items, total=len(items),
                                    page=query.page)
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = message.properties.CorrelationData
        client.publish(message.properties.ResponseTopic, page.encode(), qos=1,
                       properties=props)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device(broker, tmp_path):
    clients = []

    def make(device_id=DEVICE, **kw):
        (tmp_path / device_id).mkdir(exist_ok=True)
        settings = device_settings(broker, tmp_path / device_id, device_id=device_id)
        client = quick_client(settings, tmp_path / device_id / "breathe.db", resend_s=1.0,
                              pi_model_path=tmp_path / "no-device-tree", **kw)
        clients.append(client.start())
        wait_until(lambda: client.state == "connected", what=f"{device_id} to connect")
        return client

    yield make
    for client in clients:
        client.stop()


def test_a_catalog_query_is_answered_on_the_devices_inbox(broker, device):
    responder = Responder(broker, [entry("l1"), entry("l2", pattern=Pattern(
        name="Wake", inhale=2, exhale=2)).model_copy(update={"category": "energy"})])
    try:
        client = device()
        page = client.query_catalog(protocol.CatalogQuery(id="q1", category="energy"))
        assert [e.listing_id for e in page.items] == ["l2"] and page.total == 1
        assert responder.queries[0].id == "q1"
        assert client.catalog_seen.get("l2").pattern.name == "Wake"  # kept for importing
        assert client.catalog_seen.get("l1") is None
    finally:
        responder.close()


def test_clear_errors_when_sync_is_off_or_the_relay_is_silent(broker, device, tmp_path):
    off = SyncClient(Settings(), tmp_path / "off.db", controls=Controls())
    with pytest.raises(RelayUnavailable, match="sync is off"):
        off.query_catalog(protocol.CatalogQuery(id="q0"))
    silent = Responder(broker, [], answer=False)
    try:
        client = device()
        started = time.monotonic()
        with pytest.raises(RelayUnavailable, match=r"did not answer within 0\.5 s"):
            client.query_catalog(protocol.CatalogQuery(id="q2"), timeout=0.5)
        assert time.monotonic() - started < 3
        assert [q.id for q in silent.queries] == ["q2"]
    finally:
        silent.close()
    client.stop()
    with pytest.raises(RelayUnavailable, match="not connected"):
        client.query_catalog(protocol.CatalogQuery(id="q3"))


# -- end to end with the real relay ----------------------------------------------------------------

@pytest.fixture
def real_relay(start_relay):
    return start_relay("catalog")


def test_two_devices_share_a_pattern_through_the_real_relay(real_relay, device):
    kitchen, bedroom = device("kitchen"), device("bedroom")
    with opened(kitchen.db_path) as db:
        owner = create_profile(db, "Ada").id
        record = add_pattern(db, CALM, owner=owner)
        catalog.publish(db, record.id, device_id="kitchen", category="sleep", tags=["evening"])
    wait_until(lambda: kitchen.outbox_depth() == 0, what="the listing to be acked")

    page = bedroom.query_catalog(protocol.CatalogQuery(id="b1", text="calm"))
    [listed] = page.items
    assert listed.creator == "Ada" and listed.pattern == CALM and listed.tags == ("evening",)
    with opened(bedroom.db_path) as db:
        bob = create_profile(db, "Bob").id
        copy, created = catalog.import_entry(db, bedroom.catalog_seen.get(listed.listing_id),
                                             device_id="bedroom", owner=bob)
        assert created and copy.pattern.phases == CALM.phases
        catalog.rate(db, listed.listing_id, 4, device_id="bedroom")
    wait_until(lambda: bedroom.outbox_depth() == 0, what="import and rating to be acked")
    [seen] = bedroom.query_catalog(protocol.CatalogQuery(id="b2")).items
    assert (seen.imports, seen.rating, seen.ratings) == (1, 4.0, 1)

    with opened(kitchen.db_path) as db:
        catalog.unpublish(db, record.id)
    wait_until(lambda: kitchen.outbox_depth() == 0, what="the unlisting to be acked")
    assert bedroom.query_catalog(protocol.CatalogQuery(id="b3")).items == ()
    with opened(bedroom.db_path) as db:  # the imported copy stays the owner's
        assert get_pattern(db, copy.id).pattern.phases == CALM.phases
