"""Mint requests: one per achievement however often Mint is pressed, a salted commitment that
keeps the session private, results applied idempotently, the request flow over a real broker,
and the m003 migration from every earlier store version."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime

import pytest
from sqlite_utils import Database
from test_sync_support import DEVICE, Controls, FakeRelay, device_settings, wait_until

from common.errors import BadInput
from device.sharing.mint import (
    apply_mint_result,
    canonical_json,
    get_request,
    latest_requests,
    request_mint,
)
from device.store import NotFound, db_path_for, open_db, outbox_repo
from device.store.achievements_repo import NewAchievement, store_achievements
from device.store.db import applied_migrations, migration_names
from device.store.migrations import MIGRATIONS
from device.store.profiles_repo import create_profile
from device.store.sessions_repo import create_session, finish_session
from device.sync.client import SyncClient
from wire import protocol

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
EARNED = datetime(2025, 3, 1, 8, 5, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path):
    return db_path_for(tmp_path)


@pytest.fixture
def achievement(db_path) -> int:
    """An earned, mintable achievement and the session that earned it."""
    db = open_db(db_path)
    try:
        create_profile(db, "Ada", profile_id="ada", wallet_address=WALLET)
        session = create_session(db, "box", profile="ada")
        finish_session(db, session.id, status="completed", duration_s=600.0,
                       metrics={"adherence": 0.93, "breaths": 38}, now=EARNED)
        (stored,) = store_achievements(db, "ada", [
            NewAchievement("first_session", EARNED, session.id, mintable=True)])
        store_achievements(db, "ada", [NewAchievement("ten_sessions", EARNED, None,
                                                      mintable=False)])
        return stored.id
    finally:
        db.close()


def mint_messages(db: Database) -> list[outbox_repo.OutboxMessage]:
    return [m for m in outbox_repo.pending(db, limit=1000) if m.topic.endswith("mint/request")]


def test_a_request_carries_a_salted_commitment_and_nothing_personal(db_path, achievement):
    db = open_db(db_path)
    record = request_mint(db, achievement, device_id=DEVICE, wallet=WALLET)
    assert record.status == "pending" and record.kind == "first_session"
    (queued,) = mint_messages(db)
    message = protocol.MintRequest.model_validate(queued.payload)
    assert queued.id == message.id == record.id
    assert queued.topic == f"breathe/v1/{DEVICE}/mint/request"
    assert (message.achievement, message.wallet, message.device_id) == (
        "first_session", WALLET, DEVICE)
    assert message.day == EARNED.astimezone().date()
    row = db.execute("SELECT salt, summary FROM mint_requests WHERE id = ?",
                     [record.id]).fetchone()
    salt, summary = bytes.fromhex(row[0]), json.loads(row[1])
    # the owner can open the commitment with what stays on the device ...
    assert hashlib.sha256(salt + canonical_json(summary)).hexdigest() == message.commitment
    assert summary["session"]["metrics"] == {"adherence": 0.93, "breaths": 38}
    # ... and nothing of it leaves: no salt, no metrics, no profile in the message
    assert set(queued.payload) == {"schema", "id", "device_id", "achievement", "day",
                                   "commitment", "wallet"}
    assert row[0] not in json.dumps(queued.payload)
    db.close()


def test_pressing_mint_twice_or_at_once_makes_one_request(db_path, achievement):
    results, errors = [], []
    barrier = threading.Barrier(4)

    def press() -> None:
        db = open_db(db_path)
        try:
            barrier.wait()
            results.append(request_mint(db, achievement, device_id=DEVICE, wallet=WALLET).id)
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=press) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    db = open_db(db_path)
    again = request_mint(db, achievement, device_id=DEVICE, wallet=WALLET)
    assert errors == [] and len(set(results)) == 1 and again.id == results[0]
    assert len(mint_messages(db)) == 1
    assert db.execute("SELECT count(*) FROM mint_requests").fetchone()[0] == 1
    db.close()


def test_refused_requests_say_why(db_path, achievement):
    db = open_db(db_path)
    for wallet in (None, ""):
        with pytest.raises(BadInput, match="set a wallet address in Settings"):
            request_mint(db, achievement, device_id=DEVICE, wallet=wallet)
    with pytest.raises(BadInput, match="'0x123' is not valid"):
        request_mint(db, achievement, device_id=DEVICE, wallet="0x123")
    with pytest.raises(NotFound, match="no achievement with id 999"):
        request_mint(db, 999, device_id=DEVICE, wallet=WALLET)
    with pytest.raises(BadInput, match="ten_sessions.*cannot be minted"):
        request_mint(db, achievement + 1, device_id=DEVICE, wallet=WALLET)
    assert outbox_repo.count(db) == 0
    db.close()


def test_results_apply_once_and_a_minted_request_stays_minted(db_path, achievement):
    db = open_db(db_path)
    first = request_mint(db, achievement, device_id=DEVICE, wallet=WALLET)
    failed = protocol.MintResult(id=first.id, ok=False, error="chain unreachable")
    assert apply_mint_result(db, failed).status == "failed"
    assert outbox_repo.count(db) == 0  # the relay had it: no more sending
    retry = request_mint(db, achievement, device_id=DEVICE, wallet=WALLET)
    assert retry.id != first.id and retry.status == "pending"  # only after a failure
    minted = protocol.MintResult(id=retry.id, ok=True, token_id="7", tx_hash="0x" + "ab" * 32,
                                 contract=WALLET, chain_id=31337)
    once = apply_mint_result(db, minted)
    assert (once.status, once.token_id, once.chain_id) == ("minted", "7", 31337)
    assert apply_mint_result(db, minted) == once  # replayed: nothing changes
    late = protocol.MintResult(id=retry.id, ok=False, error="late duplicate failure")
    assert apply_mint_result(db, late).status == "minted"
    assert request_mint(db, achievement, device_id=DEVICE, wallet=WALLET).id == retry.id
    assert latest_requests(db)[achievement].id == retry.id
    assert apply_mint_result(db, protocol.MintResult(id="unknown", ok=True)) is None
    db.close()


def test_mint_request_flow_over_the_broker(broker, tmp_path, db_path, achievement):
    relay = FakeRelay(broker, acking=True)
    client = SyncClient(device_settings(broker, tmp_path), db_path, controls=Controls(),
                        poll_s=0.05)
    db = open_db(db_path)
    try:
        client.start()
        record = request_mint(db, achievement, device_id=DEVICE, wallet=WALLET)
        wait_until(lambda: relay.ids(protocol.MINT_REQUEST)[record.id], what="the request")
        wait_until(lambda: get_request(db, record.id).status == "sent", what="the ack")
        result = protocol.MintResult(id=record.id, ok=True, token_id="1",
                                     tx_hash="0x" + "cd" * 32, contract=WALLET, chain_id=31337)
        relay.publish(DEVICE, protocol.MINT_RESULT, result)
        relay.publish(DEVICE, protocol.MINT_RESULT, result)  # a replay
        wait_until(lambda: get_request(db, record.id).status == "minted", what="the result")
        assert get_request(db, record.id).tx_hash == "0x" + "cd" * 32
        assert relay.invalid == [] and outbox_repo.count(db) == 0
    finally:
        db.close()
        client.stop()
        relay.close()


@pytest.mark.parametrize("applied_first", range(1, len(migration_names())))
def test_m003_upgrades_every_earlier_store_keeping_requests(tmp_path, applied_first):
    names = migration_names()
    if "m003_sync" not in names[applied_first:]:
        pytest.skip("m003 already applied at this version")
    path = tmp_path / "old.db"
    with Database(path) as old:
        MIGRATIONS.apply(old, stop_before=names[applied_first])
        old.execute("INSERT INTO profiles VALUES ('ada', 'Ada', NULL, '2025-01-01')")
        old.execute("INSERT INTO achievements (id, profile, kind, earned_at, mintable) VALUES"
                    " (1, 'ada', 'first_session', '2025-01-02', 1)")
        for rid, created in (("r1", "2025-01-03"), ("r2", "2025-01-04")):  # a duplicate
            old.execute("INSERT INTO mint_requests (id, achievement_id, wallet_address, "
                        "status, created, updated) VALUES (?, 1, ?, 'pending', ?, ?)",
                        [rid, WALLET, created, created])
        old.execute("INSERT INTO outbox (id, topic, payload, created) VALUES ('m1', "
                    "'breathe/v1/kitchen/sessions', '{}', '2025-01-03')")
    with open_db(path) as db:
        assert applied_migrations(db) == names
        assert get_request(db, "r1").status == "pending"
        assert get_request(db, "r2").status == "failed"  # kept, but no longer live
        assert [m.id for m in outbox_repo.pending(db)] == ["m1"]
        assert request_mint(db, 1, device_id=DEVICE, wallet=WALLET).id == "r1"
        with pytest.raises(Exception, match="UNIQUE"):
            db.execute("UPDATE mint_requests SET status = 'sent' WHERE id = 'r2'")
