# ruff: noqa: F811 - pytest fixtures are imported from relay_support by name
"""The relay against a real mosquitto (TLS, the shipped broker accounts): sessions stored once
and acked after the commit, duplicates and replays, hostile messages refused while the relay
keeps running, the fleet registry, desired/reported config and a command with its reply —
the last three through the ``breathe relay`` CLI an operator uses."""

from __future__ import annotations

import json
import logging
import time
import uuid

import pytest
from click.testing import CliRunner
from relay_support import (  # noqa: F401 - fixtures
    NoMinter,
    config_file,
    device,
    relay_settings,
    start_relay,
)

from device.cli import main
from relay.fleetsim import session_message, status, telemetry
from relay.store import open_store
from wire import protocol

SECRET = "Grace Hopper"  # personal data that must never reach the relay's log


@pytest.fixture
def relay_minter():
    """Every relay here has no chain, and says so (not the point of these tests)."""
    return NoMinter().__call__


@pytest.fixture
def cli(config_file):
    def invoke(*args: str):
        return CliRunner().invoke(main, ["--config", str(config_file), "relay", *args],
                                  catch_exceptions=False)
    return invoke


def stored(relay_settings) -> list[tuple[str, str]]:
    store = open_store(relay_settings.store_url)
    try:
        return store.session_ids()
    finally:
        store.close()


def test_a_session_is_stored_once_and_acked_after_it_is_stored(start_relay, device,
                                                               relay_settings):
    start_relay()
    kitchen = device()
    session = session_message("kitchen")
    kitchen.publish(protocol.SESSIONS, session)
    ack = kitchen.wait_acks([session.id])[session.id]
    assert (ack.ok, ack.duplicate) == (True, False)
    assert stored(relay_settings) == [("kitchen", session.id)]  # committed before the ack

    kitchen.acks.clear()
    kitchen.publish(protocol.SESSIONS, session)  # the device did not see the ack: re-sent
    again = kitchen.wait_acks([session.id])[session.id]
    assert (again.ok, again.duplicate) == (True, True)
    assert stored(relay_settings) == [("kitchen", session.id)]


def test_sessions_sent_while_the_relay_is_down_arrive_when_it_is_back(start_relay, device,
                                                                      relay_settings):
    start_relay("t1").stop()  # the broker now keeps a persistent session for relay t1
    kitchen = device()
    sessions = [session_message("kitchen") for _ in range(30)]
    for s in sessions:
        kitchen.publish(protocol.SESSIONS, s)
    for s in sessions[:10]:  # replayed by a device that restarted before seeing acks
        kitchen.publish(protocol.SESSIONS, s)
    assert kitchen.acks == {}
    start_relay("t1")
    acks = kitchen.wait_acks({s.id for s in sessions})
    assert len(acks) == 30 and all(a.ok for a in acks.values())
    assert sorted(stored(relay_settings)) == sorted(("kitchen", s.id) for s in sessions)
    kitchen.wait_for(lambda: kitchen.ack_count >= 40)
    assert kitchen.ack_count == 40  # one ack per message received, the repeats as duplicates


def test_a_device_that_predates_batch_acks_still_gets_one_ack_per_session(start_relay, device,
                                                                           relay_settings):
    """Batch acks go only to devices that say they read them (a PUBLISH user property): an
    older device's strict decoder would refuse an ``ids`` list and re-send forever."""
    start_relay("t1").stop()  # both queue at the broker, then arrive in batches
    old, new = device("kitchen", batch_acks=False), device("hall")
    sent = {d: [session_message(d.device_id) for _ in range(20)] for d in (old, new)}
    for d, sessions in sent.items():
        for s in sessions:
            d.publish(protocol.SESSIONS, s)
    start_relay("t1")
    for d, sessions in sent.items():
        acks = d.wait_acks({s.id for s in sessions})
        assert all(a.ok and not a.duplicate for a in acks.values())
    assert old.ack_messages == 20
    assert all(not a.ids for a in old.acks.values())
    assert new.ack_messages < 20  # at least one ack listed several sessions
    assert len(stored(relay_settings)) == 40


