"""The device's owner codes: the one-time setup code that claims it, and the recovery code.

Both live in the settings table under ``auth.*`` keys (which the settings and export views
never show), stored only as scrypt hashes. ``breathe claim-code`` issues them at the device's
console; the web app checks them when someone claims the device or resets a forgotten password
(:mod:`webui.security`). Claiming burns the setup code and records the owner under
``OWNER_KEY``.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlite_utils import Database
from werkzeug.security import check_password_hash, generate_password_hash

from common.errors import BadInput
from device.store.db import db_path_for, open_db
from device.store.settings_repo import get_setting, set_setting

log = logging.getLogger(__name__)

AUTH_KEY_PREFIX = "auth."  # settings keys holding secrets: never export or show them
CLAIM_KEY = "auth.claim_code"
OWNER_KEY = "auth.owner"
RECOVERY_KEY = "auth.recovery_code"
RECOVERY_TTL = timedelta(minutes=30)
HASH_METHOD = "scrypt"
# No 0/O, 1/I: the code is read off a terminal and typed on a phone.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


class AlreadyClaimed(BadInput):
    """The device has an owner; there is no setup code any more."""


def normalise_code(text: str) -> str:
    """What the person typed, without spaces or dashes, upper case."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def is_claimed(db: Database) -> bool:
    return get_setting(db, OWNER_KEY) is not None


def issue_claim_code(db: Database) -> str:
    """A new setup code (``ABCD-EFGH``); the previous one stops working."""
    if is_claimed(db):
        raise AlreadyClaimed(
            "device is already claimed: there is no setup code; log in with the owner's "
            "password, or run 'breathe claim-code --reset' for a recovery code"
        )
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    set_setting(db, CLAIM_KEY, generate_password_hash(code, method=HASH_METHOD))
    return format_code(code)


def claim_code(data_dir: str | Path) -> str:
    """For ``breathe claim-code``: issue a fresh setup code for the device at ``data_dir``."""
    db = open_db(db_path_for(data_dir))
    try:
        return issue_claim_code(db)
    finally:
        db.close()


def code_matches(db: Database, typed_code: str) -> bool:
    """Whether ``typed_code`` is the current setup code (checked before anything else)."""
    stored = get_setting(db, CLAIM_KEY)
    code = normalise_code(typed_code)
    return stored is not None and len(code) == CODE_LENGTH and check_password_hash(stored, code)


def issue_recovery_code(db: Database, now: datetime | None = None) -> str:
    """A recovery code for a claimed device (``breathe claim-code --reset`` on its console).

    Being at the device's console is the proof of ownership. The code resets the owner's
    password at /recover within ``RECOVERY_TTL``; every session, pattern and setting stays.
    Each new code replaces the previous one.
    """
    if not is_claimed(db):
        raise BadInput("--reset: this device has no owner yet; run 'breathe claim-code' "
                       "without --reset for a setup code")
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires = (now or datetime.now(UTC)) + RECOVERY_TTL
    set_setting(db, RECOVERY_KEY, {"hash": generate_password_hash(code, method=HASH_METHOD),
                                   "expires": expires.isoformat()})
    log.warning("owner recovery code issued at the device console (valid until %s)",
                expires.isoformat(timespec="minutes"))
    return format_code(code)


def check_recovery_code(db: Database, typed_code: str, now: datetime | None = None
                        ) -> dict[str, str]:
    """The stored recovery code if ``typed_code`` is it and still valid, else BadInput."""
    stored = get_setting(db, RECOVERY_KEY)
    code = normalise_code(typed_code)
    if (not is_claimed(db) or stored is None or len(code) != CODE_LENGTH
            or not check_password_hash(stored["hash"], code)):
        raise BadInput("code: that recovery code is not valid; run 'breathe claim-code "
                       "--reset' on the device for a new one")
    if datetime.fromisoformat(stored["expires"]) < (now or datetime.now(UTC)):
        raise BadInput("code: that recovery code has expired; run 'breathe claim-code "
                       "--reset' on the device for a new one")
    return stored
