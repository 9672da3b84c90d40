# ruff: noqa: F811 - pytest fixtures are imported from chain_support and relay_support by name
"""The shared pattern catalog through a real mosquitto (TLS, the shipped broker accounts) and a
relay running in process, with small simulated devices: publish, browse with filters and
sorts over MQTT v5 request/response, import, rate, unpublish, retract; markup, a wrong content
hash, spoofing and a response topic outside the asker's inbox refused; a pattern minted once
as an original on a real EVM (eth-tester) and a copy of it refused.

The relay's checks on their own (no broker) come first; the store's rules on both backends
are in tests/test_relay_catalog_store.py."""

from __future__ import annotations

import functools
import json
import time
import uuid

import pytest
from chain_support import funded, w3  # noqa: F401 - fixtures
from relay_support import (  # noqa: F401 - fixtures
    config_file,
    device,
    relay_minter,
    relay_settings,
    start_relay,
)

from relay.catalog import inbox_of, markup_in
from relay.fleetsim import WALLET, SimDevice, pattern_listing
from relay.validate import Inbound, Rejection, check
from wire import protocol
from wire.protocol import (
    PatternImported,
    PatternMintRequest,
    PatternRating,
    PatternUnlisting,
    Retraction,
)

# --- the relay's checks, without a broker -----------------------------------------------------


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>", "Calm <b>now</b>", "a > b", "&#60;script&#62;", "&#x3c;img",
    "&lt;b&gt;", "JavaScript:alert(1)", "java\tscript:void(0)", "see data:text/html,hi",
    "vbscript:msgbox",
])
def test_markup_is_recognised(text):
    assert markup_in(text) is not None


@pytest.mark.parametrize("text", [
    "Calm & focus", "Note: breathe slowly", "4-7-8, then rest", "Rock 'n' roll \"box\"",
    "R&D team's favourite", "Évening calme — 100%", "Ratio 1:2",
])
def test_plain_prose_passes(text):
    assert markup_in(text) is None


@pytest.mark.parametrize(("field", "fields"), [
    ("pattern.name", {"name": "Calm <i>evening</i>"}),
    ("pattern.description", {"description": "Click <a href=x>here</a>"}),
    ("creator", {"creator": "Eve&#x3c;script"}),
])
def test_a_listing_with_markup_is_refused_naming_the_field(field, fields):
    listing = pattern_listing("kitchen", **fields)
    result = check("breathe/v1/kitchen/catalog/publish", listing.encode())
    assert isinstance(result, Rejection) and result.reason == "markup"
    assert result.detail.startswith(field) and result.message_id == listing.id
    value = next(iter(fields.values()))
    for text in value if isinstance(value, tuple) else (value,):
        assert text not in result.log_line()  # the offending text itself is never logged


def test_a_listing_must_carry_its_own_content_hash_and_real_tags():
    wrong = pattern_listing("kitchen", content_hash=pattern_listing(
        "kitchen", inhale=5.0).content_hash)
    result = check("breathe/v1/kitchen/catalog/publish", wrong.encode())
    assert isinstance(result, Rejection) and result.reason == "content_hash"
    raw = json.loads(pattern_listing("kitchen").encode())
    for tag in ("Evening!", "javascript:x"):  # the wire schema allows plain words only
        raw["tags"] = [tag]
        result = check("breathe/v1/kitchen/catalog/publish", json.dumps(raw).encode())
        assert isinstance(result, Rejection) and result.reason == "invalid" and "tags.0" in (
            result.detail)
    ok = check("breathe/v1/kitchen/catalog/publish", pattern_listing("kitchen").encode())
    assert isinstance(ok, Inbound)


@pytest.mark.parametrize(("topic", "allowed"), [
    ("breathe/v1/kitchen/inbox/abc-123", True),
    ("breathe/v1/bedroom/inbox/abc", False),
    ("breathe/v1/kitchen/ack", False),
    ("breathe/v1/kitchen/inbox/", False),
    ("breathe/v1/kitchen/inbox/a/b", False),
    ("breathe/v1/kitchen/inbox/#", False),
    (None, False),
])
def test_answers_go_only_to_the_asking_devices_inbox(topic, allowed):
    assert (inbox_of("kitchen", topic) is None) is allowed


# --- through the broker -----------------------------------------------------------------------

