"""The owner's profile, settings and the account itself (deleting all personal data).

Privacy choices go through ``device.privacy`` so the web app, the retention job and the sync
client read the same values. Choosing a shorter retention deletes the sessions it no longer
covers at once (the person just said they do not want them kept), not at the next daily run.

Deleting the account asks for the password again and deletes nothing before it is verified.
Then, in one transaction: every session with its timeline, custom pattern, catalog rating,
achievement, mint request, unsent outbox message, personal setting and profile. With sync on,
that same transaction queues one message, a ``retract`` tombstone, so the relay also forgets
this device's shared patterns and analytics (``device.sharing.catalog.enqueue_retraction``). The
device is unclaimed and a new setup code goes to the service log, as on first start.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, session
from sqlite_utils import Database
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from common.config.models import PrivacySettings
from common.errors import BadInput
from device.privacy import effective_privacy, save_privacy
from device.session.live_state import ACTIVE
from device.sharing.catalog import enqueue_retraction
from device.store.db import write_transaction
from device.store.patterns_repo import find_pattern
from device.store.profiles_repo import update_profile
from device.store.retention import apply_retention
from device.store.settings_repo import set_setting
from webui import announce_claim_code, api_error, get_db
from webui.api_models import (
    AccountDeleted,
    PasswordChanged,
    Privacy,
    Profile,
    SettingsOut,
    SettingsSaved,
    reply,
)
from webui.api_session import DEFAULT_MINUTES_KEY, DEFAULT_PATTERN_KEY, defaults
from webui.auth import (
    client_address,
    current_owner,
    limiter,
    login_required,
    refuse_if_locked,
    sentence,
)
from webui.openapi import documented
from webui.payloads import (
    AccountDelete,
    FieldError,
    InvalidInput,
    PasswordChange,
    ProfileUpdate,
    SettingsUpdate,
)
from webui.security import change_password

bp = Blueprint("api_account", __name__, url_prefix="/api")

# Settings that belong to the person (deleted with the account); auth.* are the secrets.
PERSONAL_SETTING_PREFIXES = ("auth.", "privacy.", "session.", "profile.")


def _owner() -> Any:
    owner = current_owner()
    assert owner is not None  # login_required ran first
    return owner


def _profile_out(profile: Any) -> Profile:
    return Profile(id=profile.id, display_name=profile.display_name,
                   wallet_address=profile.wallet_address, created=profile.created)


@bp.get("/profile")
@login_required
@documented("profile", tag="account", responses={200: Profile})
def profile() -> Response:
    return reply(_profile_out(_owner().profile))


@bp.put("/profile")
@login_required
@documented("update profile", tag="account", body=ProfileUpdate, responses={200: Profile},
            description="display_name is also the name you log in with. wallet_address: "
                        "EIP-55 checked; all lower case is accepted and stored checksummed; "
                        "null removes it.")
def change_profile(body: ProfileUpdate) -> Response:
    current = _owner().profile
    sent = body.model_fields_set
    name = body.display_name if "display_name" in sent and body.display_name else None
    wallet = body.wallet_address if "wallet_address" in sent else current.wallet_address
    updated = update_profile(get_db(), current.id, display_name=name or current.display_name,
                             wallet_address=wallet)
    return reply(_profile_out(updated))


def _settings_out(db: Database) -> dict[str, Any]:
    prefs = effective_privacy(current_app.config["SETTINGS"], db)
    pattern_id, minutes = defaults(db)
    return {"privacy": Privacy(**prefs.model_dump()), "default_pattern": pattern_id,
            "default_minutes": minutes, "sync_enabled": bool(current_app.config["SYNC_ENABLED"])}


@bp.get("/settings")
@login_required
@documented("settings", tag="account", responses={200: SettingsOut})
def settings() -> Response:
    return reply(SettingsOut(**_settings_out(get_db())))


@bp.put("/settings")
@login_required
@documented("update settings", tag="account", body=SettingsUpdate,
            responses={200: SettingsSaved},
            description="Fields left out stay as they are. A shorter retention deletes the "
                        "sessions older than it now (deleted_sessions says how many).")
def change_settings(body: SettingsUpdate) -> Response:
    db = get_db()
    deleted = 0
    if body.default_pattern is not None and find_pattern(db, body.default_pattern) is None:
        raise InvalidInput([FieldError(field="default_pattern", message=(
            f"no pattern with id {body.default_pattern!r}; GET /api/patterns lists them"))])
    with write_transaction(db):  # read, then write: hold the write lock from the start
        if body.privacy is not None:
            before = effective_privacy(current_app.config["SETTINGS"], db)
            changes = {k: v for k, v in body.privacy.model_dump().items() if v is not None}
            after = PrivacySettings.model_validate({**before.model_dump(), **changes})
            save_privacy(db, after)
            if after.retention != before.retention:
                deleted = apply_retention(db, after.retention, datetime.now(UTC))
        if body.default_pattern is not None:
            set_setting(db, DEFAULT_PATTERN_KEY, body.default_pattern)
        if body.default_minutes is not None:
            set_setting(db, DEFAULT_MINUTES_KEY, body.default_minutes)
    return reply(SettingsSaved(**_settings_out(db), deleted_sessions=deleted))


@bp.post("/account/password")
@login_required
@documented("change password", tag="account", body=PasswordChange,
            responses={200: PasswordChanged}, errors=(403, 429),
            description="Needs the current password (403 when wrong, counted as a failed login: "
                        "nothing changes). Every other login ends; this one stays.")
def new_password(body: PasswordChange) -> Response:
    owner = _owner()
    refuse_if_locked()
    try:
        epoch = change_password(get_db(), owner, body.current_password, body.new_password)
    except BadInput as exc:
        field, _, message = str(exc).partition(": ")
        if field == "current_password":
            limiter().failed(client_address())
            return api_error(403, "wrong_password", sentence(message), field)
        raise InvalidInput([FieldError(field=field, message=sentence(message))]) from None
    limiter().succeeded(client_address())
    session["epoch"] = epoch
    return reply(PasswordChanged(message="Password changed. Other phones and browsers will "
                                         "have to log in again with the new password."))


def wipe_personal_data(db: Database, *, retract_as: str | None = None) -> dict[str, int]:
    """Delete everything personal, in one transaction; returns rows deleted per kind. With
    ``retract_as`` (the device id, when sync is on) the emptied outbox gets one message: the
    tombstone that retracts this device's contributions at the relay."""
    settings_where = " OR ".join("key LIKE ?" for _ in PERSONAL_SETTING_PREFIXES)
    statements = {
        "mint_requests": ("DELETE FROM mint_requests", []),
        "achievements": ("DELETE FROM achievements", []),
        "timeline_rows": ("DELETE FROM session_timeline", []),
        "sessions": ("DELETE FROM sessions", []),
        "patterns": ("DELETE FROM patterns WHERE built_in = 0", []),
        "catalog_ratings": ("DELETE FROM catalog_ratings", []),
        # unsent messages carry sessions and mint requests: they must not leave afterwards
        "outbox": ("DELETE FROM outbox", []),
        "settings": (f"DELETE FROM settings WHERE {settings_where}",
                     [p + "%" for p in PERSONAL_SETTING_PREFIXES]),
        "profiles": ("DELETE FROM profiles", []),
    }
    with write_transaction(db):
        deleted = {kind: db.execute(sql, params).rowcount
                   for kind, (sql, params) in statements.items()}
        if retract_as is not None:  # after the outbox is emptied, so this one stays
            enqueue_retraction(db, retract_as)
    return deleted


