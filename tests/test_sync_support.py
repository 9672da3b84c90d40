"""Shared parts of the sync tests (no tests here): a small in-test relay that acks by id, the
device's settings for the test broker, fake device controls and queued sessions.

The relay here is deliberately tiny (the real one is relay/, built separately): it validates
what it receives with the wire schema, records every message id (so tests can tell "arrived at
least once" from "arrived twice"), acks when told to, and sends commands and config.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.config import Settings
from common.errors import BadInput
from device.store import open_db
from device.store.outbox_repo import Outgoing, enqueue
from device.store.transaction import write_transaction
from wire import protocol
from wire.metrics import SessionMetrics
from wire.patterns import builtin

DEVICE = "kitchen"
TIMEOUT = 10.0


def wait_until(check: Callable[[], Any], timeout: float = TIMEOUT, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(0.02)


def device_settings(broker: Any, directory: Path, *, device_id: str = DEVICE,
                    share: bool = True, **mqtt_extra: Any) -> Settings:
    """Settings for a device account on the test broker (added if missing)."""
    if device_id not in broker.passwords:
        broker.add_user(device_id)
    password_file = broker.password_file_for(device_id, directory)
    return Settings.model_validate({
        "device": {"id": device_id, "data_dir": str(directory)},
        "mqtt": {"enabled": True, "host": broker.host, "port": broker.port, "tls": True,
                 "ca_file": str(broker.certs.ca), "username": device_id,
                 "password_file": str(password_file), "keepalive": 5, **mqtt_extra},
        "privacy": {"share_metrics": share},
    })


def config_toml(settings: Settings, path: Path) -> Path:
    """The same settings as a TOML file, for a device run in a subprocess."""
    m, d = settings.mqtt, settings.device
    path.write_text(
        f'[device]\nid = "{d.id}"\ndata_dir = "{d.data_dir}"\n'
        f'[mqtt]\nenabled = true\nhost = "{m.host}"\nport = {m.port}\ntls = true\n'
        f'ca_file = "{m.ca_file}"\nusername = "{m.username}"\n'
        f'password_file = "{m.password_file}"\nkeepalive = {m.keepalive}\n'
        f'[privacy]\nshare_metrics = {str(settings.privacy.share_metrics).lower()}\n')
    return path


def session_payload(device_id: str, session_id: str) -> dict[str, Any]:
    """A finished session's sync message, as the session engine writes it."""
    return {
        "schema": 1, "id": session_id, "device_id": device_id, "profile": None,
        "pattern_id": "box", "pattern": builtin("box").model_dump(mode="json"),
        "started": "2025-03-01T08:00:00.000000+00:00",
        "ended": "2025-03-01T08:05:00.000000+00:00", "status": "completed",
        "duration_s": 300.0, "metrics": SessionMetrics(duration_s=300.0).to_dict(),
    }


def queue_sessions(db_path: Path, n: int, device_id: str = DEVICE) -> list[str]:
    """``n`` sessions waiting in the outbox (one transaction); their ids, oldest first."""
    ids = [f"s{i:05d}-{uuid.uuid4().hex[:8]}" for i in range(n)]
    db = open_db(db_path)
    try:
        with write_transaction(db):
            for sid in ids:
                enqueue(db, Outgoing(f"breathe/v1/{device_id}/sessions",
                                     session_payload(device_id, sid), message_id=sid))
    finally:
        db.close()
    return ids


