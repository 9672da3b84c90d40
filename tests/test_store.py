"""The SQLite store: migrations (from empty and from every earlier version), atomic writes and
the repositories for patterns, sessions, outbox, settings and profiles."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from common.errors import BadInput
from device.store import (
    NotFound,
    StoreError,
    open_db,
    outbox_repo,
    patterns_repo,
    profiles_repo,
    settings_repo,
)
from device.store import sessions_repo as sessions
from device.store.db import applied_migrations, migrate, migration_names
from device.store.migrations import MIGRATIONS
from device.store.outbox_repo import Outgoing
from wire.metrics import TimelinePoint
from wire.patterns import BUILT_INS, Pattern, builtin

TABLES = {
    "profiles", "patterns", "sessions", "session_timeline", "outbox", "achievements",
    "mint_requests", "settings",
}  # fmt: skip
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
CALM = Pattern(name="Calm", inhale=4, exhale=6, benefits=("Slow",))


@pytest.fixture
def db(tmp_path: Path):
    database = open_db(tmp_path / "data" / "breathe.db")
    yield database
    database.close()


def _schema(db: Database) -> dict[str, str]:
    rows = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " AND name != '_sqlite_migrations'"
    ).fetchall()
    return {name: " ".join(sql.split()) for name, sql in rows}


# --- opening and migrating -----------------------------------------------------------------


def test_open_creates_dirs_and_a_migrated_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "breathe.db"
    with open_db(path) as db:
        assert db.journal_mode == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert TABLES <= set(db.table_names())
        assert applied_migrations(db) == migration_names()
        assert len(migration_names()) >= 2
    assert path.exists()


def test_reopening_applies_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "breathe.db"
    open_db(path).close()
    with open_db(path) as db:
        applied = db.execute("SELECT name, applied_at FROM _sqlite_migrations").fetchall()
        assert migrate(db) == []
        assert db.execute("SELECT name, applied_at FROM _sqlite_migrations").fetchall() == applied
        assert patterns_repo.sync_builtins(db) == 0


@pytest.mark.parametrize("applied_first", range(len(migration_names())))
def test_upgrade_from_every_earlier_version_keeps_data(tmp_path: Path, applied_first: int) -> None:
    names = migration_names()
    path = tmp_path / "old.db"
    with Database(path) as old:
        MIGRATIONS.apply(old, stop_before=names[applied_first])
        assert applied_migrations(old) == names[:applied_first]
        if applied_first >= 1:  # the core tables exist: store data the way version 1 did
            old.execute("INSERT INTO profiles VALUES ('p1', 'Ada', NULL, '2025-01-01')")
            old.execute(
                "INSERT INTO patterns (id, owner, name, inhale, hold_in, exhale, hold_out,"
                " benefits, created) VALUES ('mine', 'p1', 'Mine', 4, 1, 6, 0, '[\"Slow\"]',"
                " '2025-01-01')"
            )
            old.execute(
                "INSERT INTO sessions (id, profile, pattern, started, ended, duration_s,"
                " status, metrics) VALUES ('s1', 'p1', 'mine', '2025-01-02', '2025-01-02',"
                " 300, 'completed', '{\"breaths\": 30}')"
            )
            old.execute("INSERT INTO session_timeline VALUES ('s1', 0, 'inhale', 'inhale', 6,"
                        " 0.9, 0.1)")  # fmt: skip
            if applied_first >= 2:  # version 2 on wrote the snapshot with the session
                old.execute(
                    "UPDATE sessions SET pattern_json = json_object('name', 'Mine', 'inhale', 4,"
                    " 'hold_in', 1, 'exhale', 6, 'hold_out', 0, 'benefits', json('[\"Slow\"]'))"
                )
    with open_db(path) as db:
        assert applied_migrations(db) == names
        if applied_first >= 1:
            record = sessions.get_session(db, "s1")
            assert (record.status, record.duration_s, record.metrics) == (
                "completed", 300, {"breaths": 30},
            )  # fmt: skip
            # the upgrade took a snapshot of the pattern the old session used
            assert record.pattern is not None and record.pattern.label == "4-1-6-0"
            assert record.pattern.benefits == ("Slow",)
            assert sessions.session_timeline(db, "s1")[0].rate == 6
            assert patterns_repo.get_pattern(db, "mine").owner == "p1"
        assert len(patterns_repo.list_patterns(db, owner="p1")) == len(BUILT_INS) + int(
            applied_first >= 1
        )


def test_upgraded_schema_equals_fresh_schema(tmp_path: Path) -> None:
    names = migration_names()
    with open_db(tmp_path / "fresh.db") as fresh:
        expected = _schema(fresh)
    for applied_first in range(1, len(names)):
        path = tmp_path / f"from{applied_first}.db"
        with Database(path) as old:
            MIGRATIONS.apply(old, stop_before=names[applied_first])
        with open_db(path) as upgraded:
            assert _schema(upgraded) == expected


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "breathe.db"
    with open_db(path) as db:
        db["_sqlite_migrations"].insert(
            {"migration_set": "breathe", "name": "m999_future", "applied_at": "2030"}
        )
    with pytest.raises(StoreError, match="m999_future.*newer breathe"):
        open_db(path)


def test_unusable_paths_raise_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the database"):
        open_db(blocker / "breathe.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="garbage.db"):
        open_db(garbage)


def test_builtins_are_restored_from_code(db: Database) -> None:
    db.execute("UPDATE patterns SET inhale = 9 WHERE id = 'box'")
    db["patterns"].insert({"id": "retired", "name": "Retired", "inhale": 4, "exhale": 4,
                           "built_in": 1, "created": "2024"})  # fmt: skip
    assert patterns_repo.sync_builtins(db) == 2
    assert patterns_repo.get_pattern(db, "box").pattern == BUILT_INS["box"]
    assert patterns_repo.find_pattern(db, "retired") is None


def test_new_builtin_takes_its_name_from_a_device_pattern(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    patterns_repo.add_pattern(db, CALM)
    monkeypatch.setitem(BUILT_INS, "calm", Pattern(name="calm", inhale=4, exhale=4))
    patterns_repo.sync_builtins(db)
    assert patterns_repo.get_pattern(db, "calm").built_in
    assert patterns_repo.get_pattern(db, "my-calm").pattern.name == "Calm (custom)"


def test_simultaneous_first_opens_all_succeed(tmp_path: Path) -> None:
    """Daemon and web app may open a fresh database at the same moment."""
    for trial in range(5):
        path = tmp_path / f"race{trial}.db"
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def first_open(
            path: Path = path, barrier: threading.Barrier = barrier, errors: list = errors
        ) -> None:
            barrier.wait()
            try:
                open_db(path).close()
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=first_open) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        with open_db(path) as db:
            assert applied_migrations(db) == migration_names()  # each recorded once
            assert db["patterns"].count == len(BUILT_INS)


def test_wal_lets_a_reader_in_while_another_thread_writes(tmp_path: Path) -> None:
    path = tmp_path / "breathe.db"
    reader = open_db(path)
    inside, release = threading.Event(), threading.Event()

    def write() -> None:
        writer = open_db(path)  # one connection per thread
        with writer.atomic():
            settings_repo.set_setting(writer, "volume", 3)
            inside.set()
            release.wait(5)
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    assert inside.wait(5)
    assert settings_repo.get_setting(reader, "volume") is None  # not committed, not blocked
    release.set()
    thread.join(5)
    assert settings_repo.get_setting(reader, "volume") == 3
    reader.close()


# --- patterns ------------------------------------------------------------------------------


def test_pattern_add_get_update_delete(db: Database) -> None:
    record = patterns_repo.add_pattern(db, CALM, now=T0)
    assert (record.id, record.built_in, record.owner, record.created) == (
        "my-calm", False, None, T0.isoformat(timespec="microseconds"),
    )  # fmt: skip
    assert patterns_repo.get_pattern(db, "my-calm").pattern == CALM
    slower = CALM.model_copy(update={"exhale": 8.0, "name": "Calm slower"})
    updated = patterns_repo.replace_pattern(db, "my-calm", slower, is_public=True)
    assert (updated.id, updated.pattern.label, updated.is_public) == ("my-calm", "4-0-8-0", True)
    assert updated.updated is not None
    patterns_repo.remove_pattern(db, "my-calm")
    with pytest.raises(NotFound, match="no pattern with id 'my-calm'"):
        patterns_repo.get_pattern(db, "my-calm")


def test_built_ins_cannot_be_edited_or_deleted(db: Database) -> None:
    with pytest.raises(BadInput, match="'box' is a built-in and cannot be deleted"):
        patterns_repo.remove_pattern(db, "box")
    with pytest.raises(BadInput, match="cannot be edited"):
        patterns_repo.replace_pattern(db, "relaxation", CALM)
    assert patterns_repo.get_pattern(db, "box").pattern == BUILT_INS["box"]


def test_names_are_unique_per_owner_case_insensitively(db: Database) -> None:
    ada = profiles_repo.create_profile(db, "Ada").id
    bob = profiles_repo.create_profile(db, "Bob").id
    patterns_repo.add_pattern(db, CALM, owner=ada)
    with pytest.raises(BadInput, match="name: already used by pattern 'my-calm'"):
        patterns_repo.add_pattern(db, CALM.model_copy(update={"name": "CALM"}), owner=ada)
    other = patterns_repo.add_pattern(db, CALM, owner=bob)  # another person: fine
    assert other.id == "my-calm-2"
    with pytest.raises(BadInput, match="already used by a built-in"):
        patterns_repo.add_pattern(db, CALM.model_copy(update={"name": "box breathing"}), owner=bob)
    # the index enforces it too, whatever code writes
    with pytest.raises(sqlite3.IntegrityError):
        db["patterns"].insert({"id": "x", "owner": ada, "name": "calm", "inhale": 4,
                               "exhale": 4, "created": "2025"})  # fmt: skip


def test_listing_shows_builtins_first_then_own_and_public(db: Database) -> None:
    ada = profiles_repo.create_profile(db, "Ada").id
    bob = profiles_repo.create_profile(db, "Bob").id
    patterns_repo.add_pattern(db, CALM.model_copy(update={"name": "Zed"}))  # device's own
    patterns_repo.add_pattern(db, CALM.model_copy(update={"name": "Ada's"}), owner=ada)
    patterns_repo.add_pattern(db, CALM.model_copy(update={"name": "Bob secret"}), owner=bob)
    patterns_repo.add_pattern(
        db, CALM.model_copy(update={"name": "Bob shares"}), owner=bob, is_public=True
    )
    names = [r.pattern.name for r in patterns_repo.list_patterns(db, owner=ada)]
    assert names[: len(BUILT_INS)] == [p.name for p in BUILT_INS.values()]
    assert names[len(BUILT_INS) :] == ["Ada's", "Bob shares", "Zed"]
    private = patterns_repo.list_patterns(db, owner=ada, include_public=False)
    assert [r.pattern.name for r in private][len(BUILT_INS) :] == ["Ada's", "Zed"]


# --- sessions ------------------------------------------------------------------------------


def _points(seconds: range, phase: str = "inhale") -> list[TimelinePoint]:
    return [TimelinePoint(s, phase, "inhale", 6.0, 0.8, 0.01 * s) for s in seconds]  # type: ignore[arg-type]


def test_session_life_cycle_with_outbox_in_one_transaction(db: Database) -> None:
    record = sessions.create_session(db, "relaxation", now=T0)
    assert record.status == "running" and record.ended is None
    assert record.pattern == builtin("relaxation")
    sessions.checkpoint_session(db, record.id, duration_s=5, metrics={"n": 1},
                                timeline=_points(range(5)))  # fmt: skip
    # a re-sent second replaces, never duplicates
    sessions.checkpoint_session(db, record.id, duration_s=10, timeline=_points(range(4, 10)))
    assert [p.second for p in sessions.session_timeline(db, record.id)] == list(range(10))
    message = Outgoing("sessions", {"session": record.id, "duration_s": 10})
    done = sessions.finish_session(
        db, record.id, status="completed", duration_s=10, metrics={"breaths": 3},
        outbox=[message], now=T0 + timedelta(seconds=10),
    )  # fmt: skip
    assert (done.status, done.duration_s, done.metrics) == ("completed", 10, {"breaths": 3})
    assert done.ended == (T0 + timedelta(seconds=10)).isoformat(timespec="microseconds")
    [queued] = outbox_repo.pending(db)
    assert (queued.id, queued.payload) == (message.message_id, message.payload)
    with pytest.raises(BadInput, match="already completed"):
        sessions.finish_session(db, record.id, status="stopped", duration_s=11)


def test_failed_finish_leaves_session_running_and_outbox_empty(db: Database) -> None:
    record = sessions.create_session(db, "box")
    not_json = Outgoing("sessions", {"when": datetime.now(UTC)})
    with pytest.raises(TypeError):
        sessions.finish_session(db, record.id, status="completed", duration_s=60, outbox=[not_json])
    assert sessions.get_session(db, record.id).status == "running"
    assert outbox_repo.count(db) == 0


def test_failed_checkpoint_writes_nothing(db: Database) -> None:
    record = sessions.create_session(db, "box")
    bad = [*_points(range(3)), TimelinePoint(3, "breathe", None)]  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        sessions.checkpoint_session(db, record.id, duration_s=4, timeline=bad)
    assert sessions.get_session(db, record.id).duration_s == 0
    assert sessions.session_timeline(db, record.id) == []


def test_status_and_end_time_are_constrained(db: Database) -> None:
    record = sessions.create_session(db, "box")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE sessions SET status = 'paused' WHERE id = ?", [record.id])
    with pytest.raises(sqlite3.IntegrityError):  # finished without an end time
        db.execute("UPDATE sessions SET status = 'completed' WHERE id = ?", [record.id])
    with pytest.raises(BadInput, match="status: cannot finish as 'running'"):
        sessions.finish_session(db, record.id, status="running", duration_s=1)  # type: ignore[arg-type]


def test_crashed_sessions_become_interrupted(db: Database) -> None:
    left_open = sessions.create_session(db, "box").id
    finished = sessions.create_session(db, "box").id
    sessions.finish_session(db, finished, status="stopped", duration_s=3)
    assert sessions.interrupt_running(db) == 1
    assert sessions.get_session(db, left_open).status == "interrupted"
    assert sessions.get_session(db, finished).status == "stopped"


def test_sessions_keep_their_pattern_after_it_is_deleted(db: Database) -> None:
    patterns_repo.add_pattern(db, CALM)
    record = sessions.create_session(db, "my-calm")
    patterns_repo.remove_pattern(db, "my-calm")
    kept = sessions.get_session(db, record.id)
    assert kept.pattern_id is None and kept.pattern == CALM


def test_listing_and_retention(db: Database) -> None:
    ada = profiles_repo.create_profile(db, "Ada").id
    ids = []
    for days in (40, 20, 1):
        sid = sessions.create_session(db, "box", profile=ada, now=T0 - timedelta(days=days)).id
        sessions.checkpoint_session(db, sid, duration_s=2, timeline=_points(range(2)))
        sessions.finish_session(db, sid, status="completed", duration_s=2, now=T0)
        ids.append(sid)
    old_running = sessions.create_session(db, "box", now=T0 - timedelta(days=90)).id
    assert [r.id for r in sessions.list_sessions(db, profile=ada)] == ids[::-1]
    assert [r.id for r in sessions.list_sessions(db, status="running")] == [old_running]
    assert sessions.delete_sessions_older_than(db, T0 - timedelta(days=30)) == 1
    remaining = {r.id for r in sessions.list_sessions(db)}
    assert remaining == {ids[1], ids[2], old_running}
    assert db.execute("SELECT count(*) FROM session_timeline").fetchone()[0] == 4  # cascade
    sessions.delete_session(db, ids[1])
    with pytest.raises(NotFound):
        sessions.get_session(db, ids[1])


def test_unknown_pattern_cannot_start_a_session(db: Database) -> None:
    with pytest.raises(NotFound, match="no pattern with id 'nope'"):
        sessions.create_session(db, "nope")


# --- outbox, settings, profiles --------------------------------------------------------------


def test_outbox_order_attempts_and_ack(db: Database) -> None:
    first = outbox_repo.enqueue(db, Outgoing("sessions", {"n": 1}), now=T0)
    second = outbox_repo.enqueue(db, Outgoing("mint/request", {"n": 2}), now=T0 + timedelta(1))
    assert [m.id for m in outbox_repo.pending(db)] == [first, second]
    outbox_repo.record_attempt(db, first, now=T0)
    outbox_repo.record_attempt(db, first, now=T0)
    message = outbox_repo.pending(db, limit=1)[0]
    assert (message.attempts, message.last_attempt is not None) == (2, True)
    assert outbox_repo.ack(db, first) is True
    assert outbox_repo.ack(db, first) is False  # a duplicate ack is harmless
    assert [m.id for m in outbox_repo.pending(db)] == [second]


def test_settings_round_trip(db: Database) -> None:
    assert settings_repo.get_setting(db, "retention", "30d") == "30d"
    settings_repo.set_setting(db, "retention", "1y")
    settings_repo.set_setting(db, "retention", {"days": 365})
    settings_repo.set_setting(db, "leds", [1, 2])
    assert settings_repo.all_settings(db) == {"retention": {"days": 365}, "leds": [1, 2]}
    assert settings_repo.delete_setting(db, "leds") is True
    with pytest.raises(ValueError):
        settings_repo.set_setting(db, "gamma", float("nan"))


def test_profiles_validate_their_fields(db: Database) -> None:
    ada = profiles_repo.create_profile(db, "  Ada  ", wallet_address="0x" + "ab" * 20)
    assert profiles_repo.get_profile(db, ada.id).display_name == "Ada"
    with pytest.raises(BadInput, match="wallet_address: invalid"):
        profiles_repo.update_profile(db, ada.id, display_name="Ada", wallet_address="0x12")
    with pytest.raises(BadInput, match="display_name"):
        profiles_repo.create_profile(db, "")
    assert [p.id for p in profiles_repo.list_profiles(db)] == [ada.id]


def test_timestamps_must_be_timezone_aware(db: Database) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sessions.create_session(db, "box", now=datetime(2025, 1, 1))
