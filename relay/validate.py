"""Every inbound MQTT message is checked here, and nowhere else, before anything is stored.

Pure (no I/O): a topic and a payload in, an :class:`Inbound` or a :class:`Rejection` out, so
the property tests can throw thousands of hostile messages at it without a broker. The checks:
the topic names a device and a subtopic the relay consumes; the payload passes
``protocol.decode`` (size cap, UTF-8 JSON object without duplicate keys, non-finite numbers or
deep nesting, schema version, the pydantic model with physical ranges); its timestamps are
within a sane window of the relay's clock; the
device id in the payload equals the one in the topic; and a catalog listing carries no markup
and its true content hash (:func:`relay.listing_checks.recheck`).

The third leg, topic == the sender's broker username, is the broker's job: the broker accounts
of relay/accounts.py let a device publish only under its own subtree, and
MQTT does not tell a subscriber who published. So topic == payload is the check left to make,
and together they give payload == topic == username.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from relay.listing_checks import recheck
from wire import protocol
from wire.checks import WireRefused, strict_loads
from wire.protocol import (
    CatalogQuery,
    CommandReply,
    ConfigReported,
    DeviceMessage,
    Message,
    MintRequest,
    PatternImported,
    PatternListing,
    PatternMintRequest,
    PatternRating,
    PatternUnlisting,
    ProtocolError,
    Retraction,
    SessionMessage,
    Status,
    Telemetry,
)

REPLY = "reply"
MODELS: dict[str, type[Message]] = {
    protocol.SESSIONS: SessionMessage,
    protocol.MINT_REQUEST: MintRequest,
    protocol.STATUS: Status,
    protocol.TELEMETRY: Telemetry,
    protocol.CONFIG_REPORTED: ConfigReported,
    REPLY: CommandReply,
    protocol.CATALOG_PUBLISH: PatternListing,
    protocol.CATALOG_UNPUBLISH: PatternUnlisting,
    protocol.CATALOG_RATE: PatternRating,
    protocol.CATALOG_IMPORTED: PatternImported,
    protocol.CATALOG_QUERY: CatalogQuery,  # not stored: answered on its response topic
    protocol.PATTERN_MINT_REQUEST: PatternMintRequest,
    protocol.RETRACT: Retraction,
}
CATALOG = (protocol.CATALOG_PUBLISH, protocol.CATALOG_UNPUBLISH, protocol.CATALOG_RATE,
           protocol.CATALOG_IMPORTED, protocol.RETRACT)  # applied by relay.store.catalog
# stored, then acknowledged with an Ack
ACKED = (protocol.SESSIONS, protocol.MINT_REQUEST, *CATALOG, protocol.PATTERN_MINT_REQUEST)

# Why a message was refused; the rejected table counts by these.
REASONS = ("topic", "oversized", "not_json", "too_deep", "duplicate_key", "non_finite",
           "schema", "invalid", "implausible", "spoofed", "markup", "content_hash")
# timestamps must fall within this window of the relay's clock: a device's clock may be a
# little ahead, and its outbox may hold sessions from a long time offline, but not from 1970
PAST = timedelta(days=5 * 366)
FUTURE = timedelta(days=1)
_ID_SCAN_LIMIT = 1024 * 1024  # larger payloads are not even parsed to find an id to refuse
_MESSAGE_ID = re.compile(protocol.MESSAGE_ID_PATTERN)
_DETAIL_MAX = 240


@dataclass(frozen=True)
class Inbound:
    """A valid message: which device, what kind (a key of :data:`MODELS`), the model, the text."""

    device_id: str
    kind: str
    message: Message
    payload: str


@dataclass(frozen=True)
class Rejection:
    """A refused message. ``detail`` never holds payload values, only where the problem is."""

    reason: str
    detail: str
    device_id: str | None = None
    kind: str | None = None
    message_id: str | None = None  # when the payload still names one, so it can be refused

    def log_line(self) -> str:
        """What the relay logs: no payload content, so nothing personal reaches the logs."""
        return (f"rejected {self.kind or 'message'} from {self.device_id or '?'}: "
                f"{self.reason}: {self.detail}")


def kind_of(subtopic: str) -> str | None:
    """``sessions`` → ``sessions``, ``reply/abc`` → ``reply``; None for anything else."""
    if subtopic in MODELS and subtopic != REPLY:
        return subtopic
    head, _, rest = subtopic.partition("/")
    if head == REPLY and rest:
        return REPLY
    return None


def _message_id(payload: bytes) -> str | None:
    """The payload's ``id`` if it has a usable one, to tell the device its message is refused."""
    if len(payload) > _ID_SCAN_LIMIT:
        return None
    try:
        data = strict_loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, WireRefused):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, str) and _MESSAGE_ID.fullmatch(value):
        return value
    return None


