"""The relay store keeps its promises on both backends, through the same SQL: each message
stored once, mint requests claimed by one relay at a time, the registry's last word wins,
migrations from empty and safe to re-run (also by two relays starting together)."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter

import pytest

from relay.fleetsim import mint_request, session_message, status, telemetry
from relay.store import LATEST, RelayStore, migrate, open_store, schema_version, timestamp
from relay.store.localpg import LocalPostgres, available
from relay.validate import Inbound, check

NOW = "2025-03-01T08:00:00.000+00:00"


@pytest.fixture(scope="module")
def postgres():
    reason = available()
    if reason:
        pytest.skip(f"PostgreSQL tests need a local server: {reason}")
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "relay.db")
    import psycopg

    pg = request.getfixturevalue("postgres")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


def inbound(message, kind: str) -> Inbound:
    result = check(f"breathe/v1/{message.device_id}/{kind}", message.encode())
    assert isinstance(result, Inbound), result
    return result


def test_a_new_database_is_migrated_to_the_latest_schema_and_rerunning_is_a_no_op(store):
    assert schema_version(store) == LATEST
    assert migrate(store, timestamp()) == []
    assert store.stats() == {"sessions": 0, "devices": 0, "mints": {}, "rejected": {},
                             "catalog": {"published": 0, "unpublished": 0, "ratings": 0,
                                         "imports": 0, "retracted_devices": 0}}


def test_two_relays_starting_at_once_migrate_once(store_url):
    stores = [RelayStore(open_store(store_url, migrate_now=False).backend) for _ in range(4)]
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def start(s: RelayStore) -> None:
        try:
            applied.append(migrate(s, timestamp()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    # each migration applied by exactly one of them (one relay may take 1, another 2)
    assert sorted(v for versions in applied for v in versions) == list(range(1, LATEST + 1))
    for s in stores:
        s.close()


def test_a_database_from_a_newer_relay_is_refused(store):
    from common.errors import ConfigError

    with store.transaction() as tx:
        tx.execute("INSERT INTO relay_schema (version, name, applied) VALUES (?, ?, ?)",
                   (LATEST + 1, "from the future", NOW))
    with pytest.raises(ConfigError, match=f"schema version {LATEST + 1}, newer"):
        migrate(store, timestamp())


def test_a_session_is_stored_once_however_often_it_arrives(store):
    first = inbound(session_message("kitchen", "s1"), "sessions")
    other = inbound(session_message("kitchen", "s2"), "sessions")
    assert [o.stored for o in store.record([first, other, first], Counter(), NOW)] == [
        True, True, False]
    assert [o.stored for o in store.record([other, first], Counter(), NOW)] == [False, False]
    assert store.session_ids() == [("kitchen", "s1"), ("kitchen", "s2")]
    with store.transaction() as tx:
        payload = tx.execute("SELECT payload FROM sessions WHERE id = ?", ("s1",)).fetchone()[0]
    assert json.loads(payload)["metrics"]["cycles_completed"] == 18


def test_the_same_id_from_two_devices_is_two_sessions(store):
    """Ids are chosen by devices, so one device can never shadow another's session."""
    a = inbound(session_message("kitchen", "same"), "sessions")
    b = inbound(session_message("bedroom", "same"), "sessions")
    assert [o.stored for o in store.record([a, b], Counter(), NOW)] == [True, True]
    assert store.session_ids() == [("bedroom", "same"), ("kitchen", "same")]


def test_a_large_batch_is_stored_in_one_go(store):
    items = [inbound(session_message(f"dev-{i % 7}", f"s{i}"), "sessions") for i in range(1000)]
    outcomes = store.record(items + items[:10], Counter(), NOW)
    assert sum(o.stored for o in outcomes) == 1000
    assert len(store.session_ids()) == 1000
    assert store.stats()["devices"] == 7


