"""Who may use the web app: the one-time claim code, the owner's password, login throttling.

The device has one owner. Until someone claims it, a setup code (printed by the CLI and in the
service log) is the only way in; claiming creates the owner profile and burns the code. Codes and
passwords are stored only as scrypt hashes, in the settings table under ``auth.*`` keys, which
the settings and export views must never show.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from sqlite_utils import Database
from werkzeug.security import check_password_hash, generate_password_hash

from common.errors import BadInput
from device.clock import Clock, MonotonicClock
from device.store.owner_codes import (
    CLAIM_KEY,
    HASH_METHOD,
    OWNER_KEY,
    RECOVERY_KEY,
    check_recovery_code,
    code_matches,
    is_claimed,
)
from device.store.profiles_repo import Profile, create_profile, get_profile
from device.store.settings_repo import get_setting, set_setting
from device.store.transaction import write_transaction

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "web_secret_key"
PASSWORD_MIN, PASSWORD_MAX = 10, 1024


@dataclass(frozen=True)
class Owner:
    profile: Profile
    password_hash: str
    session_epoch: str  # changes when all sessions must end (new password, account deleted)


def secret_key(data_dir: str | Path) -> str:
    """The Flask secret key, made once and kept in the data dir (mode 0600) so logins survive
    restarts. Two processes starting together agree: only one file creation can win."""
    path = Path(data_dir).expanduser() / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # someone loosened it; the key signs every login
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise BadInput(
                f"{path}: secret key is too short ({len(key)} characters; need at least 32); "
                "delete the file to make a new one (everyone will have to log in again)"
            ) from None
        return key
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def find_owner(db: Database) -> Owner | None:
    stored = get_setting(db, OWNER_KEY)
    if stored is None:
        return None
    return Owner(get_profile(db, stored["profile_id"]), stored["password_hash"], stored["epoch"])


def check_password_rules(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < PASSWORD_MIN:
        return f"Use at least {PASSWORD_MIN} characters (this one has {len(password)})."
    if len(password) > PASSWORD_MAX:
        return f"Use at most {PASSWORD_MAX} characters."
    return None


def claim(db: Database, typed_code: str, display_name: str, password: str) -> Profile:
    """Create the owner and burn the code, in one transaction.

    Raises BadInput when the code is wrong or already used, the name is invalid (message starts
    with ``display_name:``) or the password breaks the rules.
    """
    if not code_matches(db, typed_code):
        raise BadInput("code: that setup code is not valid; run 'breathe claim-code' for a new one")
    problem = check_password_rules(password)
    if problem:
        raise BadInput(f"password: {problem}")
    stored = get_setting(db, CLAIM_KEY)
    password_hash = generate_password_hash(password, method=HASH_METHOD)
    with write_transaction(db):
        # Deleting exactly the hash we checked makes a second, concurrent claim lose.
        burned = db.execute(
            "DELETE FROM settings WHERE key = ? AND value = ?",
            [CLAIM_KEY, json.dumps(stored)],
        ).rowcount
        if burned != 1 or is_claimed(db):
            raise BadInput("code: that setup code has just been used")
        profile = create_profile(db, display_name)
        set_setting(db, OWNER_KEY, {
            "profile_id": profile.id,
            "password_hash": password_hash,
            "epoch": secrets.token_hex(8),
        })
    return profile


def _set_password(db: Database, owner: Owner, password: str) -> str:
    """Store a new password hash and a new epoch (every login made before ends); the epoch."""
    epoch = secrets.token_hex(8)
    set_setting(db, OWNER_KEY, {
        "profile_id": owner.profile.id,
        "password_hash": generate_password_hash(password, method=HASH_METHOD),
        "epoch": epoch,
    })
    return epoch


def change_password(db: Database, owner: Owner, current: str, new: str) -> str:
    """The owner's new password, after checking the current one; returns the new epoch.

    Raises BadInput ``current_password: ...`` when the current password is wrong (check this
    first and count it as a failed login), ``new_password: ...`` when the new one breaks the rules.
    """
    if not check_password_hash(owner.password_hash, current):
        raise BadInput("current_password: that is not your current password; nothing was "
                       "changed")
    problem = check_password_rules(new)
    if problem:
        raise BadInput(f"new_password: {problem}")
    with write_transaction(db):
        epoch = _set_password(db, owner, new)
    log.warning("owner password changed in the web app; other logins were ended")
    return epoch


def recover(db: Database, typed_code: str, password: str, now: datetime | None = None) -> Owner:
    """Reset the owner's password with a recovery code; the code is burnt. Sessions are kept.

    Raises BadInput ``code: ...`` (wrong, used or expired code: checked first) or
    ``password: ...`` (the rules).
    """
    stored = check_recovery_code(db, typed_code, now)
    owner = find_owner(db)
    assert owner is not None  # a recovery code exists only on a claimed device
    problem = check_password_rules(password)
    if problem:
        raise BadInput(f"password: {problem}")
    with write_transaction(db):
        burned = db.execute("DELETE FROM settings WHERE key = ? AND value = ?",
                            [RECOVERY_KEY, json.dumps(stored)]).rowcount
        if burned != 1:
            raise BadInput("code: that recovery code has just been used")
        _set_password(db, owner, password)
    log.warning("owner password reset with a recovery code; sessions and settings kept")
    recovered = find_owner(db)
    assert recovered is not None
    return recovered


def authenticate(db: Database, name: str, password: str) -> Owner | None:
    """The owner if ``name`` (any case) and ``password`` match, else None.

    The hash is checked even for a wrong name so both failures take the same time.
    """
    owner = find_owner(db)
    password_ok = check_password_hash(owner.password_hash if owner else _dummy_hash(), password)
    if owner is None or not password_ok:
        return None
    if owner.profile.display_name.casefold() != name.strip().casefold():
        return None
    return owner


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16), method=HASH_METHOD)


class LoginLimiter:
    """Too many failed attempts from one client within a window → locked until the oldest
    failure leaves the window. In memory: a restart forgives, which is fine for a home device.
    Thread-safe: the web server answers each request in its own thread.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        clock: Clock | None = None,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock or MonotonicClock()
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str) -> deque[float]:
        """``client``'s failures within the window (call with the lock held)."""
        times = self._failures.get(client, deque())
        cutoff = self.clock.now() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            self._failures.pop(client, None)
        return times

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again, or None when it may try now."""
        with self._lock:
            times = self._recent(client)
            if len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[0] + self.window_s - self.clock.now()))

    def failed(self, client: str) -> None:
        with self._lock:
            times = self._recent(client)
            times.append(self.clock.now())
            self._failures[client] = times
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:  # bound memory under a flood
                self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
