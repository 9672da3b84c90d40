"""The wire schema between devices and the relay: topics and one pydantic model per message.

Both sides import this module (the relay shares nothing else with the device), so a field is
defined once. Every message carries ``schema`` (the version) and ``id``; consumers de-duplicate
by id, so re-sending is always safe. Payloads are UTF-8 JSON, at most :data:`MAX_PAYLOAD_BYTES`.

Topics live under ``breathe/v1/<device_id>/`` (see ``../shared/DESIGN.md``): the device publishes
``status`` (retained, LWT ``offline``), ``telemetry`` (QoS 0), ``sessions``, ``mint/request``,
``config/reported`` and command replies; the relay publishes ``ack``, ``mint/result``,
``config/desired`` (retained) and ``cmd/<name>``.

Delivery end to end, both ways: what a device sends waits in its outbox until the relay's
``ack``; a ``mint/result`` lost on the way back (a broker crash, a relay gone between
recording and publishing) is asked for again — the device re-publishes the same
``mint/request`` while it is acked but unanswered, and the relay answers a request it already
has with its stored result (device/sync/mint_followup.py); a ``config/desired`` whose retained
copy is gone is published again by the relay when the device comes online or reports another
``desired_id``. No new topic or message: older relays and devices interoperate.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.errors import BadInput
from wire.checks import DAY_S, WireRefused, implausible, strict_loads
from wire.metrics import WireMetrics
from wire.patterns import Pattern

SCHEMA = 1
TOPIC_ROOT = "breathe/v1"
MAX_PAYLOAD_BYTES = 64 * 1024

DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"  # = common.config DeviceSettings.id
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
COMMAND_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"

STATUS = "status"
TELEMETRY = "telemetry"
SESSIONS = "sessions"
MINT_REQUEST = "mint/request"
ACK = "ack"
MINT_RESULT = "mint/result"
CONFIG_DESIRED = "config/desired"
CONFIG_REPORTED = "config/reported"
CMD = "cmd"  # cmd/<name>; the reply goes to the request's MQTT v5 response topic
REPLY = "reply"  # breathe/v1/<device>/reply/<anything>: devices answer commands here
INBOX = "inbox"  # breathe/v1/<device>/inbox/<anything>: the relay answers device requests here
# the shared pattern catalog (issue 7); device → relay, through the outbox, acked like sessions
CATALOG_PUBLISH = "catalog/publish"
CATALOG_UNPUBLISH = "catalog/unpublish"
CATALOG_RATE = "catalog/rate"
CATALOG_IMPORTED = "catalog/imported"
CATALOG_QUERY = "catalog/query"  # a request: the page goes to its MQTT v5 response topic
PATTERN_MINT_REQUEST = "pattern/mint/request"  # results come back on mint/result
RETRACT = "retract"  # the owner deleted the account: forget this device's contributions

COMMANDS = ("ping", "sync-now", "start-session", "stop-session", "set-config", "reboot")

_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)


class ProtocolError(BadInput):
    """A message that is not valid on the wire; ``reason`` sorts it for counting: ``topic``,
    ``oversized``, ``not_json``, ``too_deep``, ``duplicate_key``, ``non_finite`` (NaN,
    Infinity, 1e999), ``schema`` (unsupported version), ``invalid`` (fields) or
    ``implausible`` (a value outside its range, a session that ends before it starts)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def topic(device_id: str, *parts: str) -> str:
    """``breathe/v1/<device_id>/<parts...>``; the id is checked so no wildcard slips in."""
    if not _DEVICE_ID.match(device_id):
        raise ProtocolError(f"device id {device_id!r} is not valid on the wire "
                            "(allowed: 1-63 lowercase letters, digits or '-')", "topic")
    return "/".join((TOPIC_ROOT, device_id, *parts))


def split_topic(name: str) -> tuple[str, str]:
    """(device_id, rest) of a topic under the root, e.g. ('kitchen', 'mint/request')."""
    root, _, tail = name.partition(TOPIC_ROOT + "/")
    device_id, _, rest = tail.partition("/")
    if root or not _DEVICE_ID.match(device_id) or not rest:
        raise ProtocolError(f"topic {name!r} is not breathe/v1/<device_id>/<subtopic>", "topic")
    return device_id, rest


class Message(BaseModel):
    """Every message: a schema version and an id, nothing unknown, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_: Literal[1] = Field(SCHEMA, alias="schema")
    id: str = Field(pattern=MESSAGE_ID_PATTERN)

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class DeviceMessage(Message):
    """From a device: names itself; the relay checks it equals the topic and the broker user."""

    device_id: str = Field(pattern=DEVICE_ID_PATTERN)


class SessionMessage(DeviceMessage):
    """A finished session's summary (``sessions``); the id is the session id. Never video."""

    profile: str | None = Field(None, max_length=64)
    pattern_id: str = Field(min_length=1, max_length=64)
    pattern: Pattern
    started: datetime
    ended: datetime
    status: Literal["completed", "stopped", "interrupted"]
    duration_s: float = Field(ge=0, le=4 * 3600)
    metrics: WireMetrics  # type: ignore[valid-type]  # SessionMetrics, numbers in range
    analytics: bool = False  # the owner allows it in the fleet's anonymous usage counts

    @model_validator(mode="after")
    def _plausible(self) -> SessionMessage:
        if self.started > self.ended:
            raise implausible("ended", "is before started")
        if (self.ended - self.started).total_seconds() > DAY_S:
            raise implausible("ended", "is more than 24 h after started")
        return self


