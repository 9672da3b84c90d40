# ruff: noqa: F811 - pytest fixtures are imported from sync_client_support by name
"""The sync client against a real mosquitto (TLS, the shipped accounts) and a tiny in-test relay:
sessions leave only with consent, a message is forgotten only on the relay's ack, and what is
not acked goes again after a reconnect or after its (backed-off) resend interval."""

from __future__ import annotations

import time

import pytest
from sync_client_support import quick_client, relay  # noqa: F401 - fixtures
from test_sync_support import (
    DEVICE,
    Controls,
    device_settings,
    queue_sessions,
    wait_until,
)

from common.config import PrivacySettings, Settings
from common.errors import ConfigError
from device.clock import FakeClock
from device.pacing.engine import PacingEngine
from device.privacy import save_privacy
from device.session import persist
from device.session.engine import SessionEngine
from device.session.metrics import MetricsAccumulator
from device.store import open_db, outbox_repo
from device.store.sessions_repo import create_session, get_session
from device.sync.client import SyncClient
from device.sync.connection import guarded
from wire import protocol


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "breathe.db"


@pytest.fixture
def make_client(broker, tmp_path, db_path):
    clients: list[SyncClient] = []

    def make(settings=None, **kw) -> SyncClient:
        client = quick_client(settings or device_settings(broker, tmp_path), db_path, **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()


def outbox(db_path) -> list[outbox_repo.OutboxMessage]:
    db = open_db(db_path)
    try:
        return outbox_repo.pending(db, limit=10_000)
    finally:
        db.close()


def finish_a_session(db_path, *, privacy: PrivacySettings | None = None) -> str:
    """Run a real 6-second session on the engine (fake clock) to its end; its id."""
    clock = FakeClock(start=10.0)
    engine = SessionEngine(db_path, clock, device_id=DEVICE)
    engine.start("box", 0.1)
    while engine.status == "running":
        clock.advance(0.1)
        engine.step()
    assert engine.status == "completed"
    live = engine.session_id
    assert live is not None
    return live


def share(db_path, on: bool) -> None:
    db = open_db(db_path)
    try:
        save_privacy(db, PrivacySettings(share_metrics=on))
    finally:
        db.close()


def test_a_finished_session_is_cleared_only_when_the_relay_acks_it(make_client, relay,
                                                                   db_path):
    share(db_path, True)
    session_id = finish_a_session(db_path)
    assert [m.id for m in outbox(db_path)] == [session_id]
    relay.acking = False
    client = make_client().start()
    wait_until(lambda: relay.ids()[session_id], what="the session at the relay")
    (sent,) = relay.received(protocol.SESSIONS)
    db = open_db(db_path)
    stored = get_session(db, session_id)
    db.close()
    assert sent.device_id == DEVICE and sent.status == "completed"
    assert sent.metrics.to_dict() == stored.metrics  # what the owner sees
    time.sleep(0.3)  # the broker's PUBACK came long ago: still not forgotten
    assert [m.id for m in outbox(db_path)] == [session_id] and client.last_sync is None
    relay.ack(DEVICE, session_id)
    wait_until(lambda: not outbox(db_path), what="the outbox to empty")
    assert client.last_sync is not None and client.outbox_depth() == 0
    assert client.state == "connected"


def test_one_ack_listing_a_batch_clears_each_session_it_names(make_client, relay, db_path):
    """A busy relay acks a batch in one message; only the sessions it lists leave the outbox."""
    ids = queue_sessions(db_path, 4)
    relay.acking = False
    make_client().start()
    wait_until(lambda: all(relay.ids()[i] for i in ids), what="the sessions at the relay")
    assert relay.batch_readers == {DEVICE}  # it told the relay it reads batch acks
    relay.client.publish(protocol.topic(DEVICE, protocol.ACK), protocol.Ack(
        id=ids[0], ok=True, ids=tuple(ids[:3])).encode(), qos=1)
    wait_until(lambda: [m.id for m in outbox(db_path)] == [ids[3]],
               what="the three acked sessions to leave the outbox")
    relay.ack(DEVICE, ids[3])  # the single-id ack still works
    wait_until(lambda: not outbox(db_path), what="the outbox to empty")


def test_without_an_ack_it_is_sent_again_after_a_reconnect(make_client, relay, broker,
                                                           db_path):
    (session_id,) = queue_sessions(db_path, 1)
    relay.acking = False
    client = make_client().start()
    wait_until(lambda: relay.ids()[session_id] == 1)
    broker.stop()
    wait_until(lambda: client.state == "disconnected")
    broker.start()
    wait_until(lambda: relay.ids()[session_id] >= 2, what="the re-send after reconnecting")
    # paho may re-send the in-flight copy first; the outbox's own re-send follows it
    wait_until(lambda: outbox(db_path)[0].attempts >= 2, what="the outbox's re-send")
    assert [m.id for m in outbox(db_path)] == [session_id]
    relay.acking = True
    client.sync_now()  # re-sends at once; this time the relay acks
    wait_until(lambda: not outbox(db_path), what="the outbox to empty")


def test_unacked_messages_are_resent_with_backoff(make_client, relay, db_path):
    (session_id,) = queue_sessions(db_path, 1)
    relay.acking = False
    clock = FakeClock()
    make_client(clock=clock, resend_s=10, max_resend_s=25).start()
    wait_until(lambda: relay.ids()[session_id] == 1)
    expected = 1
    for step, resends in ((9, False), (1, True), (19, False), (1, True), (25, True)):
        clock.advance(step)  # due after 10 s, then 20 s, then capped at 25 s
        expected += resends
        if resends:
            wait_until(lambda n=expected: relay.ids()[session_id] == n, what=f"send #{expected}")
        else:
            time.sleep(0.3)
            assert relay.ids()[session_id] == expected


def test_a_session_without_consent_never_leaves_the_device(make_client, relay, db_path):
    session_id = finish_a_session(db_path)  # nobody said yes: the default is not to share
    db = open_db(db_path)
    assert get_session(db, session_id).status == "completed"  # kept on the device
    db.close()
    assert outbox(db_path) == []
    queued = queue_sessions(db_path, 3)  # queued while sharing was on ...
    share(db_path, False)  # ... then the owner turned it off before they left
    client = make_client().start()
    wait_until(lambda: relay.ids(protocol.STATUS), what="the device online")
    client.sync_now()
    wait_until(lambda: not outbox(db_path), what="withdrawn uploads dropped")
    time.sleep(0.3)
    assert relay.ids(protocol.SESSIONS) == {} and queued


def test_config_default_decides_when_the_owner_has_not_chosen(db_path):
    assert finish_a_session(db_path) and outbox(db_path) == []  # built-in default: no
    clock = FakeClock()
    pattern_id, pattern, record = persist.create(db_path, "box", None)
    pacing = PacingEngine(pattern, clock, duration_s=60)
    pacing.start()
    live = persist.LiveSession(id=record.id, pattern_id=pattern_id, pattern=pattern,
                               profile=None, started=record.started, pacing=pacing,
                               metrics=MetricsAccumulator(pattern), last_checkpoint=0.0)
    persist.finish(db_path, live, "stopped", DEVICE,
                   privacy=PrivacySettings(share_metrics=True))  # the installer's default
    assert [m.id for m in outbox(db_path)] == [record.id]
    share(db_path, False)  # the owner's own choice wins over the default
    _, _, second = persist.create(db_path, "box", None)
    live.id = second.id
    persist.finish(db_path, live, "stopped", DEVICE, privacy=PrivacySettings(share_metrics=True))
    assert [m.id for m in outbox(db_path)] == [record.id]


def test_a_session_a_crash_left_running_is_synced_when_shared(db_path):
    share(db_path, True)
    db = open_db(db_path)
    record = create_session(db, "box")
    db.close()
    assert persist.recover(db_path, device_id=DEVICE) == 1
    (message,) = outbox(db_path)
    sent = protocol.SessionMessage.model_validate(message.payload)
    assert sent.id == record.id and sent.status == "interrupted"
    assert message.topic == f"breathe/v1/{DEVICE}/sessions"


def test_a_refused_message_is_kept_with_the_reason_and_not_sent_again(make_client, relay,
                                                                      db_path):
    (session_id,) = queue_sessions(db_path, 1)
    relay.acking = False
    client = make_client(resend_s=0.2).start()
    wait_until(lambda: relay.ids()[session_id] == 1)
    relay.ack(DEVICE, session_id, ok=False, error="metrics.rate: invalid")
    wait_until(lambda: client.outbox_depth() == 0, what="the refusal applied")
    db = open_db(db_path)
    (kept,) = outbox_repo.refused(db)
    db.close()
    assert kept.id == session_id and kept.refused == "metrics.rate: invalid"
    time.sleep(0.5)  # more than two resend intervals
    assert relay.ids()[session_id] == 1


def test_a_callback_that_raises_does_not_stop_the_connection(make_client, relay, db_path,
                                                             monkeypatch, caplog):
    ids = queue_sessions(db_path, 2)
    calls = {"n": 0}
    original = SyncClient._on_message

    def flaky(self, client, userdata, message):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom in a callback")
        original(self, client, userdata, message)

    monkeypatch.setattr(SyncClient, "_on_message", flaky)
    relay.acking = True
    client = make_client(resend_s=0.5).start()
    wait_until(lambda: not outbox(db_path), what="both acked despite the failed callback")
    assert "boom in a callback" in caplog.text and set(relay.ids()) == set(ids)
    assert client.state == "connected"
    assert guarded(lambda: 1 / 0)() is None


def test_a_queue_larger_than_the_window_drains_in_order(make_client, relay, db_path):
    ids = queue_sessions(db_path, 250)
    client = make_client(window=20).start()
    wait_until(lambda: not outbox(db_path), what="250 sessions drained")
    order = [m.id for m in relay.received(protocol.SESSIONS)]
    assert sorted(set(order)) == sorted(ids) and order[:20] == ids[:20]
    assert client.sender.acked == 250 and len(client.sender.inflight) == 0


def test_sync_off_means_no_connection(tmp_path, db_path):
    settings = Settings.model_validate({"device": {"id": DEVICE, "data_dir": str(tmp_path)}})
    client = SyncClient(settings, db_path, controls=Controls())
    assert client.start().state == "disabled" and client._mqtt is None
    client.stop()
    assert client.state == "disabled"


def test_a_wrong_password_is_reported_and_an_unreadable_one_refused(make_client, broker,
                                                                   tmp_path, caplog):
    settings = device_settings(broker, tmp_path)
    settings.mqtt.password_file.write_text("not-the-password\n")
    client = make_client(settings).start()
    wait_until(lambda: "refused the connection" in caplog.text, what="the refusal logged")
    assert client.state != "connected"
    client.stop()
    settings.mqtt.password_file.write_text("")
    with pytest.raises(ConfigError, match="password_file: .* is empty"):
        make_client(settings).start()
