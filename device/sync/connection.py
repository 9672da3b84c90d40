"""The paho side of the sync client: building the MQTT v5 connection, and answering commands.

paho-mqtt 2.x with ``CallbackAPIVersion.VERSION2``. A callback that raises would silently end
paho's network thread (FACTS.md), so every callback is :func:`guarded`: the exception is
logged and the connection goes on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.errors import ConfigError
from wire import protocol

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """A paho callback that logs its exception instead of killing the network thread."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - paho's loop thread must survive any callback
            log.exception("MQTT callback %s failed; the connection goes on",
                          getattr(fn, "__name__", fn))
            return None

    return wrapper  # type: ignore[return-value]


def read_password(path: Path | None) -> str | None:
    """The broker password: the first line of ``mqtt.password_file`` (None: no password)."""
    if path is None:
        return None
    try:
        lines = Path(path).expanduser().read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"mqtt.password_file: cannot read {path} ({exc.strerror or exc}); "
                          "it must hold the broker password on its first line") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"mqtt.password_file: {path} is empty; put the broker password on "
                          "its first line")
    return lines[0].strip()


def make_client(
    cfg: Any,
    device_id: str,
    *,
    will: tuple[str, bytes],
    window: int,
    reconnect: tuple[int, int],
    **callbacks: Callable[..., Any],
) -> mqtt.Client:
    """An MQTT v5 client for ``cfg`` (``[mqtt]`` settings): client id = device id, TLS with
    ``ca_file``, username + password file, retained last will ``will`` (topic, payload),
    reconnect backoff ``reconnect`` (min, max seconds), at most ``window`` QoS 1 messages in
    flight and four windows queued; ``callbacks`` (``on_connect=...``) are guarded."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                         protocol=mqtt.MQTTv5)
    if cfg.username is not None:
        if cfg.username != device_id:
            log.warning("mqtt.username %r is not the device id %r: the broker's ACL lets a "
                        "device publish only under its own username", cfg.username, device_id)
        client.username_pw_set(cfg.username, read_password(cfg.password_file))
    if cfg.tls:
        client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None)
    client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(*reconnect)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(window * 4)
    for name, callback in callbacks.items():
        setattr(client, name, guarded(callback))
    return client


def reads_batch_acks() -> Properties:
    """PUBLISH properties that tell the relay this device reads acks listing many ids."""
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [protocol.READS_BATCH_ACKS]
    return props


def connect_persistent(client: mqtt.Client, cfg: Any, expiry_s: int) -> None:
    """Connect in the background with a persistent MQTT v5 session: clean_start False *and*
    a session expiry (FACTS.md), so the broker keeps subscriptions and queued messages."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive, clean_start=False,
                         properties=props)


def publish_reply(client: mqtt.Client, request: mqtt.MQTTMessage,
                  payload: bytes) -> mqtt.MQTTMessageInfo | None:
    """Answer ``request`` on its MQTT v5 response topic with its correlation data (QoS 1);
    None when it named no response topic."""
    props = request.properties
    response_topic = getattr(props, "ResponseTopic", None) if props else None
    if not response_topic:
        return None
    reply_props = Properties(PacketTypes.PUBLISH)
    correlation = getattr(props, "CorrelationData", None)
    if correlation is not None:
        reply_props.CorrelationData = correlation
    return client.publish(response_topic, payload, qos=1, properties=reply_props)
