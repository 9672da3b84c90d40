"""The owner's privacy choices: what the device keeps and what it may share.

The TOML ``[privacy]`` section gives the defaults an installer chose; the person's own choices
(made in the web app's Settings page) are stored in the settings table and win. Everything that
keeps or sends data asks :func:`effective_privacy`, so one switch governs the web app, the
retention job and the sync client alike.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from common.config.models import PrivacySettings
from device.store.db import write_transaction
from device.store.settings_repo import get_setting, set_setting

KEY_PREFIX = "privacy."


def effective_privacy(settings: Any, db: Database) -> PrivacySettings:
    """The config's ``[privacy]`` defaults overlaid with the person's stored choices.

    A stored value that no longer validates (an older version wrote it, or the file was edited)
    is ignored in favour of the default rather than failing every caller.
    """
    defaults: PrivacySettings = settings.privacy
    merged = defaults.model_dump()
    for name in PrivacySettings.model_fields:
        stored = get_setting(db, KEY_PREFIX + name)
        if stored is not None:
            merged[name] = stored
    try:
        return PrivacySettings.model_validate(merged)
    except ValueError:
        return defaults


def save_privacy(db: Database, prefs: PrivacySettings) -> None:
    """Store every choice (validated already by the model), in one transaction."""
    with write_transaction(db):
        for name, value in prefs.model_dump().items():
            set_setting(db, KEY_PREFIX + name, value)


def forget_privacy(db: Database) -> None:
    """Back to the config's defaults (used when the owner deletes the account)."""
    with write_transaction(db):
        for name in PrivacySettings.model_fields:
            db.execute("DELETE FROM settings WHERE key = ?", [KEY_PREFIX + name])
