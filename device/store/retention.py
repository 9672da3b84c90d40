"""Privacy retention: sessions older than the owner's chosen retention are deleted.

The daemon calls :func:`apply_retention` at start and every 24 h with the effective choice
(``device.privacy.effective_privacy``); the web app calls it at once when the owner shortens
the retention. What goes and what stays, and why:

- A *finished* session started before the cutoff goes, with its per-second timeline (by
  cascade). A running session is never touched, however long ago it started.
- Achievements stay. They are what the person earned, possibly minted as a token; only their
  link to the deleted session is cleared (``ON DELETE SET NULL``).
- Unsent outbox messages stay. Retention is about how long *this device* keeps history; a
  message the relay has not acknowledged yet is data the person chose to share (or a mint
  request) that has not arrived. Deleting it would silently break sync, and it leaves the
  device as soon as the relay acks it. Whether metrics are shared at all is the separate
  ``share_metrics`` choice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlite_utils import Database

from common.config.models import PrivacySettings
from common.errors import BadInput
from device.store.sessions_repo import delete_sessions_older_than


def retention_days(retention: str) -> int | None:
    """Days sessions are kept for ``retention`` (30d, 1y, forever); None means forever."""
    try:
        return PrivacySettings(retention=retention).retention_days  # type: ignore[arg-type]
    except ValueError:
        allowed = ", ".join(PrivacySettings.model_fields["retention"].annotation.__args__)
        raise BadInput(f"privacy.retention: unknown (got {retention!r}; allowed "
                       f"{allowed})") from None


def apply_retention(db: Database, retention: str, now: datetime) -> int:
    """Delete finished sessions that started more than the retention before ``now``.

    ``now`` must be timezone-aware. Returns how many sessions were deleted (0 for forever).
    """
    days = retention_days(retention)
    if now.tzinfo is None:
        raise BadInput(f"now: must be timezone-aware (got {now.isoformat()})")
    if days is None:
        return 0
    return delete_sessions_older_than(db, now - timedelta(days=days))