@functools.cache
def _stamps(model: type[Message]) -> tuple[tuple[str, ...], bool]:
    """Which of a model's fields are timestamps the relay's clock can vouch for (``started``,
    ``ended``, ``at``), and whether it has a ``day``; looked up once per model."""
    fields = model.model_fields
    return tuple(name for name in ("started", "ended", "at") if name in fields), "day" in fields


def _utc_naive(when: datetime) -> datetime:
    """``when`` as a naive UTC datetime (naive counts as UTC). Comparing those is cheap;
    comparing aware datetimes whose tzinfo objects differ (pydantic's parsed ``TzInfo`` against
    ``datetime.UTC``) asks each side for its offset every time."""
    offset = when.utcoffset()
    return when if offset is None else when.replace(tzinfo=None) - offset


def out_of_window(message: Message, now: datetime) -> str | None:
    """Where the message's time is not within PAST..FUTURE of ``now``, or None."""
    now = _utc_naive(now)
    earliest, latest = now - PAST, now + FUTURE
    names, has_day = _stamps(type(message))
    found = [(name, getattr(message, name)) for name in names]
    day = getattr(message, "day", None) if has_day else None
    if isinstance(day, date):
        found.append(("day", datetime.combine(day, time(12))))
    for name, when in found:
        if when is not None and not earliest <= _utc_naive(when) <= latest:
            return (f"{name} is not within {PAST.days} days before and {FUTURE.days} day "
                    "after the relay's clock")
    return None


def check(topic: str, payload: bytes, now: datetime | None = None) -> Inbound | Rejection:
    """Validate one message as received on ``topic`` at ``now`` (default: the clock);
    never raises for bad input."""
    try:
        device_id, subtopic = protocol.split_topic(topic)
    except ProtocolError:
        return Rejection("topic", "not breathe/v1/<device_id>/<subtopic>")
    kind = kind_of(subtopic)
    if kind is None:
        return Rejection("topic", f"the relay does not consume {subtopic[:64]!r}", device_id)
    model = MODELS[kind]
    where = f"{kind} from {device_id}"
    if len(payload) > protocol.MAX_PAYLOAD_BYTES:  # refused before decoding
        return Rejection("oversized", f"{len(payload)} bytes; at most "
                         f"{protocol.MAX_PAYLOAD_BYTES} allowed", device_id, kind,
                         _message_id(payload) if kind in ACKED else None)
    try:
        message = protocol.decode(model, payload, where=where)
    except ProtocolError as exc:
        detail = str(exc).removeprefix(where + ": ")[:_DETAIL_MAX]
        return Rejection(exc.reason, detail, device_id, kind,
                         _message_id(payload) if kind in ACKED else None)
    # The ACL already made topic == broker username; payload == topic completes the chain.
    if isinstance(message, DeviceMessage) and message.device_id != device_id:
        return Rejection("spoofed", f"payload device_id {message.device_id!r} is not the "
                         f"topic's {device_id!r}", device_id, kind,
                         message.id if kind in ACKED else None)
    late = out_of_window(message, now or datetime.now(UTC))
    if late is not None:
        return Rejection("implausible", late, device_id, kind,
                         message.id if kind in ACKED else None)
    refused = recheck(message)
    if refused is not None:
        return Rejection(*refused, device_id, kind, message.id if kind in ACKED else None)
    return Inbound(device_id, kind, message, payload.decode())
