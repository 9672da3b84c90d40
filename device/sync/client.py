"""The device's MQTT sync client: outbox drain, status, telemetry, fleet config, commands and
catalog queries (a request answered on the device's inbox, ``device.sync.inbox``).

Two threads. paho's network loop (``loop_start``) runs the callbacks, and each callback only
puts an event on a queue (wrapped so an exception is logged and never kills paho's thread,
FACTS.md). One worker thread owns a database connection and does everything else: applies
acks, drains the outbox, sends telemetry, applies config and runs commands. So no database
work ever blocks the network loop, and the store's one-connection-per-thread rule holds.

The connection: MQTT v5 over TLS (``mqtt.ca_file``), username + the password from
``mqtt.password_file``, client id = device id, a persistent session (clean_start False and a
session expiry, so the broker keeps acks and commands while the device is away), paho's
reconnect with exponential backoff, and a retained ``offline`` status as the last will.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from device.clock import Clock, MonotonicClock
from device.sharing import mint
from device.sharing.catalog import SeenEntries
from device.status import package_version
from device.store import open_db, outbox_repo
from device.store.settings_repo import get_setting, set_setting
from device.sync import fleet
from device.sync.commands import PI_MODEL_PATH, CommandRunner, DeviceControls
from device.sync.connection import connect_persistent, make_client, reads_batch_acks
from device.sync.fleet_config import DESIRED_ID_KEY, with_overrides
from device.sync.inbox import DEFAULT_TIMEOUT_S, Inbox, RelayUnavailable
from device.sync.mint_followup import MintFollowUp
from device.sync.outbox_sender import (
    DEFAULT_MAX_RESEND_S,
    DEFAULT_RESEND_S,
    DEFAULT_WINDOW,
    OutboxSender,
)
from wire import protocol

__all__ = ["DeviceControls", "RelayUnavailable", "State", "SyncClient"]

log = logging.getLogger(__name__)

State = Literal["disabled", "connecting", "connected", "disconnected"]
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps acks and commands for a week offline
POLL_S = 0.5  # how soon rows the session engine writes are noticed


class SyncClient:
    """Syncs the device at ``db_path`` with the relay over the broker in ``settings.mqtt``.

    ``controls``: a :class:`DeviceControls` for commands and run-time config. ``status``:
    anything with ``stats() -> dict`` (``device.status.DeviceStatus``) for telemetry, or None;
    it may also be set later (``client.status = ...``). The keyword-only tuning arguments exist
    for tests and the benchmark.
    """

    def __init__(
        self,
        settings: Any,
        db_path: str | Path,
        *,
        controls: DeviceControls,
        status: Any | None = None,
        clock: Clock | None = None,
        window: int = DEFAULT_WINDOW,
        resend_s: float = DEFAULT_RESEND_S,
        max_resend_s: float = DEFAULT_MAX_RESEND_S,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 60,
        poll_s: float = POLL_S,
        pi_model_path: Path = PI_MODEL_PATH,
    ) -> None:
        self.settings = settings
        self.db_path = Path(db_path)
        self.controls = controls
        self.status = status
        self.clock = clock or MonotonicClock()
        self.device_id: str = settings.device.id
        self.poll_s = poll_s
        self.reconnect = (reconnect_min_s, reconnect_max_s)
        self._batch_acks = reads_batch_acks()
        self.sender = OutboxSender(self._publish_qos1, device_id=self.device_id,
                                   clock=self.clock, privacy=settings.privacy, window=window,
                                   resend_s=resend_s, max_resend_s=max_resend_s)
        self.followup = MintFollowUp(self._publish_qos1, device_id=self.device_id,
                                     clock=self.clock, resend_s=resend_s,
                                     max_resend_s=max_resend_s)
        self.commands = CommandRunner(controls, sync_now=self._sync_now_result,
                                      set_config=self._set_config_command, info=self._info,
                                      pi_model_path=pi_model_path)
        self.version = package_version()
        self._state: State = "disabled" if not settings.mqtt.enabled else "disconnected"
        self._last_sync: datetime | None = None
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._mqtt: mqtt.Client | None = None
        self._started = time.monotonic()
        self._next_telemetry = 0.0
        self._db: Any = None  # the worker thread's connection
        self._subscribe_mid: int | None = None
        self.inbox = Inbox(self.device_id)
        self.catalog_seen = SeenEntries()  # entries of recent catalog pages, for importing

    # -- what the daemon and the web app read -------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def last_sync(self) -> str | None:
        """When the relay last confirmed a message (ISO 8601 UTC), or None."""
        return self._last_sync.isoformat(timespec="seconds") if self._last_sync else None

    def outbox_depth(self) -> int:
        """Messages waiting for the relay's ack (read now, from the database)."""
        db = open_db(self.db_path)  # migrates a file nothing has opened yet: never "no table"
        try:
            return outbox_repo.count(db)
        finally:
            db.close()

    def sync_now(self) -> None:
        """Drain now: whatever waits for an ack is sent again at once."""
        self._events.put(("sync", None))

    def query_catalog(self, query: protocol.CatalogQuery, *,
                      timeout: float = DEFAULT_TIMEOUT_S) -> protocol.CatalogPage:
        """One page of the shared catalog from the relay (any thread; waits up to ``timeout``).

        Raises :class:`RelayUnavailable` when sync is off, the device is not connected, or
        the relay does not answer (or refuses) in time."""
        if not self.settings.mqtt.enabled:
            raise RelayUnavailable("catalog: sync is off on this device ([mqtt] enabled = "
                                   "false), so the shared catalog cannot be reached")
        client = self._mqtt
        if client is None or self._state != "connected":
            raise RelayUnavailable(f"catalog: not connected to the broker at "
                                   f"{self.settings.mqtt.host}:{self.settings.mqtt.port} "
                                   f"(sync is {self._state}); try again in a moment")
        page = self.inbox.ask(client, protocol.CATALOG_QUERY, query, protocol.CatalogPage,
                              timeout=timeout, what="catalog")
        if not page.ok:
            raise RelayUnavailable(f"catalog: the relay refused the query: {page.error}")
        self.catalog_seen.remember(page.items)
        return page

    # -- start / stop ---------------------------------------------------------------------------

    def start(self) -> SyncClient:
        """Connect in the background (a broker that is down is retried with backoff)."""
        if not self.settings.mqtt.enabled:
            log.info("sync is off ([mqtt] enabled = false)")
            return self
        if self._worker is not None:
            return self
        self._stopping.clear()
        self._events = queue.Queue()
        db = open_db(self.db_path)  # migrates a fresh file before anything else reads it
        try:
            self.settings = with_overrides(self.settings, db)
        finally:
            db.close()
        self._mqtt = self._make_client()
        self._state = "connecting"
        connect_persistent(self._mqtt, self.settings.mqtt, SESSION_EXPIRY_S)
        self._worker = threading.Thread(target=self._work, name="breathe-sync", daemon=True)
        self._worker.start()
        self._mqtt.loop_start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Say ``offline`` (retained), disconnect cleanly and stop both threads."""
        self._stopping.set()
        self._events.put(("stop", None))
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None
        client, self._mqtt = self._mqtt, None
        if client is None:
            return
        if client.is_connected():
            info = client.publish(self._topic(protocol.STATUS), self._status("offline"), qos=1,
                                  retain=True)
            try:
                info.wait_for_publish(min(timeout, 2.0))
            except (RuntimeError, ValueError):
                pass  # not connected after all: the last will says offline instead
        client.disconnect()
        client.loop_stop()
        if self._state != "disabled":
            self._state = "disconnected"

    # -- the connection -------------------------------------------------------------------------

    def _topic(self, *parts: str) -> str:
        return protocol.topic(self.device_id, *parts)

    def _status(self, state: str) -> bytes:
        at = None if state == "offline" else datetime.now(UTC)
        return fleet.status_message(self.device_id, state, self.version, at=at).encode()

    def _make_client(self) -> mqtt.Client:
        return make_client(
            self.settings.mqtt, self.device_id,
            will=(self._topic(protocol.STATUS), self._status("offline")),
            window=self.sender.window, reconnect=self.reconnect,
            on_connect=self._on_connect, on_subscribe=self._on_subscribe,
            on_disconnect=self._on_disconnect, on_message=self._on_message,
            on_connect_fail=self._on_connect_fail)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._state = "disconnected"
            log.error("broker %s:%s refused the connection: %s (check mqtt.username and "
                      "mqtt.password_file)", self.settings.mqtt.host, self.settings.mqtt.port,
                      reason)
            return
        log.info("connected to %s:%s (session %s)", self.settings.mqtt.host,
                 self.settings.mqtt.port, "resumed" if flags.session_present else "new")
        client.publish(self._topic(protocol.STATUS), self._status("online"), qos=1, retain=True)
        options = SubscribeOptions(qos=1)
        _, self._subscribe_mid = client.subscribe([(self._topic(t), options) for t in (
            protocol.ACK, protocol.MINT_RESULT, protocol.CONFIG_DESIRED, protocol.CMD + "/#",
            protocol.INBOX + "/#")])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[Any],
                      properties: Any) -> None:
        """Connected for real once the broker holds the subscriptions: acks can come back."""
        if mid != self._subscribe_mid:
            return
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("the broker refused subscriptions under %s (%s): check the ACL allows "
                      "this device's username to read its own subtree", self._topic(),
                      ", ".join(refused))
        self._state = "connected"
        self._events.put(("connected", None))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if self._state != "disabled":
            self._state = "disconnected"
        if not self._stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting with backoff", reason)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._state = "disconnected"
        log.warning("cannot reach the broker at %s:%s; retrying with backoff",
                    self.settings.mqtt.host, self.settings.mqtt.port)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.startswith(self.inbox.subscription[:-1]):
            self.inbox.deliver(message)  # a waiting request wakes now, not at the next poll
            return
        self._events.put(("message", message))

    def _publish_qos1(self, topic: str, payload: bytes) -> bool:
        client = self._mqtt
        if client is None or self._state != "connected":
            return False
        return client.publish(topic, payload, qos=1, properties=self._batch_acks
                              ).rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- the worker -----------------------------------------------------------------------------

    def _work(self) -> None:
        db = self._db = open_db(self.db_path)
        try:
            while not self._stopping.is_set():
                try:
                    self._step(db)
                except Exception:  # noqa: BLE001 - the worker keeps the device syncing
                    log.exception("sync step failed; retrying")
                    self._stopping.wait(1.0)
        finally:
            db.close()

    def _step(self, db: Any) -> None:
        events = self._next_events()
        acks: list[protocol.Ack] = []
        for kind, item in events:
            if kind == "connected":
                self.sender.reconnected()
                self.followup.reconnected()
                self._next_telemetry = 0.0
            elif kind == "sync":
                self.sender.resend_now()
                self.followup.reconnected()
            elif kind == "message":
                ack = self._handle(db, item)
                if ack is not None:
                    acks.append(ack)
        if acks:
            if self.sender.apply_acks(db, acks):
                self._last_sync = datetime.now(UTC)
        if self._state == "connected":
            self.sender.pump(db)
            self.followup.pump(db)
            self._telemetry(db)

    def _next_events(self) -> list[tuple[str, Any]]:
        """Wait up to ``poll_s`` for one event, then take every one already queued."""
        try:
            events = [self._events.get(timeout=self.poll_s)]
        except queue.Empty:
            return []
        while len(events) < 10_000:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        return events

    def _handle(self, db: Any, message: mqtt.MQTTMessage) -> protocol.Ack | None:
        """Act on one incoming message; acks are returned to be applied as a batch."""
        try:
            _, rest = protocol.split_topic(message.topic)
        except protocol.ProtocolError:
            log.warning("message on unexpected topic %s ignored", message.topic)
            return None
        try:
            if rest == protocol.ACK:
                return protocol.decode(protocol.Ack, message.payload, where=message.topic)
            if rest == protocol.MINT_RESULT:
                result = protocol.decode(protocol.MintResult, message.payload,
                                         where=message.topic)
                mint.apply_mint_result(db, result)
                self.sender.inflight.pop(result.id, None)
            elif rest == protocol.CONFIG_DESIRED:
                self._desired(db, message.payload)
            elif rest.startswith(protocol.CMD + "/"):
                self.commands.handle(rest.partition("/")[2], message, self._mqtt)
            else:
                log.warning("message on %s ignored (not a topic the device acts on)",
                            message.topic)
        except protocol.ProtocolError as exc:
            log.warning("ignored: %s", exc)
        return None

    # -- telemetry and config -------------------------------------------------------------------

    def _telemetry(self, db: Any) -> None:
        now = self.clock.now()
        if now < self._next_telemetry:
            return
        self._next_telemetry = now + float(self.settings.mqtt.telemetry_interval_s)
        message = fleet.telemetry_message(self.device_id, self.status, db,
                                          uptime_s=time.monotonic() - self._started,
                                          privacy=self.settings.privacy)
        if self._mqtt is not None:
            self._mqtt.publish(self._topic(protocol.TELEMETRY), message.encode(), qos=0)

    def _publish_reported(self, message: protocol.ConfigReported | None) -> None:
        if message is not None and self._mqtt is not None:
            self._mqtt.publish(self._topic(protocol.CONFIG_REPORTED), message.encode(), qos=1)

    def _desired(self, db: Any, payload: bytes) -> None:
        if not payload:
            return  # the retained desired config was cleared: nothing to apply
        try:
            desired = protocol.decode(protocol.ConfigDesired, payload, where="config/desired")
        except protocol.ProtocolError as exc:
            self._publish_reported(fleet.reported_message(
                self.device_id, self.settings, rejected={"config/desired": str(exc)}))
            return
        if get_setting(db, DESIRED_ID_KEY) == desired.id:
            self._publish_reported(fleet.reported_message(self.device_id, self.settings,
                                                          desired_id=desired.id))
            return  # applied already (it is retained, so it comes with every connect)
        outcome = self._apply(db, desired.changes)
        set_setting(db, DESIRED_ID_KEY, desired.id)
        self._publish_reported(fleet.reported_message(self.device_id, self.settings,
                                                      desired_id=desired.id, outcome=outcome))

    def _apply(self, db: Any, changes: dict[str, Any]) -> fleet.ConfigOutcome:
        outcome, self.settings = fleet.apply_changes(self.settings, db, changes,
                                                     self.controls.apply_config)
        if "mqtt.telemetry_interval_s" in outcome.applied_now:
            self._next_telemetry = min(self._next_telemetry, self.clock.now()
                                       + float(self.settings.mqtt.telemetry_interval_s))
        return outcome

    # -- commands -------------------------------------------------------------------------------

    def _sync_now_result(self) -> dict[str, Any]:
        self.sender.resend_now()
        return {"outbox_depth": self.outbox_depth(), "in_flight": len(self.sender.inflight)}

    def _set_config_command(self, changes: dict[str, Any]) -> dict[str, Any]:
        assert self._db is not None, "commands run on the sync worker"
        outcome = self._apply(self._db, changes)
        self._publish_reported(fleet.reported_message(self.device_id, self.settings,
                                                      outcome=outcome))
        return outcome.to_dict()

    def _info(self) -> dict[str, Any]:
        return {"pong": True, "device_id": self.device_id, "version": self.version,
                "uptime_s": round(time.monotonic() - self._started, 1),
                "at": datetime.now(UTC).isoformat(timespec="seconds")}
