"""Two connections writing at once (the session loop, a web request, the sync client) must
both land: a read-then-write transaction waits for the write lock instead of failing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlite_utils import Database

from device.store import open_db, settings_repo
from device.store.transaction import write_transaction


def read_then_write_while_another_writes(
        path: Path, transaction: Callable[[Database], AbstractContextManager],
) -> list[BaseException]:
    """In ``transaction``: read, let another connection write, then write. Errors raised."""
    errors: list[BaseException] = []
    have_read, other_done = threading.Event(), threading.Event()

    def other() -> None:
        assert have_read.wait(5)
        db = open_db(path)
        try:
            settings_repo.set_setting(db, "brightness", 0.5)  # e.g. a web request
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            db.close()
            other_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    db = open_db(path)
    try:
        with transaction(db):
            settings_repo.get_setting(db, "volume")  # e.g. "does the owner share?"
            have_read.set()
            other_done.wait(0.5)  # the other writer goes first if it can
            settings_repo.set_setting(db, "volume", 3)
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        errors.append(exc)
    finally:
        db.close()
        thread.join(10)
    return errors


def test_a_read_then_write_transaction_waits_its_turn_and_both_writes_land(tmp_path):
    path = tmp_path / "breathe.db"
    open_db(path).close()
    assert read_then_write_while_another_writes(path, write_transaction) == []
    db = open_db(path)
    assert settings_repo.get_setting(db, "volume") == 3
    assert settings_repo.get_setting(db, "brightness") == 0.5
    db.close()


def test_a_plain_deferred_transaction_would_fail_there(tmp_path):
    """Why ``write_transaction`` exists: sqlite-utils' ``atomic()`` is a deferred BEGIN."""
    path = tmp_path / "breathe.db"
    open_db(path).close()
    errors = read_then_write_while_another_writes(path, lambda db: db.atomic())
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.OperationalError)
    assert "locked" in str(errors[0])


def test_nested_write_transactions_are_one_transaction(tmp_path):
    db = open_db(tmp_path / "breathe.db")
    with pytest.raises(RuntimeError), write_transaction(db):
        settings_repo.set_setting(db, "volume", 1)
        with write_transaction(db):
            settings_repo.set_setting(db, "brightness", 0.2)
        raise RuntimeError("the outer one fails")
    assert settings_repo.get_setting(db, "volume") is None
    assert settings_repo.get_setting(db, "brightness") is None
    db.close()
