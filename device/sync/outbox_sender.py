"""Draining the outbox: publish at QoS 1, forget a message only when the relay acks its id.

The broker's PUBACK only says the broker has it; the relay's ``ack`` says it is stored. So a
message stays in the SQLite outbox (surviving crashes and restarts) until that ack, and is sent
again when none comes: at once after every reconnect (paho's in-memory queue may be gone, the
broker may have lost its session), else after ``resend_s``, doubling per attempt up to
``max_resend_s``. The relay de-duplicates by message id, so a repeat is harmless.

At most ``window`` messages are in flight (sent, not yet acked), which bounds memory and lets
a large backlog flow at the rate the relay acks. Everything here runs on the sync worker
thread, with that thread's own database connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlite_utils import Database

from common.config.models import PrivacySettings
from device.clock import Clock
from device.session.persist import shares_metrics
from device.sharing import mint
from device.store import outbox_repo
from device.store.transaction import write_transaction
from wire import protocol

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 100
DEFAULT_RESEND_S = 30.0
DEFAULT_MAX_RESEND_S = 600.0

Publish = Callable[[str, bytes], bool]  # (topic, payload) -> handed to the connection?


@dataclass
class Flight:
    """A message sent and not acked yet: when to send it again, and how often it went."""

    due: float
    sends: int


class OutboxSender:
    """Publishes the outbox through ``publish`` and applies the relay's acks."""

    def __init__(
        self,
        publish: Publish,
        *,
        device_id: str,
        clock: Clock,
        privacy: PrivacySettings | None = None,
        window: int = DEFAULT_WINDOW,
        resend_s: float = DEFAULT_RESEND_S,
        max_resend_s: float = DEFAULT_MAX_RESEND_S,
    ) -> None:
        if window < 1 or not 0 < resend_s <= max_resend_s:
            raise ValueError(f"window must be >= 1 and 0 < resend_s <= max_resend_s (got "
                             f"{window}, {resend_s}, {max_resend_s})")
        self.publish = publish
        self.device_id = device_id
        self.root = protocol.topic(device_id) + "/"
        self.clock = clock
        self.privacy = privacy
        self.window = window
        self.resend_s = resend_s
        self.max_resend_s = max_resend_s
        self.inflight: dict[str, Flight] = {}
        self.sent = 0  # publishes, repeats included
        self.acked = 0

    # -- what the client calls ----------------------------------------------------------------

    def reconnected(self) -> None:
        """After a (re)connect everything unacked goes again, oldest first."""
        self.inflight.clear()

    def resend_now(self) -> None:
        """``sync-now``: whatever waits for an ack is due at once (backoff forgotten)."""
        now = self.clock.now()
        for flight in self.inflight.values():
            flight.due = now

    def pump(self, db: Database) -> int:
        """Send, oldest first, the repeats now due and new messages while the window has room;
        returns how many were handed to the connection (stops at the first it refuses)."""
        now = self.clock.now()
        heads = outbox_repo.pending_heads(db, limit=self.window + len(self.inflight))
        self._forget_gone(db, {message_id for message_id, _ in heads})
        free = self.window - len(self.inflight)
        batch: list[tuple[str, str]] = []
        for message_id, topic in heads:
            flight = self.inflight.get(message_id)
            if flight is None and free > 0:
                batch.append((message_id, topic))
                free -= 1
            elif flight is not None and now >= flight.due:
                batch.append((message_id, topic))
        batch = self._allowed(db, batch)
        payloads = outbox_repo.raw_payloads(db, [message_id for message_id, _ in batch])
        sent: list[str] = []
        for message_id, topic in batch:
            payload = payloads.get(message_id)
            if payload is None:
                continue  # acked in the meantime
            full = self._topic(db, message_id, topic, payload)
            if full is None:
                continue
            if not self.publish(full, payload):
                break
            flight = self.inflight.get(message_id)
            sends = (flight.sends if flight else 0) + 1
            self.inflight[message_id] = Flight(due=now + self._backoff(sends), sends=sends)
            sent.append(message_id)
        if sent:
            outbox_repo.record_attempts(db, sent)
            self.sent += len(sent)
        return len(sent)

    def apply_acks(self, db: Database, acks: Iterable[protocol.Ack]) -> int:
        """Forget what the relay stored; keep (never re-send) what it refused. Returns the
        number of outbox messages confirmed now. An ack may cover one message or a batch."""
        ok: list[str] = []
        refused: list[tuple[str, str]] = []
        for item in acks:
            for message_id in item.covers:
                self.inflight.pop(message_id, None)
                if item.ok:
                    ok.append(message_id)
                else:
                    refused.append((message_id, item.error or "refused by the relay"))
        with write_transaction(db):
            removed = outbox_repo.ack_many(db, ok)
            mint.mark_sent(db, removed)
            for message_id, reason in refused:
                if outbox_repo.refuse(db, message_id, reason):
                    log.error("relay refused message %s: %s (kept, not re-sent)", message_id,
                              reason)
                mint.mark_refused(db, message_id, reason)
        self.acked += len(removed)
        return len(removed)

    # -- internals ----------------------------------------------------------------------------

    def _backoff(self, sends: int) -> float:
        return min(self.resend_s * 2 ** (sends - 1), self.max_resend_s)

    def _forget_gone(self, db: Database, seen: set[str]) -> None:
        """Drop in-flight entries whose row is gone (a mint result, a withdrawn consent)."""
        missing = [i for i in self.inflight if i not in seen]
        if not missing:
            return
        marks = ",".join("?" * len(missing))
        still = {r["id"] for r in db.query(
            f"SELECT id FROM outbox WHERE refused IS NULL AND id IN ({marks})", missing)}
        for message_id in missing:
            if message_id not in still:
                del self.inflight[message_id]

    def _allowed(self, db: Database, batch: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Sessions queued while the owner shared, who has since stopped sharing, stay home:
        their outbox rows are dropped (the sessions themselves are kept on the device)."""
        sessions = [message_id for message_id, topic in batch
                    if topic == protocol.SESSIONS or topic.endswith("/" + protocol.SESSIONS)]
        if not sessions or shares_metrics(db, self.privacy):
            return batch
        dropped = set(outbox_repo.ack_many(db, sessions))
        for message_id in dropped:
            self.inflight.pop(message_id, None)
        log.info("metric sharing is off: %d queued session upload(s) dropped", len(dropped))
        return [item for item in batch if item[0] not in dropped]

    def _topic(self, db: Database, message_id: str, topic: str, payload: bytes) -> str | None:
        """The full topic, or None (and the message kept as refused) if it cannot be sent."""
        if not topic.startswith(protocol.TOPIC_ROOT + "/"):
            topic = self.root + topic
        reason = None
        if not topic.startswith(self.root):
            reason = (f"written for another device id ({topic}); this device is now "
                      f"{self.device_id!r}, and the broker only lets it publish under "
                      f"{self.root}")
        elif len(payload) > protocol.MAX_PAYLOAD_BYTES:
            reason = f"payload larger than {protocol.MAX_PAYLOAD_BYTES} bytes"
        if reason is None:
            return topic
        outbox_repo.refuse(db, message_id, reason)
        self.inflight.pop(message_id, None)
        log.error("outbox message %s cannot be sent: %s (kept)", message_id, reason)
        return None
