"""The relay's MQTT consumer: shared subscriptions in, validated batches stored, then acks out.

Flow per message: paho's network thread only queues it; a writer thread takes what is queued
(up to ``batch_max``), validates each message (:func:`relay.validate.check`; a catalog query
goes to the query responder), stores the batch in one transaction and only after the commit
(a) publishes the end-to-end ``ack`` for sessions and mint requests (one per device per batch,
listing the ids; a refusal or a mint request's ack alone) and (b) sends the MQTT PUBACK.
PUBACKs are manual, so a relay that dies before its commit never acknowledged anything: the
broker re-delivers to its persistent session (stable client id, clean_start False + session
expiry) and the device re-sends what was not acked. Storing is idempotent by message id, so
every re-delivery ends as ``duplicate=True``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from relay.catalog_query import Query, QueryResponder
from relay.mqtt import connect_properties, guarded, make_client, publish_properties
from relay.settings import RelaySettings
from relay.store import MintRow, RelayStore, timestamp
from relay.validate import ACKED, Inbound, Rejection, check
from wire import protocol
from wire.protocol import Ack, ConfigDesired, Message

log = logging.getLogger(__name__)

SUBTOPICS = (protocol.SESSIONS, protocol.MINT_REQUEST, protocol.STATUS, protocol.TELEMETRY,
             protocol.CONFIG_REPORTED, protocol.REPLY + "/#", "catalog/#",
             protocol.PATTERN_MINT_REQUEST, protocol.RETRACT)
MINTS = (protocol.MINT_REQUEST, protocol.PATTERN_MINT_REQUEST)
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue this long while we are down
RECEIVE_MAXIMUM = 1000  # un-PUBACKed messages the broker may have in flight to us
LINGER_S = 0.02  # the longest the first message of a batch waits for others to join it
LINGER_STEP_S = 0.002  # ... and it waits only while more keep coming within this


def subscriptions(share_group: str) -> list[str]:
    return [f"$share/{share_group}/{protocol.TOPIC_ROOT}/+/{sub}" for sub in SUBTOPICS]


class _Item(NamedTuple):  # a tuple: built for every message on the network thread, which
    # does nothing else with it: checking it there kept paho from reading the next packet
    mid: int
    qos: int
    generation: int  # which connection it came on: a PUBACK is only valid on that one
    topic: str
    payload: bytes
    props: Any  # its MQTT v5 properties (paho's object), or None


class _Checked(NamedTuple):
    item: _Item
    result: Inbound | Rejection

    @property
    def batch_acks(self) -> bool:  # its device said it reads acks that list many ids
        return protocol.READS_BATCH_ACKS in (getattr(self.item.props, "UserProperty", None)
                                             or ())


class _LogLimiter:
    """At most ``burst`` rejection lines per reason per minute, so a flood cannot fill disks."""

    def __init__(self, burst: int = 20, window_s: float = 60.0) -> None:
        self.burst, self.window_s = burst, window_s
        self.seen: dict[str, tuple[float, int]] = {}

    def allow(self, reason: str) -> bool:
        now = time.monotonic()
        start, count = self.seen.get(reason, (now, 0))
        if now - start > self.window_s:
            start, count = now, 0
        self.seen[reason] = (start, count + 1)
        if count == self.burst:
            log.warning("relay: more '%s' rejections this minute are counted, not logged",
                        reason)
        return count < self.burst


class Consumer:
    """Consumes the fleet's messages into ``store``; ``on_mint(device, id)`` for new requests,
    ``on_mint_duplicate(row)`` when a device asks again about a request already stored."""

    def __init__(self, settings: RelaySettings, store: RelayStore, *, client_id: str,
                 on_mint: Callable[[str, str], None] = lambda device, mid: None,
                 on_mint_duplicate: Callable[[MintRow], None] = lambda row: None,
                 batch_max: int = 500) -> None:
        self.settings = settings
        self.store = store
        self.client_id = client_id
        self.on_mint = on_mint
        self.on_mint_duplicate = on_mint_duplicate
        self.batch_max = batch_max
        self.counts: Counter[str] = Counter()
        self.subscribed = threading.Event()
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._generation = 0
        self._limiter = _LogLimiter()
        self._writer = threading.Thread(target=self._write_loop, name="relay-writer",
                                        daemon=True)
        self.queries = QueryResponder(store, self._answer)
        self.client = make_client(settings.mqtt, client_id, manual_ack=True)
        self.client.max_inflight_messages_set(0)  # acks going out: no cap (paho scans the window)
        self.client.on_connect = guarded("connect")(self._on_connect)
        self.client.on_disconnect = guarded("disconnect")(self._on_disconnect)
        self.client.on_connect_fail = guarded("connect_fail")(self._on_connect_fail)
        self.client.on_subscribe = guarded("subscribe")(self._on_subscribe)
        self.client.on_message = guarded("message")(self._on_message)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        broker = self.settings.mqtt
        self._writer.start()
        self.queries.start()
        self.client.connect_async(
            broker.host, broker.port, broker.keepalive, clean_start=False,
            properties=connect_properties(session_expiry_s=SESSION_EXPIRY_S,
                                          receive_maximum=RECEIVE_MAXIMUM))
        self.client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store and ack what was queued, then disconnect (the session stays on the broker)."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        self._writer.join(max(0.1, deadline - time.monotonic()))
        self.queries.stop(max(0.1, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()

    # --- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any,
                    _p: Any) -> None:
        if reason.is_failure:
            log.error("relay: the broker refused %s as %r: %s (check [relay.mqtt]); retrying",
                      self.client_id, self.settings.mqtt.username, reason)
            return
        self._generation += 1
        log.info("relay: connected to %s:%s as %s (session present: %s)",
                 self.settings.mqtt.host, self.settings.mqtt.port, self.client_id,
                 flags.session_present)
        client.subscribe([(topic, SubscribeOptions(qos=1))
                          for topic in subscriptions(self.settings.share_group)])

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("relay: disconnected from the broker (%s); reconnecting", reason)

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        log.warning("relay: cannot reach the broker at %s:%s; retrying",
                    self.settings.mqtt.host, self.settings.mqtt.port)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: list, _p: Any
                      ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("relay: the broker refused %d of our subscriptions (%s): does the ACL "
                      "give user %r read access to breathe/v1/+/...?", len(refused),
                      ", ".join(refused), self.settings.mqtt.username)
        else:
            log.info("relay: subscribed to the fleet's messages in shared group %r",
                     self.settings.share_group)
            self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put(_Item(message.mid, message.qos, self._generation, message.topic,
                              message.payload, getattr(message, "properties", None)))

    def _check(self, item: _Item) -> Inbound | Rejection:
        try:
            return check(item.topic, item.payload)
        except Exception:  # check() must not raise; if it does, refuse the message, not us
            log.exception("relay: validating a message on %r failed", item.topic[:200])
            return Rejection("invalid", "could not be checked")

    def _answer_later(self, item: _Item, result: Inbound) -> None:
        """A catalog query is not stored: answered (and PUBACKed) by the query responder."""
        props = item.props
        self.queries.submit(Query(
            result, getattr(props, "ResponseTopic", None),
            getattr(props, "CorrelationData", None),
            lambda: self._puback(item.mid, item.qos, item.generation)))

    # --- the writer thread --------------------------------------------------------------------

    def _take(self) -> list[_Item]:
        """What is queued, up to ``batch_max``. Once one item is in, the writer lingers while
        more keep coming (each ``LINGER_STEP_S``, for at most ``LINGER_S``), so a busy relay
        commits and acks many messages at a time, and a lone message waits one step.
        While lingering it sleeps and then takes all that came, rather than waking up for
        every message the network thread queues."""
        try:
            batch = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        until = time.monotonic() + LINGER_S
        self._drain_into(batch)
        while len(batch) < self.batch_max:
            left = until - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(LINGER_STEP_S, left))
            had = len(batch)
            self._drain_into(batch)
            if len(batch) == had:  # none came in a step: the burst is over
                break
        return batch

    def _drain_into(self, batch: list[_Item]) -> None:
        get = self._queue.get_nowait
        try:
            while len(batch) < self.batch_max:
                batch.append(get())
        except queue.Empty:
            pass

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take()
            try:
                if batch and not self._store(batch):
                    return  # stopping while the store is down: nothing acked, re-delivered
            except Exception:  # a bug here must not silently end all storing
                log.exception("relay: handling %d message(s) failed after storing them; the "
                              "broker and the devices re-send what was not acknowledged",
                              len(batch))

    def _store(self, items: list[_Item]) -> bool:
        """Check the batch, commit it (retrying while the store is down), then ack. False:
        gave up."""
        batch = []
        for item in items:
            result = self._check(item)
            if isinstance(result, Inbound) and result.kind == protocol.CATALOG_QUERY:
                self._answer_later(item, result)
            else:
                batch.append(_Checked(item, result))
        if not batch:
            return True
        inbound = [entry for entry in batch if isinstance(entry.result, Inbound)]
        valid = [item.result for item in inbound]
        rejected = [item.result for item in batch if isinstance(item.result, Rejection)]
        delay = 0.05
        while True:
            try:
                outcomes = self.store.record(valid, Counter(r.reason for r in rejected),
                                             timestamp())
                break
            except Exception as exc:  # a store outage must not lose or ack anything
                transient = self.store.backend.transient(exc)
                log.log(logging.WARNING if transient else logging.ERROR,
                        "relay: storing %d message(s) failed (%s: %s); retrying in %.1f s",
                        len(batch), type(exc).__name__, exc, delay)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 5.0)
        self._after_commit(batch, inbound, outcomes, rejected)
        return True

    def _after_commit(self, batch: list[_Checked], inbound: list[_Checked], outcomes: list,
                      rejected: list[Rejection]) -> None:
        """Count, ack (after the commit) and PUBACK; ``outcomes`` are ``inbound``'s, in order."""
        for rejection in rejected:
            self.counts["rejected"] += 1
            self.counts[f"rejected.{rejection.reason}"] += 1
            if self._limiter.allow(rejection.reason):
                log.warning("relay: %s", rejection.log_line())
            if rejection.message_id and rejection.kind in ACKED and rejection.device_id:
                # refused for good: tell the device, so it stops re-sending this message
                self._publish(rejection.device_id, protocol.ACK, Ack(
                    id=rejection.message_id, ok=False,
                    error=f"refused ({rejection.reason}): {rejection.detail}"[:500]))
        stored: dict[tuple[str, bool], list[str]] = {}  # (device, duplicate) -> ids
        for entry, outcome in zip(inbound, outcomes, strict=True):
            item = entry.result
            self.counts[item.kind] += 1
            if outcome is None:
                continue
            self.counts["stored" if outcome.stored else "duplicate"] += 1
            if outcome.error is not None:
                self.counts["refused"] += 1
                log.info("relay: refused %s %s from %s: %s", item.kind, item.message.id,
                         item.device_id, outcome.error)
            if outcome.error is None and item.kind not in MINTS and entry.batch_acks:
                stored.setdefault((item.device_id, not outcome.stored), []).append(
                    item.message.id)
            else:  # alone: a refusal, a mint request's ack (before its result), an old device
                self._publish(item.device_id, protocol.ACK, Ack(
                    id=item.message.id, ok=outcome.error is None, duplicate=not outcome.stored,
                    error=outcome.error))
            if item.kind in MINTS:
                if outcome.stored and (outcome.mint is None or outcome.mint.status == "pending"):
                    self.on_mint(item.device_id, item.message.id)
                elif outcome.mint is not None:  # asked again, or refused at once
                    self.on_mint_duplicate(outcome.mint)
        self._ack_batches(stored)
        valid = (entry.result for entry in inbound)
        for device_id in {i.device_id for i in valid if i.kind == protocol.CONFIG_REPORTED or (
                i.kind == protocol.STATUS and getattr(i.message, "state", "") == "online")}:
            self._desired_again(device_id)
        for entry in batch:
            self._puback(entry.item.mid, entry.item.qos, entry.item.generation)

    def _ack_batches(self, stored: dict[tuple[str, bool], list[str]]) -> None:
        """One ack per device for what this batch stored (and one for what it already had):
        a QoS-1 publish, and the broker's PUBACK for it, per device rather than per message."""
        for (device_id, duplicate), ids in stored.items():
            for start in range(0, len(ids), protocol.ACK_IDS_MAX):
                chunk = tuple(ids[start:start + protocol.ACK_IDS_MAX])
                self._publish(device_id, protocol.ACK, Ack(
                    id=chunk[0], ok=True, duplicate=duplicate,
                    ids=chunk if len(chunk) > 1 else ()))

    def _desired_again(self, device_id: str) -> None:
        """A device came online or reported its config without the desired config it should
        have: the retained copy may be gone (a broker that crashed before saving it), so the
        stored one is published again. Same id, so a device that has it changes nothing."""
        row = self.store.device(device_id)
        if row is None or not row.desired_id or not row.desired:
            return
        reported = json.loads(row.reported) if row.reported else {}
        if reported.get("desired_id") == row.desired_id:
            return
        desired = ConfigDesired(id=row.desired_id, changes=json.loads(row.desired))
        self.client.publish(protocol.topic(device_id, protocol.CONFIG_DESIRED), desired.encode(),
                            qos=1, retain=True)

    def _puback(self, mid: int, qos: int, generation: int) -> None:
        """The MQTT PUBACK, only on the connection the message came on."""
        if qos > 0 and generation == self._generation:
            self.client.ack(mid, qos)

    def _answer(self, response_topic: str, page: Message, correlation: bytes | None) -> None:
        self.client.publish(response_topic, page.encode(), qos=1,
                            properties=publish_properties(response_topic=None,
                                                          correlation=correlation))

    def _publish(self, device_id: str, subtopic: str, message: Message) -> None:
        self.client.publish(protocol.topic(device_id, subtopic), message.encode(), qos=1)

    def publish(self, device_id: str, subtopic: str, message: Message) -> None:
        """Publish to a device at QoS 1 (mint results from the mint worker)."""
        self._publish(device_id, subtopic, message)

    def backlog(self) -> int:
        return self._queue.qsize()
