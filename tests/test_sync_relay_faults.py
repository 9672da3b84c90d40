"""The fleet's fault experiments against the real relay (relay/, killed -9 as its own
process), the real device client (its own process where it is killed -9), and the real broker
(killed -9 too): nothing lost, nothing stored twice, nothing left queued; every attack by a
device account is refused; a thousand hostile payloads are counted and none is stored."""

from __future__ import annotations

import json
import logging
import random
import signal
import sqlite3
from pathlib import Path

import pytest
from relay_support import write_relay_config
from sync_client_support import quick_client
from test_broker_sample import NOT_AUTHORIZED, Client
from test_sync_faults import depth, start_device
from test_sync_support import config_toml, device_settings, queue_sessions, wait_until

from common.config import load_config
from relay.fleetsim import RelayProcess, SimDevice, session_message
from relay.registry import set_config
from relay.service import RelayService
from wire import protocol


def stored_ids(store_file: Path, device_id: str = "kitchen") -> list[str]:
    with sqlite3.connect(store_file) as db:
        return [row[0] for row in db.execute("SELECT id FROM sessions WHERE device = ?",
                                             [device_id])]


def stop(process) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(5)
    process.stdout.close()
    process.stderr.close()


def test_relay_broker_and_device_each_killed_mid_drain_lose_and_repeat_nothing(broker,
                                                                                 tmp_path):
    """One backlog, three crashes in turn: the relay mid-ingest, the broker mid-drain, the
    device mid-drain (each kill -9, each landing with part of the backlog stored)."""
    n = 900
    db_path = tmp_path / "breathe.db"
    ids = queue_sessions(db_path, n)
    store_file = tmp_path / "relay.db"
    relay = RelayProcess(write_relay_config(broker, tmp_path), "g1", tmp_path / "relay.log")
    relay.start()
    device_toml = config_toml(device_settings(broker, tmp_path), tmp_path / "device.toml")
    device = start_device(device_toml, db_path)
    try:
        def stored() -> int:
            return len(stored_ids(store_file))

        wait_until(lambda: stored() >= 150, timeout=30, what="the first sessions stored")
        relay.kill()  # mid-ingest: batches in flight were not acked, so they come again
        assert stored() < n
        relay.start()
        wait_until(lambda: stored() >= 400, timeout=30, what="ingest going on")
        broker.kill()  # mid-drain
        assert stored() < n
        broker.start()
        wait_until(lambda: stored() >= 600, timeout=30, what="ingest after the broker")
        device.send_signal(signal.SIGKILL)  # mid-drain
        device.wait(5)
        assert 0 < depth(db_path) < n
        stop(device)
        device = start_device(device_toml, db_path)
        wait_until(lambda: depth(db_path) == 0, timeout=60, what="the outbox to empty")
    finally:
        stop(device)
        code = relay.stop()
    assert code == 0, relay.log()[-3000:]
    got = stored_ids(store_file)
    assert sorted(got) == sorted(ids)  # every one arrived (0 lost), stored once (0 twice)
    assert "Traceback" not in relay.log()


