"""History: streaks, totals, per-pattern stats and achievements, from past sessions only.

Pure: the caller reads the sessions (``device.store.sessions_repo``), turns them into
:class:`HistoryEntry` with :meth:`HistoryEntry.from_record` (choosing the time zone in which
"a day" is counted) and passes ``today`` in; nothing here reads a clock or a database.

Rules (the achievements page quotes them):
- A session *counts* when it has finished (any final status) and lasted at least
  ``MIN_COUNTED_S``. Running sessions and short tries count for nothing.
- A *streak* is a run of practice days in which no two consecutive days were missed: one missed
  day between practice days is a grace day (the streak goes on, the missed day adds nothing);
  two missed days in a row end it. Its length is the number of practice days.
- Achievements are earned by the first session that meets their condition; ``achievements()``
  returns each kind at most once, so the caller stores each once per profile (the table is
  unique per profile + kind) and marks it mintable.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from device.store.sessions_repo import SessionRecord
from wire.achievements import (
    ACHIEVEMENTS,
    HOLD_MILESTONES_S,
    RESONANCE_MIN_ADHERENCE,
    RESONANCE_MIN_S,
    SESSION_MILESTONES,
    STREAK_MILESTONES,
)
from wire.metrics import SessionMetrics

MIN_COUNTED_S = 60.0
GRACE_DAYS = 1  # missed days in a row that do not break a streak
@dataclass(frozen=True)
class HistoryEntry:
    """One finished session as history sees it."""

    session_id: str
    started: datetime
    ended: datetime
    day: date  # local practice day
    duration_s: float
    pattern_key: str  # stored pattern id, or the snapshot's name once the pattern is deleted
    metrics: SessionMetrics
    status: str = "completed"

    @classmethod
    def from_record(cls, record: SessionRecord, tz: tzinfo = UTC) -> HistoryEntry:
        started = datetime.fromisoformat(record.started)
        ended = (
            datetime.fromisoformat(record.ended)
            if record.ended
            else started + timedelta(seconds=record.duration_s)
        )
        name = record.pattern.name if record.pattern is not None else "unknown"
        return cls(
            session_id=record.id,
            started=started,
            ended=ended,
            day=started.astimezone(tz).date(),
            duration_s=record.duration_s,
            pattern_key=record.pattern_id or name,
            metrics=SessionMetrics.from_dict(record.metrics),
            status=record.status,
        )


def counted(entries: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """Sessions that count, oldest first (ties by id, so the order never depends on input)."""
    keep = [e for e in entries if e.status != "running" and e.duration_s >= MIN_COUNTED_S]
    return sorted(keep, key=lambda e: (e.started, e.session_id))


@dataclass(frozen=True)
class Streak:
    start: date
    end: date
    days: int  # practice days in the streak


@dataclass(frozen=True)
class StreakStats:
    current: int  # 0 when the last streak is already broken as of ``today``
    longest: int
    current_streak: Streak | None
    longest_streak: Streak | None


def streaks(days: Iterable[date]) -> list[Streak]:
    """Streaks over practice days, oldest first."""
    ordered = sorted(set(days))
    runs: list[Streak] = []
    for day in ordered:
        if runs and (day - runs[-1].end).days <= GRACE_DAYS + 1:
            last = runs[-1]
            runs[-1] = Streak(last.start, day, last.days + 1)
        else:
            runs.append(Streak(day, day, 1))
    return runs


def streak_stats(entries: Iterable[HistoryEntry], today: date) -> StreakStats:
    """Current and longest streak; the current one is alive while practising today keeps it."""
    runs = streaks(e.day for e in counted(entries))
    if not runs:
        return StreakStats(0, 0, None, None)
    longest = max(runs, key=lambda s: (s.days, s.end))
    last = runs[-1]
    alive = (today - last.end).days <= GRACE_DAYS + 1
    return StreakStats(
        current=last.days if alive else 0,
        longest=longest.days,
        current_streak=last if alive else None,
        longest_streak=longest,
    )


@dataclass(frozen=True)
class Totals:
    sessions: int
    minutes: float
    practice_days: int


def totals(entries: Iterable[HistoryEntry]) -> Totals:
    kept = counted(entries)
    return Totals(
        sessions=len(kept),
        minutes=round(sum(e.duration_s for e in kept) / 60.0, 2),
        practice_days=len({e.day for e in kept}),
    )


@dataclass(frozen=True)
class PatternStats:
    pattern_key: str
    sessions: int
    minutes: float
    median_adherence: float | None  # over sessions that had an adherence figure


def pattern_stats(entries: Iterable[HistoryEntry]) -> list[PatternStats]:
    """Per pattern, most practised first (ties by key)."""
    groups: dict[str, list[HistoryEntry]] = {}
    for entry in counted(entries):
        groups.setdefault(entry.pattern_key, []).append(entry)
    stats = []
    for key, group in groups.items():
        scores = [e.metrics.adherence for e in group if e.metrics.adherence is not None]
        stats.append(
            PatternStats(
                pattern_key=key,
                sessions=len(group),
                minutes=round(sum(e.duration_s for e in group) / 60.0, 2),
                median_adherence=statistics.median(scores) if scores else None,
            )
        )
    return sorted(stats, key=lambda s: (-s.sessions, s.pattern_key))


@dataclass(frozen=True)
class EarnedAchievement:
    """One row for the achievements table (profile is the caller's)."""

    kind: str
    earned_at: datetime
    session_id: str
    mintable: bool = True

    @property
    def title(self) -> str:
        return ACHIEVEMENTS[self.kind]


def _session_kinds(entry: HistoryEntry) -> list[str]:
    """Achievements a single session earns on its own."""
    m = entry.metrics
    kinds = []
    if (
        m.resonance_s >= RESONANCE_MIN_S
        and m.adherence is not None
        and m.adherence >= RESONANCE_MIN_ADHERENCE
    ):
        kinds.append("resonance_10min")
    longest = m.holds.longest_s or 0.0
    kinds.extend(f"hold_{n}s" for n in HOLD_MILESTONES_S if longest >= n)
    return kinds


def achievements(entries: Iterable[HistoryEntry]) -> list[EarnedAchievement]:
    """Every achievement the history has earned, once each, in the order they were earned."""
    earned: dict[str, EarnedAchievement] = {}

    def earn(kind: str, entry: HistoryEntry) -> None:
        if kind not in earned:
            earned[kind] = EarnedAchievement(kind, entry.ended, entry.session_id)

    kept: Sequence[HistoryEntry] = counted(entries)
    streak_days, last_day = 0, None
    for number, entry in enumerate(kept, start=1):
        earn("first_session", entry)
        if entry.day != last_day:
            gap = (entry.day - last_day).days if last_day else None
            streak_days = streak_days + 1 if gap is not None and gap <= GRACE_DAYS + 1 else 1
            last_day = entry.day
        for n in STREAK_MILESTONES:
            if streak_days >= n:
                earn(f"streak_{n}", entry)
        for kind in _session_kinds(entry):
            earn(kind, entry)
        for n in SESSION_MILESTONES:
            if number >= n:
                earn(f"sessions_{n}", entry)
    return sorted(earned.values(), key=lambda a: (a.earned_at, list(ACHIEVEMENTS).index(a.kind)))


def new_achievements(
    entries: Iterable[HistoryEntry], already: Iterable[str]
) -> list[EarnedAchievement]:
    """Achievements not stored yet (``already``: kinds the profile holds)."""
    held = set(already)
    return [a for a in achievements(entries) if a.kind not in held]
