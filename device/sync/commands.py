"""Commands from the fleet (``cmd/<name>``): run one, answer with a :class:`CommandReply`.

The reply goes to the request's MQTT v5 response topic with its correlation data (the client
does the sending). Every failure is an answer, never silence: an unknown command, a payload
that is not a valid :class:`protocol.Command`, arguments of the wrong shape, a session that
cannot start — each gets ``ok: false`` and an error a person can act on.

Commands are de-duplicated by id (QoS 1 may deliver one twice): a repeat gets the first
answer again and does not run twice. ``reboot`` runs only on a Raspberry Pi (the device tree
names one); elsewhere it is refused, so a test or a laptop is never rebooted.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import BadInput
from device.sync.connection import publish_reply
from wire import protocol

log = logging.getLogger(__name__)

PI_MODEL_PATH = Path("/proc/device-tree/model")
REMEMBERED = 256  # command ids whose answers are kept for repeats
MAX_ERROR = 500


class DeviceControls(Protocol):
    """What the fleet may do to the device; the daemon implements it over its appliance.

    ``start_session`` / ``stop_session`` return the session's live state as a dict and raise
    ``BadInput`` (e.g. ``SessionConflict``) when it cannot. ``apply_config`` gets validated
    changes (dotted keys) and returns (applied now, rejected key -> reason); keys in neither
    apply from the next start. ``reboot`` reboots the machine (``systemctl reboot``); it is
    only called on a Raspberry Pi.
    """

    def start_session(self, pattern_id: str, minutes: float) -> dict[str, Any]: ...

    def stop_session(self) -> dict[str, Any]: ...

    def apply_config(self, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        ...

    def reboot(self) -> None: ...


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartArgs(_Args):
    pattern_id: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    minutes: float = Field(gt=0, le=240)


class ConfigArgs(_Args):
    changes: dict[str, Any] = Field(min_length=1, max_length=100)


def raspberry_pi_model(model_path: Path = PI_MODEL_PATH) -> str | None:
    """The board's model string if it is a Raspberry Pi, else None."""
    try:
        model = model_path.read_bytes().rstrip(b"\0").decode(errors="replace").strip()
    except OSError:
        return None
    return model if model.startswith("Raspberry Pi") else None


@dataclass(frozen=True)
class Outcome:
    """A reply to send, and what to do once it is sent (a reboot waits for its answer)."""

    reply: protocol.CommandReply
    after: Callable[[], None] | None = None


def _error(command_id: str, message: str) -> protocol.CommandReply:
    text = message if len(message) <= MAX_ERROR else message[: MAX_ERROR - 3] + "..."
    return protocol.CommandReply(id=command_id, ok=False, error=text)


def _validation_message(name: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "args"
    return f"{name}: args.{where}: {first['msg']} (got {first.get('input')!r})"


class CommandRunner:
    """Runs commands by name. ``sync_now()`` and ``set_config(changes)`` return the result
    dicts of those commands; ``info()`` is what ``ping`` answers."""

    def __init__(
        self,
        controls: DeviceControls,
        *,
        sync_now: Callable[[], dict[str, Any]],
        set_config: Callable[[dict[str, Any]], dict[str, Any]],
        info: Callable[[], dict[str, Any]],
        pi_model_path: Path = PI_MODEL_PATH,
    ) -> None:
        self.controls = controls
        self.sync_now = sync_now
        self.set_config = set_config
        self.info = info
        self.pi_model_path = pi_model_path
        self._answered: OrderedDict[str, protocol.CommandReply] = OrderedDict()
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": self._without_args(self.info),
            "sync-now": self._without_args(self.sync_now),
            "start-session": self._start,
            "stop-session": self._without_args(self.controls.stop_session),
            "set-config": lambda args: self.set_config(ConfigArgs.model_validate(args).changes),
            "reboot": self._without_args(self._reboot),
        }
        assert set(self._handlers) == set(protocol.COMMANDS)

    def run(self, name: str, payload: bytes) -> Outcome:
        """Run ``cmd/<name>`` with ``payload``; always returns a reply."""
        try:
            command = protocol.decode(protocol.Command, payload, where=f"cmd/{name}")
        except protocol.ProtocolError as exc:
            return Outcome(_error(uuid.uuid4().hex, str(exc)))
        if command.id in self._answered:
            log.info("command %s (%s) repeated; answered again, not run again", command.id, name)
            return Outcome(self._answered[command.id])
        outcome = self._run(name, command)
        self._answered[command.id] = outcome.reply
        while len(self._answered) > REMEMBERED:
            self._answered.popitem(last=False)
        return outcome

    def handle(self, name: str, message: mqtt.MQTTMessage, client: mqtt.Client | None) -> None:
        """Run ``cmd/<name>`` as received, answer on its response topic, then do what comes
        after the answer (a reboot). A retained command is refused: it would run again at
        every connect."""
        if message.retain:
            log.warning("retained command cmd/%s ignored (commands must not be retained, or "
                        "they would run again at every connect)", name)
            return
        outcome = self.run(name, message.payload)
        info = publish_reply(client, message, outcome.reply.encode()) \
            if client is not None else None
        if info is None:
            log.warning("command cmd/%s has no response topic; its reply (%s) is not sent",
                        name, "ok" if outcome.reply.ok else outcome.reply.error)
        elif outcome.after is not None:
            try:
                info.wait_for_publish(2.0)  # the answer goes out before the reboot
            except (RuntimeError, ValueError):
                pass
        if outcome.after is not None:
            try:
                outcome.after()
            except Exception:  # noqa: BLE001 - logged; the sync client carries on
                log.exception("command cmd/%s: the action after its reply failed", name)

    def _run(self, name: str, command: protocol.Command) -> Outcome:
        handler = self._handlers.get(name)
        if handler is None:
            return Outcome(_error(command.id, f"unknown command {name!r} (allowed: "
                                              f"{', '.join(protocol.COMMANDS)})"))
        try:
            result = handler(command.args)
        except ValidationError as exc:
            return Outcome(_error(command.id, _validation_message(name, exc)))
        except BadInput as exc:
            return Outcome(_error(command.id, f"{name}: {exc}"))
        except Exception as exc:  # noqa: BLE001 - the fleet gets an answer, the loop goes on
            log.exception("command %s (%s) failed", command.id, name)
            return Outcome(_error(command.id, f"{name} failed: {type(exc).__name__}: {exc}"))
        reply = protocol.CommandReply(id=command.id, ok=True, result=result)
        return Outcome(reply, after=self.controls.reboot if name == "reboot" else None)

    @staticmethod
    def _without_args(action: Callable[[], dict[str, Any]]
                      ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def handler(args: dict[str, Any]) -> dict[str, Any]:
            if args:
                raise BadInput(f"takes no args (got {', '.join(sorted(args))})")
            return action()

        return handler

    def _start(self, args: dict[str, Any]) -> dict[str, Any]:
        parsed = StartArgs.model_validate(args)
        return self.controls.start_session(parsed.pattern_id, parsed.minutes)

    def _reboot(self) -> dict[str, Any]:
        model = raspberry_pi_model(self.pi_model_path)
        if model is None:
            raise BadInput(f"refused: this device is not a Raspberry Pi ({self.pi_model_path} "
                           "names none), so it is not rebooted from the fleet")
        return {"rebooting": True, "model": model}