def _hostile(device_id: str) -> list[tuple[str, bytes, str, bool]]:
    """(subtopic, payload, expected reason, carries an id the relay can refuse) × a few dozen."""
    good = json.loads(session_message(device_id, profile=SECRET).encode())
    cases = []
    for i in range(6):
        def bad(kind: str, i: int = i, **change):
            return json.dumps({**good, "id": f"bad-{kind}-{i}", **change}).encode()

        variants = [
            ("sessions", b"{" + SECRET.encode() * (i + 1), "not_json", False),
            ("sessions", bad("schema", schema=2 + i), "schema", True),
            ("sessions", bad("invalid", status=f"finished-{i}"), "invalid", True),
            ("sessions", bad("spoofed", device_id=f"other-{i}"), "spoofed", True),
            ("sessions", bad("oversized", pad="x" * protocol.MAX_PAYLOAD_BYTES), "oversized",
             True),
            ("telemetry", json.dumps({"schema": 1, "id": f"t{i}", "device_id": device_id,
                                      "uptime_s": "soon", "note": SECRET}).encode(),
             "invalid", False),
            ("sessions", b"[" * 60000, "too_deep", False),
            ("sessions", bad("dup", device_id="victim")[:-1] + b', "device_id": "kitchen"}',
             "duplicate_key", False),
            ("sessions", bad("nan").replace(b'"duration_s": 300.0', b'"duration_s": NaN'),
             "non_finite", False),
            ("sessions", bad("coverage", metrics={**good["metrics"], "coverage": -5}),
             "implausible", True),
            ("sessions", bad("when", started="9999-01-01T00:00:00+00:00",
                             ended="1970-01-01T00:00:00+00:00"), "implausible", True),
        ]
        cases += [(sub, payload, reason, has_id) for sub, payload, reason, has_id in variants]
    return cases


def test_hostile_messages_are_refused_logged_and_counted_while_the_relay_keeps_going(
        start_relay, device, relay_settings, caplog):
    caplog.set_level(logging.WARNING, logger="relay")
    start_relay()
    kitchen = device()
    hostile = _hostile("kitchen")
    good = []
    for n, (subtopic, payload, _, _) in enumerate(hostile):
        kitchen.publish(subtopic, payload)
        if n % 6 == 0:
            good.append(session_message("kitchen", profile=SECRET))
            kitchen.publish(protocol.SESSIONS, good[-1])
    last = session_message("kitchen")  # acked: everything sent before it was handled
    kitchen.publish(protocol.SESSIONS, last)
    refused = {json.loads(p)["id"] for sub, p, _, has_id in hostile if has_id}
    assert len(refused) == 36
    acks = kitchen.wait_acks(refused | {g.id for g in [*good, last]})
    assert {i for i, a in acks.items() if not a.ok} == refused
    assert all(acks[g.id].ok for g in [*good, last])
    assert sorted(stored(relay_settings)) == sorted(("kitchen", g.id) for g in [*good, last])

    store = open_store(relay_settings.store_url)
    expected: dict[str, int] = {}
    for _, _, reason, _ in hostile:
        expected[reason] = expected.get(reason, 0) + 1
    assert store.stats()["rejected"] == expected
    store.close()
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == len(hostile)
    assert not any(SECRET in line for line in caplog.messages)


def test_the_fleet_table_shows_each_devices_health(start_relay, device, cli):
    start_relay()
    kitchen, bedroom = device("kitchen"), device("bedroom")
    kitchen.publish(protocol.STATUS, status("kitchen", version="0.3.1"))
    kitchen.publish(protocol.TELEMETRY, telemetry("kitchen", fps=14.7, outbox_depth=4))
    bedroom.publish(protocol.STATUS, status("bedroom", state="offline", version="0.2.0"))
    last = session_message("bedroom")
    bedroom.publish(protocol.SESSIONS, last)
    bedroom.wait_acks([last.id])
    done = session_message("kitchen")  # acked: everything kitchen sent before is stored
    kitchen.publish(protocol.SESSIONS, done)
    kitchen.wait_acks([done.id])
    result = cli("devices")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["DEVICE", "STATUS", "LAST", "SEEN", "VERSION", "OUTBOX", "FPS"]
    assert rows[0].split()[:2] == ["bedroom", "online"]  # it sent a session after its status
    assert rows[0].split()[-3:] == ["0.2.0", "-", "-"]
    assert rows[1].split()[:2] == ["kitchen", "online"]
    assert rows[1].split()[-3:] == ["0.3.1", "4", "14.7"]
    listed = json.loads(cli("devices", "--json").output)
    assert [d["device"] for d in listed] == ["bedroom", "kitchen"]
    assert listed[1]["last_seen_s"] < 60
    totals = cli("stats").output.splitlines()
    assert totals[:2] == ["sessions: 2", "devices:  2"]
    assert totals[-1] == ("catalog:  0 published, 0 unpublished, 0 ratings, 0 imports; "
                          "0 devices retracted")


