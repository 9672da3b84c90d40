"""Achievements and minting them as tokens.

Minting needs two things the owner controls: a wallet address (Settings → profile) and sync
with the relay (device config ``mqtt.enabled``), since the relay mints. Until both are there,
each achievement says why the Mint button is disabled, and POST .../mint answers 409 with the
same reason. The request itself is made by ``device.sharing.mint.request_mint`` (the sync
client's module), which queues it in the outbox; its progress (pending → sent → minted or
failed, with the token id) is read back from the ``mint_requests`` table.
"""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlite_utils import Database
from werkzeug.wrappers import Response

from common.errors import BadInput
from device.session.appliance import award_achievements
from device.sharing.mint import latest_requests, request_mint
from device.store.achievements_repo import AchievementRecord, list_achievements
from device.store.errors import NotFound
from webui import api_error, get_db
from webui.api_models import Achievement, AchievementList, MintAccepted, MintState, reply
from webui.auth import current_owner, login_required
from webui.openapi import documented
from wire.achievements import ACHIEVEMENTS

bp = Blueprint("api_achievements", __name__, url_prefix="/api")

NEEDS_WALLET = "set a wallet address in Settings"
SYNC_OFF = "sync is off"
NOT_MINTABLE = "this achievement cannot be minted"
IN_FLIGHT = {"pending": "a mint request is already on its way",
             "sent": "a mint request is already on its way",
             "minted": "already minted"}


def latest_mints(db: Database) -> dict[int, MintState]:
    """The newest mint request of each achievement."""
    return {achievement_id: MintState(request_id=r.id, status=r.status, token_id=r.token_id,
                                      tx_hash=r.tx_hash, error=r.error, updated=r.updated)
            for achievement_id, r in latest_requests(db).items()}


def _wallet() -> str | None:
    owner = current_owner()
    return owner.profile.wallet_address if owner else None


def mint_unavailable(record: AchievementRecord, mint: MintState | None) -> str | None:
    """Why this achievement cannot be minted now, or None when it can."""
    if not record.mintable:
        return NOT_MINTABLE
    if mint is not None and mint.status in IN_FLIGHT:
        token = f" (token {mint.token_id})" if mint.token_id else ""
        return IN_FLIGHT[mint.status] + token
    if not _wallet():
        return NEEDS_WALLET
    if not current_app.config["SYNC_ENABLED"]:
        return SYNC_OFF
    return None


def achievement_views(db: Database, records: list[AchievementRecord]) -> list[Achievement]:
    mints = latest_mints(db)
    views = []
    for record in records:
        mint = mints.get(record.id)
        reason = mint_unavailable(record, mint)
        views.append(Achievement(
            id=record.id, kind=record.kind, title=ACHIEVEMENTS.get(record.kind, record.kind),
            earned_at=record.earned_at, session_id=record.session_id,
            mintable=record.mintable, mint=mint, can_mint=reason is None,
            mint_unavailable=reason))
    return views


def achievements_of_session(db: Database, session_id: str) -> list[Achievement]:
    return achievement_views(db, [a for a in list_achievements(db)
                                  if a.session_id == session_id])


@bp.get("/achievements")
@login_required
@documented("list achievements", tag="achievements", responses={200: AchievementList},
            description="Every achievement earned on this device, oldest first, with its "
                        "mint status and whether (or why not) it can be minted now.")
def achievements() -> Response:
    db = get_db()
    award_achievements(db, None)  # catch up on sessions nobody opened yet; each kind once
    return reply(AchievementList(achievements=achievement_views(db, list_achievements(db))))


@bp.post("/achievements/<int:achievement_id>/mint")
@login_required
@documented("mint achievement", tag="achievements", responses={202: MintAccepted},
            errors=(409,),
            description="Ask the relay to mint this achievement as a token to your wallet. "
                        "409 mint_unavailable with the reason until a wallet is set and sync "
                        "is on.")
def mint(achievement_id: int) -> Response:
    db = get_db()
    record = next((a for a in list_achievements(db) if a.id == achievement_id), None)
    if record is None:
        return api_error(404, "not_found", f"no achievement with id {achievement_id}",
                         "achievement_id")
    reason = mint_unavailable(record, latest_mints(db).get(record.id))
    if reason is not None:
        return api_error(409, "mint_unavailable", reason)
    try:
        request = request_mint(db, achievement_id, device_id=current_app.config["DEVICE_ID"],
                               wallet=_wallet())
    except NotFound:
        raise
    except BadInput as exc:
        return api_error(409, "mint_unavailable", str(exc).removeprefix("mint: "))
    return reply(MintAccepted(request_id=request.id, status=request.status), 202)
