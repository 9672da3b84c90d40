"""Requests the device makes of the relay, answered on the device's inbox (MQTT v5).

A request is published with a ``ResponseTopic`` of ``breathe/v1/<device>/inbox/<uuid>`` and
``CorrelationData`` (the same uuid); the relay answers there with that correlation (the ACL
lets the relay write ``inbox/#`` and only this device read it). The caller waits, with a
timeout, for the answer with its correlation; a late or unknown answer is dropped. Answers are
matched on paho's network thread (no database work), so a waiting web request wakes at once.

Nothing here is queued in the outbox: a query is worth asking only while someone waits for it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.errors import BreatheError
from wire import protocol

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
M = TypeVar("M", bound=protocol.Message)


class RelayUnavailable(BreatheError):
    """The relay cannot be asked now (sync off, not connected) or did not answer in time."""


class _Waiting:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.payload: bytes | None = None


class Inbox:
    """Pending requests by correlation id, for one device."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.subscription = protocol.topic(device_id, protocol.INBOX, "#")
        self._waiting: dict[bytes, _Waiting] = {}
        self._lock = threading.Lock()
        self.late = 0  # answers that came after their caller gave up (or were never asked)

    def request(self, client: mqtt.Client, subtopic: str, payload: bytes, *,
                timeout: float = DEFAULT_TIMEOUT_S, what: str = "request") -> bytes:
        """Publish ``payload`` on ``subtopic`` (QoS 1) and return the relay's answer bytes."""
        key = uuid.uuid4().hex
        correlation = key.encode()
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = protocol.topic(self.device_id, protocol.INBOX, key)
        props.CorrelationData = correlation
        waiting = _Waiting()
        with self._lock:
            self._waiting[correlation] = waiting
        try:
            info = client.publish(protocol.topic(self.device_id, subtopic), payload, qos=1,
                                  properties=props)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RelayUnavailable(f"{what}: could not send it to the broker "
                                       f"({mqtt.error_string(info.rc)}); try again")
            if not waiting.done.wait(timeout):
                raise RelayUnavailable(f"{what}: the relay did not answer within {timeout:g} s "
                                       "(is it running and connected to the broker?); try "
                                       "again later")
        finally:
            with self._lock:
                self._waiting.pop(correlation, None)
        assert waiting.payload is not None
        return waiting.payload

    def ask(self, client: mqtt.Client, subtopic: str, request: protocol.Message,
            answer: type[M], *, timeout: float = DEFAULT_TIMEOUT_S, what: str = "request") -> M:
        """:meth:`request` with messages: ``request`` out, the answer decoded as ``answer``
        (an answer that is not valid raises :class:`RelayUnavailable` too)."""
        payload = self.request(client, subtopic, request.encode(), timeout=timeout, what=what)
        try:
            return protocol.decode(answer, payload, where=f"{what} answer")
        except protocol.ProtocolError as exc:
            raise RelayUnavailable(f"{what}: the relay's answer is not valid ({exc})") from None

    def deliver(self, message: mqtt.MQTTMessage) -> None:
        """An answer arrived on the inbox: wake whoever waits for its correlation."""
        props = message.properties
        correlation = getattr(props, "CorrelationData", None) if props else None
        with self._lock:
            waiting = self._waiting.get(correlation) if correlation is not None else None
            if waiting is None:
                self.late += 1
                log.info("answer on %s matches no waiting request (late, or not ours); "
                         "dropped", message.topic)
                return
            waiting.payload = bytes(message.payload)
            waiting.done.set()
