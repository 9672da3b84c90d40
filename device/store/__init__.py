"""The appliance's SQLite store: ``open_db`` plus one small repository module per concern.

``patterns_repo``, ``sessions_repo``, ``outbox_repo``, ``settings_repo`` and ``profiles_repo``
are plain functions taking a ``sqlite_utils.Database`` first; each multi-row write runs in
``write_transaction(db)`` (``BEGIN IMMEDIATE``: it waits for the write lock instead of failing).
Open one database per thread (see ``device.store.db``).
"""

from device.store.db import DB_FILENAME, db_path_for, open_db
from device.store.errors import NotFound, StoreError
from device.store.transaction import timestamp

__all__ = ["DB_FILENAME", "NotFound", "StoreError", "db_path_for", "open_db", "timestamp"]