class Controls:
    """DeviceControls for tests: records calls; one session at a time; applies haptic strength
    at run time and refuses to touch the LED rate while running (to show controls refusing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.running: str | None = None

    def start_session(self, pattern_id: str, minutes: float) -> dict[str, Any]:
        self.calls.append(("start_session", (pattern_id, minutes)))
        if self.running:
            raise BadInput(f"start: not possible while the session engine is running "
                           f"({self.running})")
        self.running = pattern_id
        return {"status": "running", "pattern_id": pattern_id}

    def stop_session(self) -> dict[str, Any]:
        self.calls.append(("stop_session", None))
        if not self.running:
            raise BadInput("stop: only while a session is running or paused")
        self.running = None
        return {"status": "stopped"}

    def apply_config(self, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        self.calls.append(("apply_config", dict(changes)))
        applied = {k: v for k, v in changes.items() if k == "pacing.haptic_strength"}
        rejected = {k: "cannot change while the LED runs" for k in changes
                    if k == "pacing.led_update_hz"}
        return applied, rejected

    def reboot(self) -> None:
        self.calls.append(("reboot", None))


class FakeRelay:
    """The relay account on the test broker: receives, validates, records, acks by id."""

    MODELS = {protocol.SESSIONS: protocol.SessionMessage,
              protocol.MINT_REQUEST: protocol.MintRequest,
              protocol.TELEMETRY: protocol.Telemetry, protocol.STATUS: protocol.Status,
              protocol.CONFIG_REPORTED: protocol.ConfigReported}

    def __init__(self, broker: Any, *, acking: bool = True) -> None:
        self.acking = acking
        self.lock = threading.Lock()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)  # subtopic -> id -> n
        self.messages: dict[str, list[Any]] = defaultdict(list)  # subtopic -> decoded
        self.replies: dict[bytes, protocol.CommandReply] = {}  # correlation -> reply
        self.invalid: list[str] = []
        self.batch_readers: set[str] = set()  # devices that said they read batch acks
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"relay-test-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set("relay", broker.passwords["relay"])
        self.client.tls_set(ca_certs=str(broker.certs.ca))
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(broker.host, broker.port, keepalive=5, clean_start=False,
                            properties=props)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT), "the test relay could not connect"

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.subscribe([(f"breathe/v1/+/{t}", 1) for t in (
            protocol.SESSIONS, protocol.MINT_REQUEST, protocol.TELEMETRY, protocol.STATUS,
            protocol.CONFIG_REPORTED, protocol.REPLY + "/#")])

    def _on_subscribe(self, client, userdata, mid, reasons, properties) -> None:
        self.connected.set()  # only now can nothing sent to the relay be missed

    def _on_message(self, client, userdata, message) -> None:
        device_id, rest = protocol.split_topic(message.topic)
        if rest.startswith(protocol.REPLY + "/"):
            reply = protocol.decode(protocol.CommandReply, message.payload)
            with self.lock:
                self.replies[message.properties.CorrelationData] = reply
            return
        if not message.payload:
            return
        try:
            decoded = protocol.decode(self.MODELS[rest], message.payload, where=message.topic)
        except protocol.ProtocolError as exc:
            with self.lock:
                self.invalid.append(str(exc))
            return
        user = getattr(message.properties, "UserProperty", None) or []
        with self.lock:
            if protocol.READS_BATCH_ACKS in user:
                self.batch_readers.add(device_id)
            self.counts[rest][decoded.id] += 1
            self.messages[rest].append(decoded)
        if self.acking and rest in (protocol.SESSIONS, protocol.MINT_REQUEST):
            self.ack(device_id, decoded.id)

    def ack(self, device_id: str, message_id: str, ok: bool = True,
            error: str | None = None) -> None:
        self.client.publish(protocol.topic(device_id, protocol.ACK),
                            protocol.Ack(id=message_id, ok=ok, error=error).encode(), qos=1)

    def ids(self, subtopic: str = protocol.SESSIONS) -> Counter[str]:
        with self.lock:
            return Counter(self.counts[subtopic])

    def received(self, subtopic: str) -> list[Any]:
        with self.lock:
            return list(self.messages[subtopic])

    def publish(self, device_id: str, subtopic: str, message: protocol.Message, *,
                retain: bool = False) -> None:
        self.client.publish(protocol.topic(device_id, subtopic), message.encode(), qos=1,
                            retain=retain).wait_for_publish(TIMEOUT)

    def command(self, device_id: str, name: str, payload: bytes | dict | None = None, *,
                timeout: float = TIMEOUT) -> protocol.CommandReply:
        """Send ``cmd/<name>`` with a response topic + correlation data; wait for the reply."""
        if payload is None or isinstance(payload, dict):
            payload = protocol.Command(id=uuid.uuid4().hex, args=payload or {}).encode()
        correlation = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = protocol.topic(device_id, protocol.REPLY, "fleet")
        props.CorrelationData = correlation
        self.client.publish(protocol.topic(device_id, protocol.CMD, name), payload, qos=1,
                            properties=props)
        return wait_until(lambda: self.replies.get(correlation), timeout, f"reply to {name}")

    def close(self) -> None:
        self.client.disconnect()  # wakes the network loop, so loop_stop does not wait 1 s
        self.client.loop_stop()
