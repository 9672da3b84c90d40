"""Asking again about mint requests the relay acked but has not answered.

The relay's ``ack`` says a mint request is stored; its ``mint/result`` may still be lost on the
way back: the broker restarted before saving what it queued for an offline device, or the relay
died between recording ``minted`` and publishing. So while a request is ``sent`` (acked, no
result), the device publishes it again: at once after every (re)connect, then after
``resend_s``, doubling up to ``max_resend_s``. The relay treats a request it already has as a
question and answers with the stored result (or keeps working on it), so asking is safe and
the device's Mint state converges to the chain's.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlite_utils import Database

from device.clock import Clock
from device.sharing import mint
from device.sync.outbox_sender import Publish
from wire import protocol

log = logging.getLogger(__name__)


def request_message(record: mint.MintRequestRecord, device_id: str) -> protocol.MintRequest:
    """The request as first sent (the relay looks it up by id; the fields are stored here)."""
    return protocol.MintRequest(
        id=record.id, device_id=device_id, achievement=record.kind or "",
        day=date.fromisoformat(record.day or ""), commitment=record.commitment or "",
        wallet=record.wallet_address)


class MintFollowUp:
    """Re-publishes unanswered mint requests through ``publish`` on a backoff schedule."""

    def __init__(self, publish: Publish, *, device_id: str, clock: Clock, resend_s: float,
                 max_resend_s: float) -> None:
        self.publish = publish
        self.device_id = device_id
        self.topic = protocol.topic(device_id, protocol.MINT_REQUEST)
        self.clock = clock
        self.resend_s = resend_s
        self.max_resend_s = max_resend_s
        self.interval = resend_s
        self.due = 0.0
        self.asked = 0  # re-publishes, for tests and the log

    def reconnected(self) -> None:
        """Ask at once: whatever the broker queued for us may be gone."""
        self.due = 0.0
        self.interval = self.resend_s

    def pump(self, db: Database) -> int:
        """Ask about every unanswered request if due; returns how many were asked."""
        now = self.clock.now()
        if now < self.due:
            return 0
        waiting = mint.unanswered(db)
        if not waiting:
            self.due, self.interval = now + self.resend_s, self.resend_s
            return 0
        asked = 0
        for record in waiting:
            try:
                payload = request_message(record, self.device_id).encode()
            except (ValueError, protocol.ProtocolError) as exc:  # a row from an old version
                log.warning("mint request %s cannot be asked about again: %s", record.id, exc)
                continue
            if not self.publish(self.topic, payload):
                return asked  # not connected: asked again after the reconnect
            asked += 1
        self.asked += asked
        log.info("asked the relay again about %d unanswered mint request(s)", asked)
        self.due = now + self.interval
        self.interval = min(self.interval * 2, self.max_resend_s)
        return asked
