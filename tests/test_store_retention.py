"""The retention job: finished sessions older than the owner's choice go, with their timeline;
running sessions, achievements and unsent outbox messages stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.errors import BadInput
from device.store import db_path_for, open_db
from device.store.achievements_repo import NewAchievement, list_achievements, store_achievements
from device.store.outbox_repo import Outgoing, enqueue, pending
from device.store.profiles_repo import create_profile
from device.store.retention import apply_retention, retention_days
from device.store.sessions_repo import (
    create_session,
    finish_session,
    list_sessions,
    session_timeline,
)
from wire.metrics import TimelinePoint

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(data_dir):
    handle = open_db(db_path_for(data_dir))
    yield handle
    handle.close()


def session(db, days_ago: float, *, finished: bool = True) -> str:
    started = NOW - timedelta(days=days_ago)
    record = create_session(db, "box", now=started)
    if finished:
        finish_session(db, record.id, status="completed", duration_s=60.0, metrics={},
                       timeline=[TimelinePoint(second=0, target_phase="inhale")],
                       outbox=[Outgoing(topic="sessions", payload={"id": record.id},
                                        message_id=record.id)],
                       now=started + timedelta(minutes=1))
    return record.id


def ids(db) -> set[str]:
    return {r.id for r in list_sessions(db, limit=500)}


def test_30_days_deletes_older_finished_sessions_and_their_timelines(db):
    old, edge, recent = session(db, 45), session(db, 30.01), session(db, 29.9)
    assert apply_retention(db, "30d", NOW) == 2
    assert ids(db) == {recent}
    assert session_timeline(db, old) == [] and session_timeline(db, edge) == []
    assert len(session_timeline(db, recent)) == 1
    assert apply_retention(db, "30d", NOW) == 0  # daily re-runs find nothing more


def test_one_year_and_forever(db):
    very_old, old = session(db, 400), session(db, 200)
    assert apply_retention(db, "forever", NOW) == 0
    assert ids(db) == {very_old, old}
    assert apply_retention(db, "1y", NOW) == 1
    assert ids(db) == {old}


def test_a_running_session_is_never_deleted(db):
    running = session(db, 90, finished=False)
    assert apply_retention(db, "30d", NOW) == 0
    assert ids(db) == {running}


def test_achievements_and_unsent_outbox_messages_outlive_their_session(db):
    old = session(db, 60)
    profile = create_profile(db, "Ada").id
    store_achievements(db, profile, [NewAchievement("first_session", NOW - timedelta(days=60),
                                                    old)])
    assert apply_retention(db, "30d", NOW) == 1
    [achievement] = list_achievements(db)
    assert achievement.kind == "first_session" and achievement.session_id is None
    assert [m.id for m in pending(db)] == [old]  # the relay still gets it


def test_unknown_retention_and_naive_times_are_refused(db):
    with pytest.raises(BadInput, match=r"privacy.retention: unknown \(got '2w'; allowed 30d, "
                                       r"1y, forever\)"):
        apply_retention(db, "2w", NOW)
    with pytest.raises(BadInput, match="timezone-aware"):
        apply_retention(db, "30d", NOW.replace(tzinfo=None))
    assert (retention_days("30d"), retention_days("1y"), retention_days("forever")) == (
        30, 365, None)


def test_old_outbox_messages_of_any_kind_are_not_retentions_business(db):
    enqueue(db, Outgoing(topic="telemetry", payload={"n": 1}), now=NOW - timedelta(days=90))
    session(db, 90)
    apply_retention(db, "30d", NOW)
    assert len(pending(db)) == 2