def _stop_live_session() -> None:
    """A session in progress would write to rows about to go: end it first."""
    appliance = current_app.config.get("APPLIANCE")
    if appliance is not None and appliance.engine.status in ACTIVE:
        appliance.engine.stop()


@bp.post("/account/delete")
@login_required
@documented("delete account", tag="account", body=AccountDelete,
            responses={200: AccountDeleted}, errors=(403, 429),
            description="Deletes all personal data and the owner account after checking the "
                        "password (403 when wrong: nothing is deleted); the device can then "
                        "be claimed again with a new setup code from the service log.")
def delete_account(body: AccountDelete) -> Response:
    owner = _owner()
    refuse_if_locked()
    if not check_password_hash(owner.password_hash, body.password):
        limiter().failed(client_address())
        return api_error(403, "wrong_password", "that is not the owner's password; nothing "
                                                "was deleted", "password")
    limiter().succeeded(client_address())
    if body.check_only:
        return reply(AccountDeleted(deleted={}, message="That is the owner's password. Nothing "
                                                        "was deleted yet."))
    _stop_live_session()
    db = get_db()
    retract_as = current_app.config["DEVICE_ID"] if current_app.config["SYNC_ENABLED"] else None
    deleted = wipe_personal_data(db, retract_as=retract_as)
    announce_claim_code(db)
    session.clear()
    return reply(AccountDeleted(deleted=deleted, message=(
        "All personal data was deleted and the device has no owner now. To use it again, "
        "claim it at /claim with the new setup code from the service log (or 'breathe "
        "claim-code').")))