def test_a_repeated_mint_request_comes_back_with_its_row(store):
    request = inbound(mint_request("kitchen", "m1"), "mint/request")
    assert store.record([request], Counter(), NOW)[0].stored
    again = store.record([request], Counter(), NOW)[0]
    assert not again.stored and again.mint is not None
    assert (again.mint.device, again.mint.id, again.mint.status) == ("kitchen", "m1", "pending")


def test_one_relay_at_a_time_works_on_a_mint_request(store):
    store.record([inbound(mint_request("kitchen", "m1"), "mint/request")], Counter(), NOW)
    fresh, stale = "2025-03-01T08:00:10.000+00:00", "2025-03-01T07:59:00.000+00:00"
    assert store.claim_mint("kitchen", "m1", "relay-a", fresh, stale) is not None
    assert store.claim_mint("kitchen", "m1", "relay-b", fresh, stale) is None  # a holds it
    assert store.claim_mint("kitchen", "m1", "relay-a", fresh, stale) is not None  # a again
    later = "2025-03-01T08:10:00.000+00:00"
    lease_start = "2025-03-01T08:05:00.000+00:00"  # claims older than this are stale
    row = store.claim_mint("kitchen", "m1", "relay-b", later, lease_start)
    assert row is not None and row.claimed_by == "relay-b" and row.attempts == 3
    assert store.finish_mint("kitchen", "m1", "relay-a", later, token_id="7") is None
    done = store.finish_mint("kitchen", "m1", "relay-b", later, token_id="7",
                             tx_hash="0x" + "1" * 64, contract="0x" + "2" * 40, chain_id=31337)
    assert done is not None and done.status == "minted" and done.token_id == "7"
    assert store.claim_mint("kitchen", "m1", "relay-b", later, later) is None  # finished
    assert store.mints("pending") == [] and [r.id for r in store.mints("minted")] == ["m1"]


def test_a_failed_mint_keeps_its_error(store):
    store.record([inbound(mint_request("kitchen", "m2"), "mint/request")], Counter(), NOW)
    store.claim_mint("kitchen", "m2", "a", NOW, NOW)
    store.note_mint_error("kitchen", "m2", "a", NOW, "node unreachable")
    assert store.mint("kitchen", "m2").error == "node unreachable"
    assert store.mint("kitchen", "m2").status == "pending"
    done = store.finish_mint("kitchen", "m2", "a", NOW, error="wallet checksum")
    assert (done.status, done.token_id, done.error) == ("failed", None, "wallet checksum")


def test_the_registry_keeps_each_devices_latest_state(store):
    t1, t2 = NOW, "2025-03-01T08:01:00.000+00:00"
    store.record([inbound(status("kitchen", "online", "0.1.0"), "status"),
                  inbound(telemetry("kitchen", fps=14.5, outbox_depth=3), "telemetry")],
                 Counter(), t1)
    store.record([inbound(status("kitchen", "offline", None), "status")], Counter(), t2)
    row = store.device("kitchen")
    assert (row.status, row.version, row.first_seen, row.last_seen) == (
        "offline", "0.1.0", t1, t2)
    assert json.loads(row.telemetry)["outbox_depth"] == 3
    store.record([inbound(session_message("kitchen"), "sessions")], Counter(), t1)
    row = store.device("kitchen")
    assert row.status == "online"  # it spoke again
    assert row.last_seen == t2  # an older timestamp never moves last_seen back


def test_desired_config_for_a_device_never_seen_waits_for_it(store):
    store.set_desired("attic", "d1", json.dumps({"pacing.gamma": 2.0}), NOW)
    row = store.device("attic")
    assert (row.status, row.last_seen, row.desired_id) == ("unknown", None, "d1")
    store.record([inbound(status("attic"), "status")], Counter(), NOW)
    row = store.device("attic")
    assert (row.status, row.first_seen, json.loads(row.desired)) == (
        "online", NOW, {"pacing.gamma": 2.0})


def test_rejections_are_counted_by_reason(store):
    store.record([], Counter({"spoofed": 2, "oversized": 1}), NOW)
    store.record([], Counter({"spoofed": 1}), NOW)
    assert store.stats()["rejected"] == {"oversized": 1, "spoofed": 3}
