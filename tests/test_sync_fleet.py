# ruff: noqa: F811 - pytest fixtures are imported from sync_client_support by name
"""The fleet's view of a device over a real mosquitto: retained status and last will,
telemetry, commands answered on the MQTT v5 response topic with their correlation data, and
``config/desired`` applied through the settings models with what was refused reported back."""

from __future__ import annotations

import time

import pytest
from sync_client_support import controls, quick_client  # noqa: F401 - fixtures
from test_sync_support import (
    DEVICE,
    Controls,
    FakeRelay,
    device_settings,
    queue_sessions,
    wait_until,
)

from common.config import Settings
from device.store import db_path_for
from device.sync.client import SyncClient
from device.sync.fleet_config import with_overrides
from wire import protocol


@pytest.fixture
def relay(broker):
    r = FakeRelay(broker, acking=False)
    yield r
    r.close()


@pytest.fixture
def device(broker, tmp_path, controls, relay):
    """A running sync client (the relay is already listening)."""
    client = quick_client(device_settings(broker, tmp_path), db_path_for(tmp_path),
                          controls=controls, pi_model_path=tmp_path / "no-device-tree")
    client.start()
    wait_until(lambda: client.state == "connected", what="the device to connect")
    yield client
    client.stop()


class Stats:
    """Stands in for device.status.DeviceStatus."""

    def __init__(self) -> None:
        self.fail = False

    def stats(self) -> dict:
        if self.fail:
            raise OSError("thermal zone unreadable")
        return {"uptime_s": 123.4, "version": "0.1.0",
                "camera": {"fps": 14.8, "state": "running", "restarts": 0},
                "inference_ms": 21.5, "cpu_temp_c": 51.2, "memory": {}, "outbox_depth": 2}


def test_status_is_retained_online_and_offline_after_a_clean_stop(broker, relay, device):
    wait_until(lambda: [s.state for s in relay.received(protocol.STATUS)] == ["online"])
    late = FakeRelay(broker)  # a fleet tool that connects later still sees it (retained)
    try:
        wait_until(lambda: [s.state for s in late.received(protocol.STATUS)] == ["online"])
        device.stop()
        assert device.state == "disconnected"
        wait_until(lambda: [s.state for s in late.received(protocol.STATUS)][-1] == "offline")
    finally:
        late.close()
    # the first relay gets the clean "offline" too, perhaps a moment after the late one
    wait_until(lambda: len(relay.received(protocol.STATUS)) == 2)
    (online, offline) = relay.received(protocol.STATUS)
    assert online.device_id == offline.device_id == DEVICE and online.at is not None


def test_telemetry_carries_health_numbers_and_the_outbox(broker, relay, tmp_path):
    queue_sessions(db_path_for(tmp_path), 2)
    stats = Stats()
    client = SyncClient(device_settings(broker, tmp_path, telemetry_interval_s=1),
                        db_path_for(tmp_path), controls=Controls(), status=stats, poll_s=0.05)
    try:
        client.start()
        first = wait_until(lambda: relay.received(protocol.TELEMETRY), what="telemetry")[0]
        assert (first.uptime_s, first.fps, first.inference_ms, first.cpu_temp_c,
                first.camera) == (123.4, 14.8, 21.5, 51.2, "running")
        assert first.outbox_depth == 2 and first.oldest_unsent_s is not None
        stats.fail = True  # a broken stats() leaves numbers out, telemetry goes on
        wait_until(lambda: len(relay.received(protocol.TELEMETRY)) >= 2, timeout=5)
        second = relay.received(protocol.TELEMETRY)[1]
        assert second.fps is None and second.outbox_depth == 2 and second.uptime_s >= 0
        gap = (second.at - first.at).total_seconds()
        assert 0.8 <= gap <= 2.5  # every telemetry_interval_s
    finally:
        client.stop()


def test_ping_is_answered_on_the_response_topic_with_its_correlation(relay, device):
    reply = relay.command(DEVICE, "ping")
    assert reply.ok and reply.result["pong"] is True and reply.result["device_id"] == DEVICE


def test_unknown_and_malformed_commands_get_error_replies(relay, device, controls):
    unknown = relay.command(DEVICE, "self-destruct")
    assert not unknown.ok and "unknown command 'self-destruct'" in unknown.error
    assert "ping" in unknown.error  # says what is allowed
    garbage = relay.command(DEVICE, "ping", b"{not json")
    assert not garbage.ok and "not UTF-8 JSON" in garbage.error
    wrong = relay.command(DEVICE, "ping", b'{"schema": 1, "id": "x", "argz": {}}')
    assert not wrong.ok and "argz" in wrong.error
    extra = relay.command(DEVICE, "ping", {"loud": True})
    assert not extra.ok and "takes no args" in extra.error
    assert controls.calls == []


def test_start_and_stop_session_commands_drive_the_controls(relay, device, controls):
    started = relay.command(DEVICE, "start-session", {"pattern_id": "box", "minutes": 5})
    assert started.ok and started.result == {"status": "running", "pattern_id": "box"}
    again = relay.command(DEVICE, "start-session", {"pattern_id": "box", "minutes": 5})
    assert not again.ok and "not possible while the session engine is running" in again.error
    bad = relay.command(DEVICE, "start-session", {"pattern_id": "box", "minutes": 999})
    assert not bad.ok and "args.minutes" in bad.error and "999" in bad.error
    stopped = relay.command(DEVICE, "stop-session")
    assert stopped.ok and stopped.result == {"status": "stopped"}
    assert [c[0] for c in controls.calls] == ["start_session", "start_session", "stop_session"]


