# ruff: noqa: F811 - pytest fixtures are imported from relay_support and sync_client_support
"""The real relay with the real device sync client (device/sync/client.py) on one broker: a
session shared by a device ends up stored once at the relay and gone from the device's outbox,
and the operator's ``breathe relay`` commands reach the device and come back answered."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from relay_support import (  # noqa: F401 - fixtures
    config_file,
    relay_minter,
    relay_settings,
    start_relay,
)
from sync_client_support import controls, quick_client  # noqa: F401 - fixtures
from test_sync_support import device_settings, queue_sessions, wait_until

from common.config import load_config
from device.cli import main
from relay.store import open_store


@pytest.fixture
def relay(start_relay):
    return start_relay("with-device")


@pytest.fixture
def kitchen(broker, tmp_path, controls, relay):
    (tmp_path / "kitchen").mkdir()
    settings = device_settings(broker, tmp_path / "kitchen", telemetry_interval_s=1)
    client = quick_client(settings, tmp_path / "kitchen" / "breathe.db", controls=controls,
                          pi_model_path=tmp_path / "no-device-tree")
    yield client
    client.stop()


def cli(config_file, *args: str):
    return CliRunner().invoke(main, ["--config", str(config_file), "relay", *args],
                              catch_exceptions=False)


def test_shared_sessions_reach_the_relay_once_and_leave_the_devices_outbox(kitchen, relay,
                                                                          tmp_path):
    ids = queue_sessions(kitchen.db_path, 25)
    kitchen.start()
    wait_until(lambda: kitchen.outbox_depth() == 0, 20, "the outbox to drain")
    assert relay.store.session_ids("kitchen") == sorted(("kitchen", i) for i in ids)
    assert relay.consumer.counts["stored"] == 25
    assert kitchen.last_sync is not None


def test_the_operator_sees_the_device_and_reaches_it(broker, kitchen, relay, config_file,
                                                     controls, tmp_path):
    broker.add_operator("ops")  # commands and config go out as the operator, not the relay
    with config_file.open("a") as config:
        config.write(f'\n[relay.operator]\nusername = "ops"\npassword_file = '
                     f'{json.dumps(str(broker.password_file_for("ops", tmp_path)))}\n')
    kitchen.start()
    wait_until(lambda: kitchen.state == "connected", what="the device to connect")
    store = open_store(load_config(config_file).relay.store_url)
    wait_until(lambda: (row := store.device("kitchen")) and row.telemetry, 10,
               "telemetry to reach the registry")
    listed = json.loads(cli(config_file, "devices", "--json").output)
    assert [(d["device"], d["status"], d["outbox_depth"]) for d in listed] == [
        ("kitchen", "online", 0)]

    ping = cli(config_file, "cmd", "kitchen", "ping")
    assert ping.exit_code == 0, ping.output
    assert json.loads(ping.stdout)["ok"] is True

    unknown = cli(config_file, "cmd", "kitchen", "fly")
    assert unknown.exit_code == 1 and "fly" in unknown.stderr

    done = cli(config_file, "config", "set", "kitchen", "pacing.haptic_strength=0.4",
               "--wait", "10")
    assert done.exit_code == 0, done.output
    assert ("apply_config", {"pacing.haptic_strength": 0.4}) in controls.calls
    wait_until(lambda: json.loads(cli(config_file, "config", "show", "kitchen", "--json")
                                  .output)["in_sync"], 10, "the report to be stored")
    view = json.loads(cli(config_file, "config", "show", "kitchen", "--json").output)
    assert view["reported"]["applied"] == {"pacing.haptic_strength": 0.4}
    store.close()
    assert "as breathe-operator-ops" in broker.log_file.read_text()
