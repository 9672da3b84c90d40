"""``breathe relay accounts``: the broker account file a fleet operator writes, and accounts
added to a running broker, as a real mosquitto enforces them."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion
from relay_support import write_relay_config

from device.cli import main
from relay.fleetsim import relay_config_toml
from relay.localbroker import ADMIN_USER, Broker


def connect_rc(broker: Broker, username: str, password: str, client_id: str) -> int:
    """The CONNACK reason code for this account and client id (0 = accepted)."""
    got: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.tls_set(ca_certs=str(broker.certs.ca))
    client.on_connect = lambda c, u, f, rc, p: got.append(rc.value)
    client.connect(broker.host, broker.port)
    while not got:
        client.loop(0.1)
    client.disconnect()
    return got[0]


def secret(path, text: str):
    path.write_text(text + "\n")
    return str(path)


def test_the_account_file_written_by_the_cli_is_what_the_broker_enforces(tmp_path, mqtt_certs):
    runner = CliRunner()
    plugin_file = tmp_path / "breathe-dynsec.json"
    admin = secret(tmp_path / "admin.pw", "admin-secret")
    result = runner.invoke(main, ["relay", "accounts", "init", str(plugin_file),
                                  "--admin-password-file", admin])
    assert result.exit_code == 0, result.output
    older = json.loads(plugin_file.read_text())  # a file written before operator accounts
    older["roles"] = [r for r in older["roles"] if r["rolename"] != "breathe-operator"]
    plugin_file.write_text(json.dumps(older))
    for args in (["add-device", "kitchen", "--password-file",
                  secret(tmp_path / "k.pw", "kitchen-secret")],
                 ["add-relay", "relay-a", "--instance", "a", "--password-file",
                  secret(tmp_path / "r.pw", "relay-secret")],
                 ["add-operator", "ops", "--password-file",
                  secret(tmp_path / "o.pw", "ops-secret")]):
        result = runner.invoke(main, ["relay", "accounts", *args, "--file", str(plugin_file)])
        assert result.exit_code == 0, result.output
    again = runner.invoke(main, ["relay", "accounts", "init", str(plugin_file),
                                 "--admin-password-file", admin])
    assert again.exit_code == 2 and "exists" in again.output  # never overwrites accounts
    assert "kitchen-secret" not in plugin_file.read_text()  # only salted hashes are stored
    roles = [r["rolename"] for r in json.loads(plugin_file.read_text())["roles"]]
    assert roles.count("breathe-operator") == 1  # put back for the operator it was added for

    broker = Broker(tmp_path / "broker", mqtt_certs)
    broker.dynsec_file.write_text(plugin_file.read_text())  # the operator's file, as written
    broker.start()
    try:
        assert connect_rc(broker, "kitchen", "kitchen-secret", "kitchen") == 0
        assert connect_rc(broker, "kitchen", "kitchen-secret", "bedroom") == 0x87
        assert connect_rc(broker, "kitchen", "wrong", "kitchen") != 0
        assert connect_rc(broker, "relay-a", "relay-secret", "breathe-relay-a") == 0
        assert connect_rc(broker, "relay-a", "relay-secret", "breathe-relay-b") == 0x87
        assert connect_rc(broker, "ops", "ops-secret", "breathe-operator-ops") == 0
        assert connect_rc(broker, "ops", "ops-secret", "breathe-relay-a") == 0x87
    finally:
        broker.stop()


def test_a_device_added_to_the_running_broker_can_connect_at_once(broker, tmp_path):
    config_file = write_relay_config(broker, tmp_path)  # [relay.mqtt]: where the broker is
    admin = secret(tmp_path / "admin.pw", broker.fleet_password(ADMIN_USER))
    result = CliRunner().invoke(main, [
        "--config", str(config_file), "relay", "accounts", "add-device", "hallway",
        "--password-file", secret(tmp_path / "h.pw", "hallway-secret"),
        "--admin-user", ADMIN_USER, "--admin-password-file", admin])
    assert result.exit_code == 0, result.output
    assert connect_rc(broker, "hallway", "hallway-secret", "hallway") == 0
    assert connect_rc(broker, "hallway", "hallway-secret", "kitchen") == 0x87
    saved = json.loads(broker.dynsec_file.read_text())  # the plugin keeps it over restarts
    assert "hallway" in [c["username"] for c in saved["clients"]]


@pytest.mark.parametrize("device_id", ["Kitchen", "a/b", "+", "#"])
def test_a_device_id_that_is_not_valid_on_the_wire_is_refused(device_id, tmp_path):
    plugin_file = tmp_path / "f.json"
    runner = CliRunner()
    runner.invoke(main, ["relay", "accounts", "init", str(plugin_file),
                         "--admin-password-file", secret(tmp_path / "a.pw", "x")])
    result = runner.invoke(main, ["relay", "accounts", "add-device", device_id,
                                  "--password-file", secret(tmp_path / "d.pw", "y"),
                                  "--file", str(plugin_file)])
    assert result.exit_code == 2
    assert "not valid" in result.output


def test_cli_commands_with_a_relay_instances_account_say_to_use_an_operator(broker, tmp_path):
    """A relay account pinned to its instance cannot open the CLI's connection (it would
    otherwise take over the running relay's session); the error names the fix."""
    broker.add_user("relay-a", relay_account=True, client_id="breathe-relay-a")
    config_file = tmp_path / "relay.toml"
    config_file.write_text(relay_config_toml(
        host=broker.host, port=broker.port, ca_file=broker.certs.ca, username="relay-a",
        password_file=broker.password_file_for("relay-a", tmp_path),
        store_url=str(tmp_path / "relay.db")))
    refused = CliRunner().invoke(main, ["--config", str(config_file), "relay", "cmd", "kitchen",
                                        "ping"])
    assert refused.exit_code != 0
    assert "refused user 'relay-a'" in refused.output
    assert "[relay.operator]" in refused.output and "add-operator" in refused.output

    broker.add_operator("ops")
    with config_file.open("a") as config:
        config.write(f'[relay.operator]\nusername = "ops"\npassword_file = '
                     f'{json.dumps(str(broker.password_file_for("ops", tmp_path)))}\n')
    offline = CliRunner().invoke(main, ["--config", str(config_file), "relay", "cmd",
                                        "kitchen", "ping", "--timeout", "0.5"])
    assert offline.exit_code == 1  # connected and sent; nobody answered
    assert "no reply from kitchen" in offline.output