def test_desired_config_reaches_the_device_and_its_report_comes_back(start_relay, device,
                                                                     cli):
    start_relay()
    kitchen = device("kitchen")
    result = cli("config", "set", "kitchen", "pacing.haptic_strength=0.4",
                 "pacing.eyes_closed=true", "--wait", "10")
    assert result.exit_code == 0, result.output
    assert 'applied: {"pacing.eyes_closed": true, "pacing.haptic_strength": 0.4}' in result.output
    assert kitchen.desired[-1].changes == {"pacing.haptic_strength": 0.4,
                                           "pacing.eyes_closed": True}

    refused = cli("config", "set", "kitchen", "device.name=Attic", "--wait", "10")
    assert refused.exit_code == 1  # the device refused a key: the operator must see it
    assert "rejected" in refused.output and "device.name" in refused.output

    kitchen.wait_for(lambda: len(kitchen.desired) == 2)
    view = json.loads(cli("config", "show", "kitchen", "--json").output)
    assert view["desired"]["changes"] == {"pacing.haptic_strength": 0.4,
                                          "pacing.eyes_closed": True, "device.name": "Attic"}
    late = device("bedroom")  # retained: a device that connects later still gets its config
    assert cli("config", "set", "bedroom", "camera.fps=20").exit_code == 0
    assert late.wait_for(lambda: late.desired, 10)
    again = device("kitchen-2")
    assert not again.wait_for(lambda: again.desired, 0.5)  # nothing retained for others

    deadline = time.monotonic() + 10  # the relay stores the report it consumes, soon
    while not json.loads(cli("config", "show", "kitchen", "--json").output)["in_sync"]:
        assert time.monotonic() < deadline, "the device's report never reached the registry"
        time.sleep(0.05)
    show = cli("config", "show", "kitchen")
    assert show.exit_code == 0
    assert "in sync" in show.output and '"device.name": "not settable from the fleet"' in (
        show.output)


def test_config_set_refuses_keys_that_are_not_settings(cli):
    result = cli("config", "set", "kitchen", "pacing.haptic_strenght=0.4")
    assert result.exit_code == 2
    assert "did you mean 'pacing.haptic_strength'" in result.output
    assert cli("config", "set", "kitchen", "novalue").exit_code == 2
    assert cli("config", "show", "nobody-here").exit_code == 2


def test_a_command_gets_its_reply_and_failures_exit_1(device, cli):
    kitchen = device("kitchen")
    result = cli("cmd", "kitchen", "ping", "--arg", "n=3", "--arg", "note=hi")
    assert result.exit_code == 0, result.output
    reply = json.loads(result.stdout)
    assert reply["ok"] is True and reply["result"] == {"pong": True,
                                                       "args": {"n": 3, "note": "hi"}}
    name, command = kitchen.commands[-1]
    assert name == "ping" and reply["id"] == command.id

    refused = cli("cmd", "kitchen", "frobnicate")
    assert refused.exit_code == 1
    assert "unknown command 'frobnicate'" in refused.stderr

    silent = cli("cmd", f"gone-{uuid.uuid4().hex[:6]}", "ping", "--timeout", "0.5")
    assert silent.exit_code == 1
    assert "no reply" in silent.stderr
    assert cli("cmd", "kitchen", "Bad Name").exit_code == 2


def test_nothing_is_acked_before_it_is_stored(start_relay, device, relay_settings):
    """The store is busy (another writer holds the lock): the ack waits for the commit."""
    import sqlite3

    start_relay()
    kitchen = device()
    blocker = sqlite3.connect(relay_settings.store_url, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        session = session_message("kitchen")
        kitchen.publish(protocol.SESSIONS, session)
        assert kitchen.wait_acks([session.id], timeout=1.0) == {}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert kitchen.wait_acks([session.id])[session.id].ok
    assert stored(relay_settings) == [("kitchen", session.id)]


def test_a_failure_inside_a_callback_does_not_stop_the_relay(start_relay, device, monkeypatch,
                                                             relay_settings):
    import relay.consumer

    real = relay.consumer.check
    poison = session_message("kitchen")

    def flaky(topic, payload):
        if poison.id.encode() in payload:
            raise RuntimeError("a bug in validation")
        return real(topic, payload)

    monkeypatch.setattr(relay.consumer, "check", flaky)
    start_relay()
    kitchen = device()
    kitchen.publish(protocol.SESSIONS, poison)
    after = session_message("kitchen")
    kitchen.publish(protocol.SESSIONS, after)
    assert kitchen.wait_acks([after.id])[after.id].ok
    assert stored(relay_settings) == [("kitchen", after.id)]
