"""Simulated devices: real MQTT clients that speak the wire schema, for the relay's tests and
``scripts/bench-relay``. Not the device's sync client (device/sync/); just enough of a device
to drive the relay: publish messages, collect acks and mint results, answer commands and
desired config.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from relay.mqtt import guarded
from relay.procs import stop_process
from wire import protocol
from wire.metrics import SessionMetrics
from wire.patterns import BUILT_INS, Pattern
from wire.protocol import (
    Ack,
    CatalogPage,
    CatalogQuery,
    Command,
    CommandReply,
    ConfigDesired,
    ConfigReported,
    Message,
    MintRequest,
    MintResult,
    PatternListing,
    SessionMessage,
    Status,
    Telemetry,
)

WALLET = "0x" + "ab" * 20


def session_message(device_id: str, message_id: str | None = None, **fields: Any
                    ) -> SessionMessage:
    """A completed five-minute box-breathing session, as a device would share it."""
    ended = datetime(2025, 3, 1, 7, 30, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": message_id or uuid.uuid4().hex, "device_id": device_id, "pattern_id": "box",
        "pattern": BUILT_INS["box"], "started": ended - timedelta(minutes=5), "ended": ended,
        "status": "completed", "duration_s": 300.0,
        "metrics": SessionMetrics(duration_s=300.0, cycles_completed=18, presence=0.98,
                                  coverage=0.9)}
    values.update(fields)
    return SessionMessage(**values)


def mint_request(device_id: str, message_id: str | None = None, *, wallet: str = WALLET,
                 achievement: str = "first_session") -> MintRequest:
    return MintRequest(id=message_id or uuid.uuid4().hex, device_id=device_id,
                       achievement=achievement, day=date(2025, 3, 1),
                       commitment=uuid.uuid4().hex * 2, wallet=wallet)


def pattern_listing(device_id: str, pattern_key: str = "calm", *, name: str = "Calm evening",
                    inhale: float = 4.0, hold_in: float = 0.0, exhale: float = 6.0,
                    hold_out: float = 0.0, description: str = "Longer out-breaths.",
                    creator: str = "Ada", category: str = "sleep",
                    tags: tuple[str, ...] = ("evening",), **fields: Any) -> PatternListing:
    """A custom pattern made public, with its true content hash unless ``content_hash`` given."""
    pattern = Pattern(name=name, description=description, inhale=inhale, hold_in=hold_in,
                      exhale=exhale, hold_out=hold_out)
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex, "device_id": device_id, "pattern_key": pattern_key,
        "creator": creator, "pattern": pattern, "category": category, "tags": tags,
        "content_hash": protocol.content_hash(pattern)}
    values.update(fields)
    return PatternListing(**values)


def telemetry(device_id: str, *, fps: float = 14.8, outbox_depth: int = 0) -> Telemetry:
    return Telemetry(id=uuid.uuid4().hex, device_id=device_id, at=datetime.now(UTC),
                     uptime_s=120.0, fps=fps, inference_ms=13.0, outbox_depth=outbox_depth)


def status(device_id: str, state: str = "online", version: str | None = "0.1.0") -> Status:
    return Status(id=uuid.uuid4().hex, device_id=device_id, state=state, version=version)


class SimDevice:
    """One device on the broker (client id and username = device id)."""

    def __init__(self, host: str, port: int, device_id: str, password: str, *,
                 ca_file: Path | None = None, answer_commands: bool = True,
                 refuse_keys: tuple[str, ...] = ("device.",), timeout: float = 10.0,
                 batch_acks: bool = True) -> None:
        self.device_id = device_id
        self._batch_acks: Properties | None = None  # None: a device that predates batch acks
        if batch_acks:
            self._batch_acks = Properties(PacketTypes.PUBLISH)
            self._batch_acks.UserProperty = [protocol.READS_BATCH_ACKS]
        self.refuse_keys = refuse_keys
        self.acks: dict[str, Ack] = {}
        self.ack_count = 0  # messages acked (a batch ack counts each id)
        self.ack_messages = 0  # ack messages received
        self.results: dict[str, MintResult] = {}
        self.desired: list[ConfigDesired] = []
        self.commands: list[tuple[str, Command]] = []
        self.pages: dict[bytes, CatalogPage] = {}  # catalog answers by correlation data
        self._changed = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(device_id, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.max_inflight_messages_set(0)
        self.client.on_message = guarded("sim message")(self._on_message)
        self.answer_commands = answer_commands
        ready = threading.Event()
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.connect(host, port, 30, clean_start=True)
        self.client.loop_start()
        self.client.subscribe([(protocol.topic(device_id, sub), 1) for sub in (
            protocol.ACK, protocol.MINT_RESULT, protocol.CONFIG_DESIRED, protocol.CMD + "/#",
            protocol.INBOX + "/#")])
        if not ready.wait(timeout):
            raise TimeoutError(f"{device_id}: no SUBACK in {timeout} s")

    # --- publishing -----------------------------------------------------------------------

    def publish(self, subtopic: str, message: Message | bytes, *, qos: int = 1,
                wait: bool = True) -> mqtt.MQTTMessageInfo:
        payload = message if isinstance(message, bytes) else message.encode()
        info = self.client.publish(protocol.topic(self.device_id, subtopic), payload, qos=qos,
                                   properties=self._batch_acks)
        if wait and qos:
            info.wait_for_publish(10)
        return info

    def query(self, query: CatalogQuery | None = None, *, response_topic: str | None = None,
              timeout: float = 10.0, **fields: Any) -> CatalogPage | None:
        """Ask the relay for a catalog page (MQTT v5 request/response); None: no answer."""
        query = query or CatalogQuery(id=uuid.uuid4().hex, **fields)
        correlation = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = response_topic or protocol.topic(self.device_id, protocol.INBOX,
                                                               uuid.uuid4().hex)
        props.CorrelationData = correlation
        info = self.client.publish(protocol.topic(self.device_id, protocol.CATALOG_QUERY),
                                   query.encode(), qos=1, properties=props)
        info.wait_for_publish(timeout)
        self.wait_for(lambda: correlation in self.pages, timeout)
        return self.pages.get(correlation)

    # --- waiting for the relay ------------------------------------------------------------

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def wait_acks(self, ids: list[str] | set[str], timeout: float = 10.0) -> dict[str, Ack]:
        wanted = set(ids)
        self.wait_for(lambda: wanted <= self.acks.keys(), timeout)
        return {i: self.acks[i] for i in wanted if i in self.acks}

    def wait_result(self, request_id: str, timeout: float = 30.0) -> MintResult | None:
        self.wait_for(lambda: request_id in self.results, timeout)
        return self.results.get(request_id)

    # --- what the relay sends -------------------------------------------------------------

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        _, subtopic = protocol.split_topic(message.topic)
        with self._changed:
            if subtopic == protocol.ACK:
                ack = protocol.decode(Ack, message.payload)
                for message_id in ack.covers:  # one message, or a batch
                    self.acks[message_id] = ack
                self.ack_count += len(ack.covers)
                self.ack_messages += 1
            elif subtopic == protocol.MINT_RESULT:
                result = protocol.decode(MintResult, message.payload)
                self.results[result.id] = result
            elif subtopic.startswith(protocol.INBOX + "/"):
                correlation = getattr(message.properties, "CorrelationData", None) or b""
                self.pages[correlation] = protocol.decode(CatalogPage, message.payload)
            elif subtopic == protocol.CONFIG_DESIRED:
                desired = protocol.decode(ConfigDesired, message.payload)
                self.desired.append(desired)
                self._report(desired)
            elif subtopic.startswith(protocol.CMD + "/"):
                command = protocol.decode(Command, message.payload)
                self.commands.append((subtopic.partition("/")[2], command))
                if self.answer_commands:
                    self._answer(subtopic.partition("/")[2], command, message.properties)
            self._changed.notify_all()

    def _report(self, desired: ConfigDesired) -> None:
        applied = {k: v for k, v in desired.changes.items()
                   if not k.startswith(self.refuse_keys)}
        rejected = {k: "not settable from the fleet" for k in desired.changes
                    if k not in applied}
        self.publish(protocol.CONFIG_REPORTED, ConfigReported(
            id=uuid.uuid4().hex, device_id=self.device_id, desired_id=desired.id,
            applied=applied, rejected=rejected, config=applied), wait=False)

    def _answer(self, name: str, command: Command, properties: Any) -> None:
        if name == "ping":
            reply = CommandReply(id=command.id, ok=True, result={"pong": True,
                                                                 "args": command.args})
        else:
            reply = CommandReply(id=command.id, ok=False, error=f"unknown command {name!r}")
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = properties.CorrelationData
        self.client.publish(properties.ResponseTopic, reply.encode(), qos=1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def relay_config_toml(*, host: str, port: int, ca_file: Path | None, password_file: Path,
                      store_url: str, share_group: str = "relay",
                      chain: dict[str, Any] | None = None, username: str = "relay") -> str:
    """A ``breathe --config`` file for a relay on this broker (tests, bench, demos)."""
    lines = ["[relay]", f"store_url = {_toml(store_url)}", f"share_group = {_toml(share_group)}",
             "", "[relay.mqtt]", f"host = {_toml(host)}", f"port = {port}",
             f"tls = {'true' if ca_file else 'false'}", f"username = {_toml(username)}",
             f"password_file = {_toml(str(password_file))}"]
    if ca_file:
        lines.append(f"ca_file = {_toml(str(ca_file))}")
    if chain:
        lines += ["", "[relay.chain]"] + [f"{k} = {_toml(v)}" for k, v in chain.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    import json

    return str(value) if isinstance(value, int) else json.dumps(str(value))


class RelayProcess:
    """``breathe -v --config FILE relay run --instance NAME`` as a real process."""

    READY = "subscribed to the fleet's messages"

    def __init__(self, config_file: Path, instance: str, log_path: Path) -> None:
        self.config_file = config_file
        self.instance = instance
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def command(self) -> list[str]:
        script = Path(sys.executable).parent / "breathe"
        head = [str(script)] if script.exists() else [sys.executable, "-m", "device"]
        return [*head, "-v", "--config", str(self.config_file), "relay", "run", "--instance",
                self.instance]

    def start(self, timeout: float = 30.0) -> RelayProcess:
        """Start and wait until it has subscribed (its log says so)."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> RelayProcess:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREATHE")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=log, env=env,
                                            stdin=subprocess.DEVNULL)
        return self

    def wait_ready(self, timeout: float = 30.0) -> RelayProcess:
        deadline = time.monotonic() + timeout
        while self.READY not in self.log(self._offset):
            if self.process is None or self.process.poll() is not None \
                    or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"relay {self.instance} did not subscribe within "
                                   f"{timeout:g} s:\n{self.log(self._offset)[-3000:]}")
            time.sleep(0.02)
        return self

    def log(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM: the relay stores and acks what it holds, then exits; its exit code."""
        if self.process is None:
            return None
        code, self.process = stop_process(self.process, timeout), None
        return code

    def kill(self) -> None:
        """SIGKILL: the process dies wherever it is."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(5)
            self.process = None