class MintRequest(DeviceMessage):
    """The owner pressed Mint (``mint/request``): nothing personal, only a commitment.

    ``commitment`` = sha256(salt || canonical session summary); the salt stays on the device,
    so the token proves the achievement without revealing the sessions behind it.
    """

    achievement: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    day: date
    commitment: str = Field(pattern=r"^[0-9a-f]{64}$")
    wallet: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")


CATEGORIES = ("stress", "sleep", "energy", "focus")


def listing_id_for(device_id: str, pattern_key: str) -> str:
    """The catalog id of ``pattern_key`` listed by ``device_id``: the first 32 hex digits of
    sha256("<device_id>/<pattern_key>"). Both sides compute it, so the creator's device knows
    its listing without a round trip, and re-publishing keeps the id."""
    return hashlib.sha256(f"{device_id}/{pattern_key}".encode()).hexdigest()[:32]


def content_hash(pattern: Pattern) -> str:
    """What makes a pattern itself: sha256 of its four phase lengths (0.1 s), canonical JSON.

    Names and descriptions do not count, so a renamed copy is the same pattern: two devices
    cannot both mint it as an original, and the relay recomputes it rather than trust it."""
    phases = {name: round(float(getattr(pattern, name)), 1)
              for name in ("inhale", "hold_in", "exhale", "hold_out")}
    canonical = json.dumps(phases, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
TAG_PATTERN = r"^[a-z0-9][a-z0-9 -]{0,23}$"
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]


class PatternListing(DeviceMessage):
    """A custom pattern its creator made public (``catalog/publish``); re-publishing the same
    ``pattern_key`` updates the listing. The relay re-validates and refuses markup."""

    pattern_key: str = Field(pattern=MESSAGE_ID_PATTERN)  # the pattern's id on its device
    creator: str = Field(min_length=1, max_length=64)  # display name the creator chose
    pattern: Pattern
    category: Literal["stress", "sleep", "energy", "focus"]
    tags: tuple[Tag, ...] = Field((), max_length=8)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")  # sha256 of the canonical phases


class PatternUnlisting(DeviceMessage):
    """``catalog/unpublish``: the creator withdrew ``pattern_key``."""

    pattern_key: str = Field(pattern=MESSAGE_ID_PATTERN)


class PatternRating(DeviceMessage):
    """``catalog/rate``: 1–5 stars, one rating per device per listing (a later one replaces)."""

    listing_id: str = Field(pattern=MESSAGE_ID_PATTERN)
    stars: int = Field(ge=1, le=5)


class PatternImported(DeviceMessage):
    """``catalog/imported``: counted once per device per listing."""

    listing_id: str = Field(pattern=MESSAGE_ID_PATTERN)


class CatalogQuery(Message):
    """``catalog/query``: a page of the catalog, answered on the response topic."""

    text: str | None = Field(None, max_length=64)
    category: Literal["stress", "sleep", "energy", "focus"] | None = None
    sort: Literal["newest", "most_imported", "top_rated", "shortest_cycle",
                  "longest_cycle"] = "newest"
    page: int = Field(1, ge=1, le=1000)
    page_size: int = Field(20, ge=1, le=50)


class CatalogEntry(BaseModel):
    """One listing as devices see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listing_id: str = Field(pattern=MESSAGE_ID_PATTERN)
    creator: str = Field(max_length=64)
    pattern: Pattern
    category: Literal["stress", "sleep", "energy", "focus"]
    tags: tuple[str, ...] = ()
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: datetime
    imports: int = Field(ge=0)
    rating: float | None = Field(None, ge=1, le=5)
    ratings: int = Field(0, ge=0)
    token_id: str | None = Field(None, pattern=r"^[0-9]{1,78}$")  # minted as an original


class CatalogPage(Message):
    """The answer to a :class:`CatalogQuery` (``id`` = the query's id)."""

    ok: bool = True
    items: tuple[CatalogEntry, ...] = ()
    total: int = Field(0, ge=0)
    page: int = Field(1, ge=1)
    error: str | None = Field(None, max_length=500)


class PatternMintRequest(DeviceMessage):
    """``pattern/mint/request``: mint a published pattern as an original for its creator.

    The relay refuses a second original with the same ``content_hash`` (from any device)."""

    listing_id: str = Field(pattern=MESSAGE_ID_PATTERN)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    wallet: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")


class Retraction(DeviceMessage):
    """``retract``: a tombstone. The owner deleted the account: the relay unpublishes every
    pattern of this device and drops its analytics contributions. Applying it twice is a
    no-op."""

    scope: Literal["account"] = "account"


ACK_IDS_MAX = 500  # ids one ack may list: 500 ids of 64 characters fit MAX_PAYLOAD_BYTES
# The MQTT v5 user property a device puts on what it publishes to say it reads batch acks
# (``Ack.ids``): a relay sends them only to such devices, so a device that predates them still
# gets one ack per message, and a relay that predates them ignores the property.
READS_BATCH_ACKS = ("breathe-acks", "batch")


class Ack(Message):
    """From the relay (``ack``): message ``id`` is stored (or was already) — or refused.

    A busy relay acks a batch in one message: ``ids`` lists every message it covers (``id``
    among them), all with the same ``ok`` / ``duplicate``. A single ack has no ``ids`` field
    on the wire at all, byte for byte what older devices know."""

    ok: bool
    duplicate: bool = False
    error: str | None = Field(None, max_length=500)
    ids: tuple[Annotated[str, Field(pattern=MESSAGE_ID_PATTERN)], ...] = Field(
        (), max_length=ACK_IDS_MAX)

    @property
    def covers(self) -> tuple[str, ...]:
        """The ids of the messages this ack is about."""
        return self.ids or (self.id,)

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude=None if self.ids else {"ids"}
                                    ).encode()


