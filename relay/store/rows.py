"""The rows the relay store hands out and the one transaction type its SQL runs in, below both
the store and the catalog's writes (``relay.store.catalog``), which share them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


def timestamp(at: datetime | None = None, *, ago_s: float = 0.0) -> str:
    """ISO 8601 UTC with milliseconds: sorts as text in both databases."""
    at = (at or datetime.now(UTC)) - timedelta(seconds=ago_s)
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


MINT_COLUMNS = ("device", "id", "payload", "status", "received", "updated", "attempts",
                "claimed_by", "claimed_at", "token_id", "tx_hash", "contract", "chain_id",
                "error", "kind")
DEVICE_COLUMNS = ("id", "first_seen", "last_seen", "status", "version", "telemetry",
                  "telemetry_at", "desired", "desired_id", "desired_at", "reported",
                  "reported_at")


@dataclass(frozen=True)
class MintRow:
    device: str
    id: str
    payload: str
    status: str
    received: str
    updated: str
    attempts: int
    claimed_by: str | None
    claimed_at: str | None
    token_id: str | None
    tx_hash: str | None
    contract: str | None
    chain_id: int | None
    error: str | None
    kind: str = "achievement"  # or "pattern" (relay.store.catalog: pattern/mint/request)


@dataclass(frozen=True)
class DeviceRow:
    id: str
    first_seen: str | None
    last_seen: str | None
    status: str
    version: str | None
    telemetry: str | None
    telemetry_at: str | None
    desired: str | None
    desired_id: str | None
    desired_at: str | None
    reported: str | None
    reported_at: str | None


@dataclass(frozen=True)
class Outcome:
    """What storing one acknowledged message did: stored now, or already there (duplicate)."""

    stored: bool
    mint: MintRow | None = None  # a duplicate mint request: its row, to re-send its result
    error: str | None = None  # refused when applied (catalog): acked with ok=False


class Tx:
    """One transaction on one connection; ``execute`` takes ``?`` placeholders."""

    def __init__(self, conn: Any, placeholder: str) -> None:
        self.conn = conn
        self.placeholder = placeholder

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        return self.conn.execute(sql, tuple(params))