@pytest.fixture
def patterns_minter(w3):
    """H7-tokens' minter with only the pattern-token contract deployed."""
    from relay.chain import deploy_patterns
    from relay.chain.minter import Minter

    signer = funded(w3)
    return Minter(w3, None, signer, patterns_address=deploy_patterns(w3, signer))


@pytest.fixture
def relay(start_relay):
    """``relay(minter_factory=None)`` starts the relay ``c1``; stopped after the test."""
    return functools.partial(start_relay, "c1")


def _send(sim: SimDevice, subtopic: str, message) -> protocol.Ack:
    sim.publish(subtopic, message)
    ack = sim.wait_acks([message.id]).get(message.id)
    assert ack is not None, f"no ack for {subtopic} {message.id}"
    return ack


def _names(page) -> list[str]:
    assert page is not None and page.ok, page
    return [item.pattern.name for item in page.items]


def test_publish_browse_import_rate_unpublish_and_retract(relay, device):
    service = relay()
    kitchen, bedroom, hall = device("kitchen"), device("bedroom"), device("hall")
    calm = pattern_listing("kitchen", "calm", name="Calm evening", inhale=4, exhale=6,
                           tags=("evening",))
    box = pattern_listing("kitchen", "box", name="Box focus", inhale=4, hold_in=4, exhale=4,
                          hold_out=4, category="focus", tags=("box",))
    wake = pattern_listing("hall", "wake", name="Wake up", inhale=3, exhale=2,
                           category="energy", creator="Hal", tags=())
    for sim, listing in ((kitchen, calm), (kitchen, box), (hall, wake)):
        assert _send(sim, protocol.CATALOG_PUBLISH, listing).ok

    assert _names(bedroom.query()) == ["Wake up", "Box focus", "Calm evening"]
    assert _names(bedroom.query(category="focus")) == ["Box focus"]
    assert _names(bedroom.query(text="EVENING")) == ["Calm evening"]
    assert _names(bedroom.query(sort="shortest_cycle")) == ["Wake up", "Calm evening",
                                                            "Box focus"]
    second = bedroom.query(page=2, page_size=2)
    assert _names(second) == ["Calm evening"] and second.total == 3 and second.page == 2
    entry = bedroom.query(text="box").items[0]
    assert (entry.creator, entry.category, entry.tags) == ("Ada", "focus", ("box",))
    assert entry.content_hash == box.content_hash and entry.pattern == box.pattern

    box_id = entry.listing_id
    for sim in (bedroom, hall):
        assert _send(sim, protocol.CATALOG_IMPORTED, PatternImported(
            id=uuid.uuid4().hex, device_id=sim.device_id, listing_id=box_id)).ok
    assert _send(bedroom, protocol.CATALOG_RATE, PatternRating(
        id=uuid.uuid4().hex, device_id="bedroom", listing_id=box_id, stars=2)).ok
    assert _send(bedroom, protocol.CATALOG_RATE, PatternRating(
        id=uuid.uuid4().hex, device_id="bedroom", listing_id=box_id, stars=4)).ok  # replaces
    assert _send(hall, protocol.CATALOG_RATE, PatternRating(
        id=uuid.uuid4().hex, device_id="hall", listing_id=box_id, stars=5)).ok
    own = _send(kitchen, protocol.CATALOG_RATE, PatternRating(
        id=uuid.uuid4().hex, device_id="kitchen", listing_id=box_id, stars=5))
    assert not own.ok and "own pattern" in own.error
    top = bedroom.query(sort="top_rated").items[0]
    assert (top.listing_id, top.rating, top.ratings, top.imports) == (box_id, 4.5, 2, 2)
    assert _names(bedroom.query(sort="most_imported"))[0] == "Box focus"

    assert _send(kitchen, protocol.CATALOG_UNPUBLISH, PatternUnlisting(
        id=uuid.uuid4().hex, device_id="kitchen", pattern_key="calm")).ok
    assert _names(bedroom.query()) == ["Wake up", "Box focus"]

    # hall's owner deletes the account: its listing, ratings and imports are taken back
    tombstone = Retraction(id=uuid.uuid4().hex, device_id="hall")
    assert _send(hall, protocol.RETRACT, tombstone).ok
    assert _names(bedroom.query()) == ["Box focus"]
    box_now = bedroom.query().items[0]
    assert (box_now.rating, box_now.ratings, box_now.imports) == (4.0, 1, 1)
    hall.acks.clear()
    again = _send(hall, protocol.RETRACT, tombstone)  # re-sent by the outbox: a no-op
    assert again.ok and again.duplicate
    assert bedroom.query().items == (box_now,)
    # what the operator's `breathe relay stats` counts
    assert service.store.stats()["catalog"] == {
        "published": 1, "unpublished": 2, "ratings": 1, "imports": 1, "retracted_devices": 1}