class MintResult(Message):
    """From the relay (``mint/result``) for mint request ``id``."""

    ok: bool
    token_id: str | None = Field(None, pattern=r"^[0-9]{1,78}$")
    tx_hash: str | None = Field(None, pattern=r"^0x[0-9a-f]{64}$")
    contract: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
    chain_id: int | None = Field(None, ge=1)
    error: str | None = Field(None, max_length=500)


class Status(DeviceMessage):
    """Retained on ``status``; the broker publishes the ``offline`` one as the device's LWT."""

    state: Literal["online", "offline"]
    version: str | None = Field(None, max_length=32)
    at: datetime | None = None


class Telemetry(DeviceMessage):
    """Every ``mqtt.telemetry_interval_s`` (QoS 0). Health numbers only, nothing personal."""

    at: datetime
    uptime_s: float = Field(ge=0)
    fps: float | None = Field(None, ge=0)
    inference_ms: float | None = Field(None, ge=0)
    outbox_depth: int = Field(ge=0)
    oldest_unsent_s: float | None = Field(None, ge=0)
    cpu_temp_c: float | None = None
    camera: str | None = Field(None, max_length=32)
    session: str | None = Field(None, max_length=16)  # idle / running / paused
    analytics: bool = False  # the owner allows it in the fleet's health report


class ConfigDesired(Message):
    """Retained on ``config/desired``: dotted keys to set, e.g. {"pacing.brightness": 0.5}."""

    changes: dict[str, Any] = Field(max_length=100)


class ConfigReported(DeviceMessage):
    """On ``config/reported``: what was applied, what was refused and why, the config now."""

    desired_id: str | None = Field(None, pattern=MESSAGE_ID_PATTERN)
    applied: dict[str, Any] = {}  # accepted (stored; in effect now or at the next start)
    at_next_start: tuple[str, ...] = ()  # which accepted keys wait for a restart
    rejected: dict[str, str] = {}
    config: dict[str, Any] = {}


class Command(Message):
    """On ``cmd/<name>``; the reply goes to the MQTT v5 response topic with its correlation."""

    args: dict[str, Any] = Field(default_factory=dict, max_length=50)


class CommandReply(Message):
    """The answer to command ``id``: ok + result, or an error a person can read."""

    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = Field(None, max_length=500)


M = TypeVar("M", bound=Message)
# pydantic's error types that the relay counts apart from "invalid": a value outside its
# (physical) range is implausible, and so is a session that ends before it starts
_REASONS = {"implausible": "implausible", "finite_number": "non_finite",
            "greater_than_equal": "implausible", "less_than_equal": "implausible",
            "greater_than": "implausible", "less_than": "implausible"}


def decode(model: type[M], payload: bytes | str, *, where: str = "message") -> M:
    """Parse one payload, or raise :class:`ProtocolError` saying what is wrong and where."""
    size = len(payload.encode() if isinstance(payload, str) else payload)
    if size > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"{where}: payload is {size} bytes; at most {MAX_PAYLOAD_BYTES} "
                            "allowed", "oversized")
    try:
        data = strict_loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"{where}: not UTF-8 JSON ({exc})", "not_json") from None
    except WireRefused as exc:
        raise ProtocolError(f"{where}: {exc}", exc.reason) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{where}: expected a JSON object, got {type(data).__name__}",
                            "not_json")
    if data.get("schema") != SCHEMA:
        raise ProtocolError(f"{where}: schema {data.get('schema')!r} is not supported "
                            f"(allowed: {SCHEMA})", "schema")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(message)"
        reason = _REASONS.get(first["type"], "invalid")
        raise ProtocolError(f"{where}: {field}: {first['msg']} ({exc.error_count()} problem(s) "
                            f"in {model.__name__})", reason) from None
