"""``breathe relay cmd``: send one command to a device and wait for its answer.

The command goes to ``breathe/v1/<device>/cmd/<name>`` with the MQTT v5 response topic
``breathe/v1/<device>/reply/<uuid>`` (the ACL lets a device answer only under its own subtree)
and correlation data = the command id; the first reply carrying that correlation is the answer.
"""

from __future__ import annotations

import json
import queue
import re
import uuid
from typing import Any

from common.errors import BadInput, BreatheError
from relay.mqtt import guarded, operator_connected, publish_properties, publish_wait
from relay.settings import RelaySettings
from wire import protocol
from wire.protocol import Command, CommandReply, ProtocolError

_COMMAND = re.compile(protocol.COMMAND_PATTERN)


class NoReply(BreatheError, TimeoutError):
    """The device did not answer in time (offline, or busy)."""


def parse_args(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--arg k=v`` pairs; values are JSON when they parse (numbers, true/false), else text."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--arg {pair!r} is not KEY=VALUE (e.g. --arg minutes=5)")
        try:
            args[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            args[key.strip()] = text
    return args


def send_command(settings: RelaySettings, device_id: str, name: str,
                 args: dict[str, Any] | None = None, *, timeout: float = 10.0) -> CommandReply:
    """Publish the command, wait up to ``timeout`` s for the device's reply, return it."""
    try:
        command_topic = protocol.topic(device_id, protocol.CMD, name)
    except ProtocolError as exc:
        raise BadInput(str(exc)) from None
    if not _COMMAND.match(name):
        raise BadInput(f"command {name!r} is not valid (allowed: 1-32 lowercase letters, digits "
                       f"or '-'; the devices know {', '.join(protocol.COMMANDS)})")
    command = Command(id=uuid.uuid4().hex, args=args or {})
    reply_topic = protocol.topic(device_id, protocol.REPLY, uuid.uuid4().hex)
    replies: queue.Queue[CommandReply | ProtocolError] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()

    @guarded("command reply")
    def on_message(_c: Any, _u: Any, message: Any) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None and correlation != command.id.encode():
            return
        try:
            replies.put(protocol.decode(CommandReply, message.payload,
                                        where=f"reply of {device_id}"))
        except ProtocolError as exc:
            replies.put(exc)

    @guarded("subscribe")
    def on_subscribe(_c: Any, _u: Any, _mid: int, reasons: list, _p: Any) -> None:
        subscribed.put(not any(r.is_failure for r in reasons))

    with operator_connected(settings) as client:
        client.on_message = on_message
        client.on_subscribe = on_subscribe
        client.subscribe(reply_topic, qos=1)
        try:
            if not subscribed.get(timeout=10):
                raise BreatheError(f"the broker refused a subscription to {reply_topic}: does "
                                   "the ACL give the relay account read on breathe/v1/+/reply/#?")
        except queue.Empty:
            raise BreatheError("the broker did not confirm the reply subscription") from None
        publish_wait(client, command_topic, command, properties=publish_properties(
            response_topic=reply_topic, correlation=command.id.encode()))
        try:
            answer = replies.get(timeout=timeout)
        except queue.Empty:
            raise NoReply(f"no reply from {device_id} to {name!r} within {timeout:g} s (is it "
                          "online? `breathe relay devices` shows when it was last seen)"
                          ) from None
    if isinstance(answer, ProtocolError):
        raise BreatheError(f"{device_id} answered {name!r} with an invalid reply: {answer}")
    return answer