def test_a_repeated_command_is_answered_again_but_runs_once(relay, device, controls):
    payload = protocol.Command(id="cmd-start-1", args={"pattern_id": "box",
                                                       "minutes": 1}).encode()
    first = relay.command(DEVICE, "start-session", payload)
    second = relay.command(DEVICE, "start-session", payload)  # QoS 1 delivered it twice
    assert first == second and first.ok
    assert controls.calls == [("start_session", ("box", 1.0))]


def test_reboot_is_refused_off_a_pi_and_runs_after_the_reply_on_one(broker, relay, tmp_path,
                                                                     device, controls):
    refused = relay.command(DEVICE, "reboot")
    assert not refused.ok and "not a Raspberry Pi" in refused.error
    assert controls.calls == []
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    device.commands.pi_model_path = model  # as if on a Pi; controls.reboot is a recorder here
    accepted = relay.command(DEVICE, "reboot")
    assert accepted.ok and accepted.result["model"].startswith("Raspberry Pi 5")
    wait_until(lambda: controls.calls == [("reboot", None)])


def test_sync_now_command_resends_what_waits_for_an_ack(relay, device, tmp_path):
    (sid,) = queue_sessions(db_path_for(tmp_path), 1)
    wait_until(lambda: relay.ids()[sid] == 1)
    reply = relay.command(DEVICE, "sync-now")
    assert reply.ok and reply.result["outbox_depth"] == 1
    wait_until(lambda: relay.ids()[sid] == 2, what="the re-send")


def test_desired_config_is_applied_or_rejected_and_reported(broker, relay, device, controls,
                                                            tmp_path):
    desired = protocol.ConfigDesired(id="desired-1", changes={
        "pacing.haptic_strength": 0.3, "mqtt.telemetry_interval_s": 2, "pacing.gamma": 9,
        "privacy.share_metrics": True, "pacing.led_update_hz": 200, "camera.fps": 10})
    relay.publish(DEVICE, protocol.CONFIG_DESIRED, desired, retain=True)
    report = wait_until(lambda: relay.received(protocol.CONFIG_REPORTED))[0]
    assert report.desired_id == "desired-1"
    assert report.applied == {"pacing.haptic_strength": 0.3, "mqtt.telemetry_interval_s": 2,
                              "camera.fps": 10}
    assert set(report.rejected) == {"pacing.gamma", "privacy.share_metrics",
                                    "pacing.led_update_hz"}
    assert "less than or equal to 3" in report.rejected["pacing.gamma"]
    assert "owner's choice" in report.rejected["privacy.share_metrics"]
    assert report.rejected["pacing.led_update_hz"] == "cannot change while the LED runs"
    assert report.config["pacing"]["haptic_strength"] == 0.3
    assert report.config["camera"]["fps"] == 10 and "relay" not in report.config
    assert controls.calls == [("apply_config", {"pacing.haptic_strength": 0.3,
                                                "pacing.led_update_hz": 200,
                                                "camera.fps": 10})]
    # stored for the next start: the daemon lays them over the TOML file
    later = with_overrides(Settings(), db_path_for(tmp_path))
    assert (later.pacing.haptic_strength, later.camera.fps,
            later.mqtt.telemetry_interval_s, later.pacing.gamma) == (0.3, 10, 2, 2.2)
    # retained: it comes again with the next connection, and is not applied twice
    device.stop()
    device.start()
    wait_until(lambda: len(relay.received(protocol.CONFIG_REPORTED)) == 2)
    assert len(controls.calls) == 1


def test_set_config_command_replies_with_the_outcome(relay, device, controls):
    reply = relay.command(DEVICE, "set-config", {"changes": {"pacing.haptic_strength": 0.9,
                                                             "device.id": "other"}})
    assert reply.ok
    assert reply.result["applied"] == {"pacing.haptic_strength": 0.9}
    assert reply.result["applied_now"] == ["pacing.haptic_strength"]
    assert "broker identity" in reply.result["rejected"]["device.id"]
    empty = relay.command(DEVICE, "set-config", {"changes": {}})
    assert not empty.ok and "args.changes" in empty.error
    report = wait_until(lambda: relay.received(protocol.CONFIG_REPORTED))[0]
    assert report.applied == {"pacing.haptic_strength": 0.9} and report.desired_id is None
    time.sleep(0.1)
    assert device.settings.pacing.haptic_strength == 0.9


def test_a_sensor_reading_nan_or_infinity_is_left_out_of_telemetry(tmp_path):
    """The wire refuses NaN and infinity: a glitching reading is dropped, the message goes."""
    from device.store import open_db
    from device.sync.fleet import telemetry_message

    class Glitching:
        def stats(self):
            return {"uptime_s": float("inf"), "inference_ms": float("nan"),
                    "cpu_temp_c": float("-inf"), "camera": {"fps": float("inf")}}

    db = open_db(db_path_for(tmp_path))
    try:
        message = telemetry_message("kitchen", Glitching(), db, uptime_s=12.0)
    finally:
        db.close()
    assert (message.fps, message.inference_ms, message.cpu_temp_c) == (None, None, None)
    assert message.uptime_s == 12.0
    assert protocol.decode(protocol.Telemetry, message.encode()) == message
