"""The shipped mosquitto sample (firmware_config/mosquitto/) really isolates devices."""

from __future__ import annotations

import queue
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

TIMEOUT = 5.0


class Client:
    """A small blocking MQTT v5 client over TLS for probing the broker."""

    def __init__(self, broker, username: str, password: str | None = None) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subacks: queue.Queue[list] = queue.Queue()
        self.connected: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{username}-probe-"
                                  f"{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password or broker.passwords[username])
        self.client.tls_set(ca_certs=str(broker.certs.ca))
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.put(rc.value)
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(
            [rc.value for rc in rcs])
        self.client.connect(broker.host, broker.port)
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

    def connect(username: str, password: str | None = None) -> Client:
        clients.append(Client(broker, username, password))
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
    assert granted in ([0x87], [1])  # refused outright, or granted and filtered by the ACL


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
