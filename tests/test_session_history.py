"""History: streaks with one grace day, totals, per-pattern stats and each achievement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from device.session import history as h
from device.store.sessions_repo import SessionRecord
from wire.metrics import HoldStats, SessionMetrics
from wire.patterns import BUILT_INS

DAY0 = date(2026, 3, 2)


def entry(
    day_offset: int,
    *,
    sid: str | None = None,
    minutes: float = 5.0,
    pattern: str = "box",
    hour: int = 8,
    status: str = "completed",
    **metrics,
) -> h.HistoryEntry:
    started = datetime(2026, 3, 2, hour, tzinfo=UTC) + timedelta(days=day_offset)
    return h.HistoryEntry(
        session_id=sid or f"s{day_offset}-{hour}",
        started=started,
        ended=started + timedelta(minutes=minutes),
        day=started.date(),
        duration_s=minutes * 60,
        pattern_key=pattern,
        metrics=SessionMetrics(**metrics),
        status=status,
    )


def on_days(*offsets: int) -> list[h.HistoryEntry]:
    return [entry(d) for d in offsets]


def kinds(entries) -> list[str]:
    return [a.kind for a in h.achievements(entries)]


def test_consecutive_days_make_one_streak():
    stats = h.streak_stats(on_days(0, 1, 2, 3), today=DAY0 + timedelta(days=3))
    assert (stats.current, stats.longest) == (4, 4)


def test_one_missed_day_is_a_grace_day():
    stats = h.streak_stats(on_days(0, 1, 3, 4), today=DAY0 + timedelta(days=4))
    assert (stats.current, stats.longest) == (4, 4)  # practice days; the missed one adds nothing
    assert stats.current_streak == h.Streak(DAY0, DAY0 + timedelta(days=4), 4)


def test_two_missed_days_break_the_streak():
    stats = h.streak_stats(on_days(0, 1, 2, 5, 6), today=DAY0 + timedelta(days=6))
    assert (stats.current, stats.longest) == (2, 3)
    assert stats.longest_streak.start == DAY0


def test_current_streak_survives_one_missed_day_up_to_today():
    days = on_days(0, 1, 2)
    assert h.streak_stats(days, today=DAY0 + timedelta(days=4)).current == 3  # yesterday missed
    assert h.streak_stats(days, today=DAY0 + timedelta(days=5)).current == 0  # two missed
    assert h.streak_stats(days, today=DAY0 + timedelta(days=5)).longest == 3


def test_several_sessions_on_a_day_count_as_one_day():
    entries = [entry(0, hour=7), entry(0, hour=20), entry(1)]
    assert h.streak_stats(entries, today=DAY0 + timedelta(days=1)).current == 2


def test_short_and_running_sessions_do_not_count():
    entries = [entry(0), entry(1, minutes=0.5), entry(2, status="running"), entry(3)]
    assert h.totals(entries) == h.Totals(sessions=2, minutes=10.0, practice_days=2)
    assert h.streak_stats(entries, today=DAY0 + timedelta(days=3)).current == 1


def test_no_history():
    assert h.streak_stats([], today=DAY0) == h.StreakStats(0, 0, None, None)
    assert h.totals([]) == h.Totals(0, 0.0, 0)
    assert h.achievements([]) == []


def test_totals_and_per_pattern_stats():
    entries = [
        entry(0, pattern="box", minutes=4, adherence=0.9),
        entry(1, pattern="box", minutes=6, adherence=0.7),
        entry(2, pattern="box", minutes=5, adherence=None),
        entry(3, pattern="coherent", minutes=10, adherence=0.5),
    ]
    assert h.totals(entries) == h.Totals(sessions=4, minutes=25.0, practice_days=4)
    assert h.pattern_stats(entries) == [
        h.PatternStats("box", 3, 15.0, pytest.approx(0.8)),
        h.PatternStats("coherent", 1, 10.0, 0.5),
    ]


def test_first_session_is_earned_by_the_earliest_counted_session():
    entries = [entry(2, sid="later"), entry(1, sid="first"), entry(0, sid="short", minutes=0.5)]
    first = h.achievements(entries)[0]
    assert (first.kind, first.session_id, first.mintable) == ("first_session", "first", True)
    assert first.earned_at == datetime(2026, 3, 3, 8, 5, tzinfo=UTC)  # when that session ended


@pytest.mark.parametrize("n", [3, 7, 30])
def test_streak_achievements_fire_on_the_nth_practice_day(n):
    entries = on_days(*range(n))
    earned = {a.kind: a for a in h.achievements(entries)}
    assert earned[f"streak_{n}"].session_id == f"s{n - 1}-8"
    assert f"streak_{n}" not in kinds(on_days(*range(n - 1)))


def test_streak_achievement_counts_grace_days_but_not_broken_runs():
    assert "streak_3" in kinds(on_days(0, 2, 4))  # two single grace days
    assert "streak_3" not in kinds(on_days(0, 1, 4, 5))  # broken by two missed days


def test_resonance_achievement_needs_10_minutes_at_80_percent():
    good = entry(0, sid="good", minutes=12, resonance_s=600.0, adherence=0.8)
    assert "resonance_10min" in kinds([good])
    assert "resonance_10min" not in kinds([entry(0, minutes=12, resonance_s=599, adherence=0.9)])
    assert "resonance_10min" not in kinds([entry(0, minutes=12, resonance_s=700, adherence=0.79)])
    assert "resonance_10min" not in kinds([entry(0, minutes=12, resonance_s=700)])  # no reading


def test_hold_milestones():
    entries = [
        entry(0, sid="a", holds=HoldStats(count=1, longest_s=19.9)),
        entry(1, sid="b", holds=HoldStats(count=2, longest_s=41.0)),
        entry(2, sid="c", holds=HoldStats(count=1, longest_s=60.0)),
    ]
    earned = {a.kind: a.session_id for a in h.achievements(entries)}
    assert {k: v for k, v in earned.items() if k.startswith("hold_")} == {
        "hold_20s": "b",
        "hold_40s": "b",
        "hold_60s": "c",
    }


def test_hundred_sessions():
    entries = [entry(d // 3, hour=6 + d % 3 * 4, sid=f"n{d + 1}") for d in range(100)]
    earned = {a.kind: a.session_id for a in h.achievements(entries)}
    assert earned["sessions_100"] == "n100"
    assert "sessions_100" not in kinds(entries[:99])


def test_each_kind_once_and_new_ones_only():
    entries = on_days(*range(8))
    found = kinds(entries)
    assert found == ["first_session", "streak_3", "streak_7"]
    assert len(found) == len(set(found))
    assert [a.kind for a in h.new_achievements(entries, {"first_session", "streak_3"})] == [
        "streak_7"
    ]
    assert all(k in h.ACHIEVEMENTS for k in found)


def test_from_record_uses_the_local_day_and_pattern_snapshot():
    record = SessionRecord(
        id="x",
        profile=None,
        pattern_id=None,  # pattern deleted since
        pattern=BUILT_INS["sleep"],
        started="2026-03-02T23:30:00.000000+00:00",
        ended="2026-03-02T23:40:00.000000+00:00",
        duration_s=600.0,
        status="completed",
        metrics={"adherence": 0.75, "coverage": 0.9},
    )
    e = h.HistoryEntry.from_record(record, tz=timezone(timedelta(hours=2)))
    assert e.day == date(2026, 3, 3)  # already the next day at UTC+2
    assert e.pattern_key == "Sleep"
    assert e.metrics.adherence == 0.75
    assert h.HistoryEntry.from_record(record).day == date(2026, 3, 2)
