"""The shipped mosquitto sample (firmware_config/mosquitto/ + the dynamic-security accounts of
relay/accounts.py) really isolates devices: own topics only, own client id only, no joining the
relay's shared group; and what it queued for an offline device survives a crash."""

from __future__ import annotations

import queue
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TIMEOUT = 5.0


class Client:
    """A small blocking MQTT v5 client over TLS for probing the broker."""

    def __init__(self, broker, username: str, password: str | None = None, *,
                 client_id: str | None = None, persistent: bool = False) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subacks: queue.Queue[list] = queue.Queue()
        self.connected: queue.Queue[int] = queue.Queue()
        if client_id is None:  # a device's only client id is its device id
            client_id = (f"{username}-probe-{uuid.uuid4().hex[:6]}"
                         if username.startswith("relay") else username)
        self.disconnects: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password or broker.passwords[username])
        self.client.tls_set(ca_certs=str(broker.certs.ca))
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.put(rc.value)
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc.value)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(
            [rc.value for rc in rcs])
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if persistent else 0
        self.client.connect(broker.host, broker.port, clean_start=not persistent,
                            properties=props)
        self.client.loop_start()
        self.rc = self.connected.get(timeout=TIMEOUT)

    def subscribe(self, topic: str) -> list[int]:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=TIMEOUT)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(TIMEOUT)

    def received(self, timeout: float = 1.0) -> list[tuple[str, bytes]]:
        out = []
        try:
            while True:
                m = self.messages.get(timeout=timeout)
                out.append((m.topic, m.payload))
                timeout = 0.2
        except queue.Empty:
            return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def fleet(broker):
    for device in ("kitchen", "bedroom"):
        broker.add_user(device)
    clients: list[Client] = []

    def connect(username: str, password: str | None = None, **options) -> Client:
        clients.append(Client(broker, username, password, **options))
        return clients[-1]

    yield connect
    for c in clients:
        c.close()


def test_a_device_publishes_only_under_its_own_subtree(fleet):
    relay = fleet("relay")
    assert relay.subscribe("breathe/v1/+/sessions") == [1]
    kitchen = fleet("kitchen")
    kitchen.publish("breathe/v1/kitchen/sessions", b"mine")
    kitchen.publish("breathe/v1/bedroom/sessions", b"spoofed")  # the broker drops it
    got = relay.received()
    assert got == [("breathe/v1/kitchen/sessions", b"mine")]


def test_a_device_cannot_read_another_devices_commands(fleet):
    kitchen = fleet("kitchen")
    assert kitchen.subscribe("breathe/v1/kitchen/cmd/#") == [1]
    granted = kitchen.subscribe("breathe/v1/bedroom/cmd/#")
    kitchen.subscribe("breathe/v1/#")  # a wildcard grants nothing beyond its own subtree
    relay = fleet("relay")
    relay.publish("breathe/v1/bedroom/cmd/ping", b"for bedroom")
    relay.publish("breathe/v1/kitchen/cmd/ping", b"for kitchen")
    topics = [t for t, _ in kitchen.received()]
    assert "breathe/v1/bedroom/cmd/ping" not in topics
    assert topics.count("breathe/v1/kitchen/cmd/ping") >= 1
    assert granted == [0x87]  # refused outright (plain acl_file granted it, then filtered)


def test_relays_share_the_load_through_a_shared_subscription(fleet):
    a, b = fleet("relay"), fleet("relay")
    assert a.subscribe("$share/relay/breathe/v1/+/sessions") == [1]
    assert b.subscribe("$share/relay/breathe/v1/+/sessions") == [1]
    kitchen = fleet("kitchen")
    for i in range(20):
        kitchen.publish("breathe/v1/kitchen/sessions", str(i).encode())
    got_a, got_b = a.received(), b.received()
    payloads = sorted(int(p) for _, p in got_a + got_b)
    assert payloads == list(range(20))  # each message to exactly one relay
    assert got_a and got_b


def test_a_wrong_password_is_refused(fleet):
    bad = fleet("kitchen", "not-the-password")
    assert bad.rc != 0


NOT_AUTHORIZED = 0x87


