"""The relay's broker connections: TLS, the relay account, MQTT v5; guarded callbacks.

One place builds paho clients from ``[relay.mqtt]`` (a :class:`BrokerSettings`), for the
long-running consumer and for the short CLI connections alike.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.errors import BreatheError, ConfigError
from relay.accounts import operator_client_id
from relay.settings import BrokerSettings, RelaySettings
from wire.protocol import Message

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class BrokerError(BreatheError, ConnectionError):
    """The broker could not be reached, refused the relay account, or did not answer in time."""


def guarded(name: str) -> Callable[[F], F]:
    """Wrap a paho callback: an exception is logged, never allowed to kill the network loop
    (paho would otherwise stop its thread, silently with a wrong arity: see FACTS.md)."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def safe(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("relay: the %s callback failed; the relay keeps running", name)
                return None
        return safe  # type: ignore[return-value]
    return wrap


def read_password(broker: BrokerSettings) -> str | None:
    """The first line of ``password_file`` (the password itself is never in the settings)."""
    if broker.password_file is None:
        return None
    try:
        lines = broker.password_file.expanduser().read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"relay.mqtt.password_file: cannot read {broker.password_file} "
                          f"({exc.strerror})") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"relay.mqtt.password_file: {broker.password_file} is empty "
                          "(allowed: the broker password on the first line)")
    return lines[0].strip()


def make_client(broker: BrokerSettings, client_id: str, *, manual_ack: bool = False
                ) -> mqtt.Client:
    """A paho MQTT v5 client for the relay account, with TLS when ``broker.tls``."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if broker.username:
        client.username_pw_set(broker.username, read_password(broker))
    if broker.tls:
        client.tls_set(ca_certs=str(broker.ca_file.expanduser()) if broker.ca_file else None)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def connect_properties(*, session_expiry_s: int = 0, receive_maximum: int | None = None
                       ) -> Properties:
    """CONNECT properties: a persistent session needs clean_start=False *and* an expiry."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


def publish_properties(*, response_topic: str | None = None,
                       correlation: bytes | None = None) -> Properties | None:
    if response_topic is None and correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation is not None:
        props.CorrelationData = correlation
    return props


@contextmanager
def connected(broker: BrokerSettings, client_id: str, *, timeout: float = 10.0,
              refused_hint: str = "check [relay.mqtt] username and password_file"
              ) -> Iterator[mqtt.Client]:
    """A short-lived clean connection (CLI commands): connected on entry, closed on exit."""
    client = make_client(broker, client_id)
    result: dict[str, Any] = {}
    ready = threading.Event()

    @guarded("connect")
    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result["reason"] = reason
        ready.set()

    client.on_connect = on_connect
    where = f"{broker.host}:{broker.port}"
    try:
        client.connect(broker.host, broker.port, broker.keepalive, clean_start=True)
    except (OSError, ValueError) as exc:
        raise BrokerError(f"cannot reach the MQTT broker at {where} ({exc}); check "
                          "[relay.mqtt] host, port and tls") from None
    client.loop_start()
    try:
        if not ready.wait(timeout):
            raise BrokerError(f"the MQTT broker at {where} did not answer in {timeout:g} s")
        if result["reason"].is_failure:
            raise BrokerError(f"the MQTT broker at {where} refused user {broker.username!r} "
                              f"with client id {client_id}: {result['reason']}; {refused_hint}")
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def operator_connected(settings: RelaySettings) -> Any:
    """How CLI commands to devices connect: as ``[relay.operator]`` (its one client id) when
    set, else as the relay's own account under a fresh client id, which only an unpinned
    (development) relay account is allowed to use."""
    operator = settings.operator
    if operator.username is None:
        return connected(settings.mqtt, f"breathe-relay-cli-{uuid.uuid4().hex[:8]}",
                         refused_hint="a relay account pinned to an instance cannot be used "
                         "here: set [relay.operator] to an account from 'breathe relay accounts "
                         "add-operator' (or check [relay.mqtt] username and password_file)")
    broker = settings.mqtt.model_copy(update={"username": operator.username,
                                              "password_file": operator.password_file})
    return connected(broker, operator_client_id(operator.username),
                     refused_hint="check [relay.operator] username and password_file (an "
                     "account from 'breathe relay accounts add-operator')")


def publish_wait(client: mqtt.Client, topic: str, message: Message, *, retain: bool = False,
                 properties: Properties | None = None, timeout: float = 10.0) -> None:
    """Publish at QoS 1 and wait for the broker's PUBACK (CLI: before the process exits)."""
    info = client.publish(topic, message.encode(), qos=1, retain=retain, properties=properties)
    if info.rc != mqtt.MQTT_ERR_SUCCESS:
        raise BrokerError(f"publishing to {topic} failed: {mqtt.error_string(info.rc)}")
    info.wait_for_publish(timeout)
    if not info.is_published():
        raise BrokerError(f"the broker did not confirm {topic} within {timeout:g} s")