def test_a_device_account_can_neither_take_ids_nor_join_the_relays_group(broker, tmp_path,
                                                                          caplog):
    """While kitchen's real client drains 300 sessions to the real relay, mallory (a device
    with a valid password) tries kitchen's client id, the relay's, the relay's shared group
    and kitchen's topics: all refused, and kitchen is never pushed off."""
    caplog.set_level(logging.WARNING, logger="device.sync")
    relay_settings = load_config(write_relay_config(broker, tmp_path)).relay
    relay = RelayService(relay_settings, instance="a1").start()
    assert relay.consumer.subscribed.wait(10)
    db_path = tmp_path / "breathe.db"
    ids = queue_sessions(db_path, 300)
    broker.add_user("mallory")
    kitchen = quick_client(device_settings(broker, tmp_path), db_path, window=20)
    probes: list[Client] = []
    try:
        kitchen.start()
        wait_until(lambda: kitchen.state == "connected", what="kitchen connected")
        for client_id in ("kitchen", relay.client_id):
            probes.append(Client(broker, "mallory", client_id=client_id))
            assert probes[-1].rc == NOT_AUTHORIZED, client_id
        mallory = Client(broker, "mallory")
        probes.append(mallory)
        assert mallory.rc == 0
        for topic in (f"$share/{relay_settings.share_group}/breathe/v1/+/sessions",
                      "$share/relay/breathe/v1/#", "breathe/v1/kitchen/#",
                      "breathe/v1/+/sessions", "breathe/v1/kitchen/mint/result"):
            assert mallory.subscribe(topic) == [NOT_AUTHORIZED], topic
        wait_until(lambda: depth(db_path) == 0, timeout=60, what="kitchen's outbox to empty")
        assert mallory.received(timeout=0.3) == []
    finally:
        for probe in probes:
            probe.close()
        kitchen.stop()
        relay.stop()
    assert sorted(stored_ids(Path(relay_settings.store_url))) == sorted(ids)
    assert not [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert kitchen.sender.acked == 300


def test_a_desired_config_lost_in_a_broker_crash_still_reaches_the_device(broker, tmp_path):
    relay_settings = load_config(write_relay_config(broker, tmp_path)).relay
    relay = RelayService(relay_settings, instance="c1").start()
    assert relay.consumer.subscribed.wait(10)
    settings = device_settings(broker, tmp_path)
    db_path = tmp_path / "breathe.db"
    device = quick_client(settings, db_path).start()
    try:
        wait_until(lambda: device.state == "connected", what="the device connected")
        device.stop()  # offline; the operator changes its config meanwhile
        desired, _ = set_config(relay_settings, relay.store, "kitchen",
                                {"pacing.haptic_strength": 0.4})
        broker.kill()  # before its next autosave: the retained desired config is gone
        broker.start()
        device = quick_client(settings, db_path).start()

        def reported_id():
            row = relay.store.device("kitchen")
            return row and row.reported and json.loads(row.reported).get("desired_id")

        wait_until(lambda: reported_id() == desired.id, timeout=30,
                   what="the device to apply and report the desired config")
    finally:
        device.stop()
        relay.stop()
    assert device.settings.pacing.haptic_strength == 0.4


# --- a thousand hostile payloads through the broker to the relay ------------------------------

def _hostile(rng: random.Random, good: dict, i: int) -> tuple[bytes, str]:
    """One payload that must be refused, and the reason it must be refused for."""
    message = {**good, "id": f"h{i}", "metrics": dict(good["metrics"])}
    text = json.dumps(message)
    kind = rng.randrange(10)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), "not_json"
    if kind == 1:
        return text.replace('"duration_s": 300.0', '"duration_s": ' + rng.choice(
            ["NaN", "Infinity", "-Infinity", "1e999"]), 1).encode(), "non_finite"
    if kind == 2:
        return (f'{{"device_id": "{rng.choice(["kitchen", "bedroom"])}", ' + text[1:]).encode(), \
            "duplicate_key"
    if kind == 3:
        d = rng.randrange(9, 3000)
        return ("[" * d + "]" * rng.choice([0, d])).encode(), "too_deep"
    if kind == 4:
        message["metrics"][rng.choice(["coverage", "adherence", "presence"])] = rng.choice(
            [-5, 1.01, 2, -0.001, 1e9])
        return json.dumps(message).encode(), "implausible"
    if kind == 5:
        message["metrics"]["cycles_completed"] = rng.randrange(-10**9, 0)
        return json.dumps(message).encode(), "implausible"
    if kind == 6:
        message["started"], message["ended"] = ("9999-01-01T00:00:00+00:00",
                                                "1970-01-01T00:00:00+00:00")
        return json.dumps(message).encode(), "implausible"
    if kind == 7:
        message["device_id"] = "kitchen"  # speaking for another device
        return json.dumps(message).encode(), "spoofed"
    if kind == 8:
        message["schema"] = rng.choice([0, 2, "1", None])
        return json.dumps(message).encode(), "schema"
    message[rng.choice(["duration_s", "status", "pattern_id"])] = rng.choice(
        [{"b": 2}, "", None, [1], {"a": 1}])  # not out of range (implausible): the wrong kind
    return json.dumps(message).encode(), "invalid"


@pytest.mark.parametrize("seed", [13])
def test_a_thousand_hostile_payloads_are_counted_and_none_is_stored(broker, tmp_path, seed,
                                                                    caplog):
    caplog.set_level(logging.WARNING, logger="relay")
    relay_settings = load_config(write_relay_config(broker, tmp_path)).relay
    relay = RelayService(relay_settings, instance="z1").start()
    assert relay.consumer.subscribed.wait(10)
    broker.add_user("mallory")
    mallory = SimDevice(broker.host, broker.port, "mallory", broker.passwords["mallory"],
                        ca_file=broker.certs.ca)
    rng = random.Random(seed)
    good = json.loads(session_message("mallory").encode())
    expected: dict[str, int] = {}
    fine = []
    try:
        for i in range(1000):
            payload, reason = _hostile(rng, good, i)
            expected[reason] = expected.get(reason, 0) + 1
            mallory.publish(protocol.SESSIONS, payload, wait=False)
            if i % 100 == 99:  # honest sessions between them still get through
                fine.append(session_message("mallory"))
                mallory.publish(protocol.SESSIONS, fine[-1], wait=False)
        assert mallory.wait_acks([m.id for m in fine], timeout=30)
        wait_until(lambda: sum(relay.store.stats()["rejected"].values()) >= 1000, timeout=30,
                   what=f"all 1,000 refusals counted (seed {seed})")
        stats = relay.store.stats()
    finally:
        mallory.close()
        relay.stop()
    assert stats["rejected"] == expected, f"seed {seed}"
    assert sorted(stored_ids(Path(relay_settings.store_url), "mallory")) == sorted(
        m.id for m in fine)
    assert not any(r.exc_info for r in caplog.records)  # one line each, never a traceback
    assert all(len(r.getMessage().splitlines()) == 1 for r in caplog.records)