def test_a_device_can_connect_only_with_its_own_client_id(fleet):
    assert fleet("kitchen", client_id="bedroom").rc == NOT_AUTHORIZED  # another device's id
    assert fleet("kitchen", client_id="breathe-relay-main").rc == NOT_AUTHORIZED  # the relay's
    bedroom = fleet("bedroom")
    assert bedroom.rc == 0
    assert bedroom.disconnects.empty()  # nobody kicked it off


def test_a_relay_account_pinned_to_its_instance_id_refuses_any_other(broker, fleet):
    broker.add_user("relay-a", relay_account=True, client_id="breathe-relay-a")
    assert fleet("relay-a", client_id="breathe-relay-a").rc == 0
    assert fleet("relay-a", client_id="breathe-relay-b").rc == NOT_AUTHORIZED
    assert fleet("kitchen", client_id="breathe-relay-a").rc == NOT_AUTHORIZED


def test_an_operator_reaches_devices_but_never_a_relays_id_or_its_share(broker, fleet):
    broker.add_user("relay-a", relay_account=True, client_id="breathe-relay-a")
    broker.add_operator("ops")  # added to the running broker: its role is created there
    assert fleet("ops", client_id="breathe-relay-a").rc == NOT_AUTHORIZED
    assert fleet("ops", client_id="kitchen").rc == NOT_AUTHORIZED
    ops = fleet("ops", client_id="breathe-operator-ops")
    assert ops.rc == 0
    for topic in ("$share/relay/breathe/v1/+/sessions", "breathe/v1/+/sessions",
                  "breathe/v1/kitchen/mint/request", "breathe/v1/kitchen/cmd/#", "#"):
        assert ops.subscribe(topic) == [NOT_AUTHORIZED], topic
    assert ops.subscribe("breathe/v1/kitchen/reply/#") == [1]
    kitchen = fleet("kitchen")
    assert kitchen.subscribe("breathe/v1/kitchen/cmd/#") == [1]
    assert kitchen.subscribe("breathe/v1/kitchen/ack") == [1]
    ops.publish("breathe/v1/kitchen/ack", b"a forged ack")  # the relay's to send, not its
    ops.publish("breathe/v1/kitchen/cmd/ping", b"ping")
    assert kitchen.received() == [("breathe/v1/kitchen/cmd/ping", b"ping")]
    kitchen.publish("breathe/v1/kitchen/reply/1", b"pong")
    assert ops.received() == [("breathe/v1/kitchen/reply/1", b"pong")]
    broker.add_operator("ops-2")  # a second operator shares the role that now exists
    assert fleet("ops-2", client_id="breathe-operator-ops-2").rc == 0


def test_a_device_cannot_join_the_relays_shared_group_or_read_others(fleet):
    relay = fleet("relay")
    assert relay.subscribe("$share/relay/breathe/v1/+/sessions") == [1]
    kitchen = fleet("kitchen")
    for topic in ("$share/relay/breathe/v1/+/sessions", "$share/relay/breathe/v1/#",
                  "breathe/v1/bedroom/ack", "breathe/v1/bedroom/mint/result",
                  "breathe/v1/+/sessions", "breathe/v1/#", "#"):
        assert kitchen.subscribe(topic) == [NOT_AUTHORIZED], topic
    bedroom = fleet("bedroom")
    for i in range(20):
        bedroom.publish("breathe/v1/bedroom/sessions", str(i).encode())
    got = relay.received()
    assert sorted(int(p) for _, p in got) == list(range(20))  # the relay got every one
    assert kitchen.received(timeout=0.3) == []


def test_messages_queued_for_an_offline_device_survive_a_broker_crash(broker, fleet):
    kitchen = fleet("kitchen", persistent=True)
    assert kitchen.subscribe("breathe/v1/kitchen/mint/result") == [1]
    kitchen.close()  # a persistent session (MQTT v5 expiry below) now queues for it
    relay = fleet("relay")
    relay.publish("breathe/v1/kitchen/mint/result", b"token 7")
    saved = broker.directory / "persist" / "mosquitto.db"
    before = saved.stat().st_mtime_ns if saved.exists() else 0
    deadline = time.monotonic() + 10
    while (not saved.exists() or saved.stat().st_mtime_ns == before) and \
            time.monotonic() < deadline:  # autosave_interval: written within seconds
        time.sleep(0.1)
    broker.kill()
    broker.start()
    again = fleet("kitchen", persistent=True)
    assert ("breathe/v1/kitchen/mint/result", b"token 7") in again.received(timeout=3)