def test_markup_wrong_hashes_spoofing_and_foreign_inboxes_are_refused(relay, device):
    service = relay()
    kitchen, bedroom = device("kitchen"), device("bedroom")
    markup = pattern_listing("kitchen", "x", name="<img src=x onerror=alert(1)>")
    ack = _send(kitchen, protocol.CATALOG_PUBLISH, markup)
    assert not ack.ok and "markup" in ack.error and "pattern.name" in ack.error
    wrong = pattern_listing("kitchen", "y", content_hash="ab" * 32)
    ack = _send(kitchen, protocol.CATALOG_PUBLISH, wrong)
    assert not ack.ok and "content_hash" in ack.error
    spoofed = pattern_listing("bedroom", "z")  # kitchen speaks for bedroom
    kitchen.publish(protocol.CATALOG_PUBLISH, spoofed)
    ack = kitchen.wait_acks([spoofed.id])[spoofed.id]
    assert not ack.ok and "spoofed" in ack.error
    assert spoofed.id not in bedroom.acks

    # kitchen aims the answer at bedroom's inbox, then at its own ack topic: no answer at all
    foreign = protocol.topic("bedroom", protocol.INBOX, "stolen")
    assert kitchen.query(response_topic=foreign, timeout=1.0) is None
    assert kitchen.query(response_topic=protocol.topic("kitchen", protocol.ACK),
                         timeout=1.0) is None
    assert bedroom.pages == {}
    assert service.consumer.queries.counts["refused"] == 2
    page = bedroom.query()
    assert page.ok and page.total == 0  # nothing refused was listed, and the relay still runs
    assert service.store.stats()["rejected"] == {"markup": 1, "content_hash": 1, "spoofed": 1}


def test_a_pattern_is_minted_once_as_an_original_and_a_copy_is_refused(relay, device,
                                                                      patterns_minter):
    relay(minter_factory=lambda: patterns_minter)
    kitchen, bedroom = device("kitchen"), device("bedroom")
    box = pattern_listing("kitchen", "box", name="Box focus", inhale=4, hold_in=4, exhale=4,
                          hold_out=4, category="focus")
    copy = pattern_listing("bedroom", "sq", name="My square", inhale=4, hold_in=4, exhale=4,
                           hold_out=4, category="focus", creator="Bo")
    assert _send(kitchen, protocol.CATALOG_PUBLISH, box).ok
    assert _send(bedroom, protocol.CATALOG_PUBLISH, copy).ok
    ids = {item.pattern.name: item.listing_id for item in kitchen.query().items}

    def mint(sim: SimDevice, listing_id: str):
        request = PatternMintRequest(id=uuid.uuid4().hex, device_id=sim.device_id,
                                     listing_id=listing_id, content_hash=box.content_hash,
                                     wallet=WALLET)
        assert _send(sim, protocol.PATTERN_MINT_REQUEST, request).ok  # stored, then answered
        return request, sim.wait_result(request.id)

    not_mine = mint(bedroom, ids["Box focus"])[1]
    assert not not_mine.ok and "only the device that published" in not_mine.error

    request, minted = mint(kitchen, ids["Box focus"])
    assert minted.ok and minted.token_id is not None
    assert minted.contract == patterns_minter.patterns_address
    entry = next(i for i in kitchen.query().items if i.listing_id == ids["Box focus"])
    assert entry.token_id == minted.token_id

    refused = mint(bedroom, ids["My square"])[1]  # same phases, another name and device
    assert not refused.ok and "already minted as an original" in refused.error
    kitchen.results.clear()
    kitchen.publish(protocol.PATTERN_MINT_REQUEST, protocol.decode(
        PatternMintRequest, request.encode()))  # asked again: the same token, not a new one
    assert kitchen.wait_result(request.id).token_id == minted.token_id
    deadline = time.monotonic() + 5
    while patterns_minter.patterns.functions.totalMinted().call() != 1 \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert patterns_minter.patterns.functions.totalMinted().call() == 1
