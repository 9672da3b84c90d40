"""Insights: a few plain sentences about a session, each with the number behind it.

Local, deterministic and explainable: every sentence comes from one small rule in ``RULES``,
a function of the metrics and the pattern that returns an :class:`Insight` or None. Rules are
listed in priority order; :func:`build_insights` keeps the first ``MAX_INSIGHTS`` that fire and
always adds exactly one :class:`NextStep`. The summary rule always fires and, whenever the
camera saw too little, the coverage rule does, otherwise adherence does: so there are always at
least two sentences.

Thresholds are module constants so tests (and the note on the summary page) can quote them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from device.session.metrics import RESONANCE_BPM
from wire.metrics import SessionMetrics
from wire.patterns import BUILT_INS, Pattern

MAX_INSIGHTS = 5
COVERAGE_LOW = 0.7  # below this, say the camera lost the person
COVERAGE_TRUST = 0.3  # below this, no sentence relies on the measured breath
ADHERENCE_HIGH = 0.8
ADHERENCE_LOW = 0.5
PHASE_LENGTH_OFF = 0.2  # measured inhale/exhale this much shorter or longer than the guide
SETTLED_AFTER_MIN_S = 30
STILL_HIGH = 0.9
STILL_LOW = 0.6
ONSET_LATE_S = 0.7
HOLD_NOTABLE_S = 10.0
NEXT_MAX_MINUTES = 20
EASY_PATTERN = "mindfulness"  # no holds: the easiest built-in to follow
RESONANCE_PATTERN = "coherent"


@dataclass(frozen=True)
class Insight:
    text: str
    value: float  # the number the sentence shows, unrounded
    rule_id: str


@dataclass(frozen=True)
class NextStep:
    """One suggestion: which pattern, for how long, and why."""

    pattern_id: str | None  # None: the same custom pattern, which has no stored id
    pattern_name: str
    minutes: int
    text: str
    rule_id: str


@dataclass(frozen=True)
class Insights:
    sentences: tuple[Insight, ...]
    next_step: NextStep

    def to_dict(self) -> dict[str, object]:
        return {
            "sentences": [vars(s) for s in self.sentences],
            "next_step": vars(self.next_step),
        }


Rule = Callable[[SessionMetrics, Pattern], Insight | None]


def _pct(share: float) -> str:
    return f"{round(100 * share)} %"


def _seconds(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") + " s"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} seconds"
    minutes = seconds / 60
    return f"{minutes:.1f}".rstrip("0").rstrip(".") + " minutes"


def _trusted(m: SessionMetrics) -> bool:
    return m.coverage >= COVERAGE_TRUST


def summary(m: SessionMetrics, p: Pattern) -> Insight:
    cycles = "cycle" if m.cycles_completed == 1 else "cycles"
    return Insight(
        f"You practised {p.name} for {_duration(m.duration_s)}: {m.cycles_completed} full "
        f"{cycles}.",
        m.duration_s,
        "summary",
    )


def coverage_low(m: SessionMetrics, p: Pattern) -> Insight | None:
    if m.coverage >= COVERAGE_LOW:
        return None
    return Insight(
        f"The camera saw you for {_pct(m.coverage)} of the session — move into view, chest and "
        "shoulders in the frame.",
        m.coverage,
        "coverage_low",
    )


def adherence(m: SessionMetrics, p: Pattern) -> Insight | None:
    if m.adherence is None or not _trusted(m):
        return None
    if m.adherence >= ADHERENCE_HIGH:
        text = f"You followed the guide {_pct(m.adherence)} of the time."
    elif m.adherence >= ADHERENCE_LOW:
        text = f"You followed the guide {_pct(m.adherence)} of the time; steadier with practice."
    else:
        text = (
            f"Your breath matched the guide only {_pct(m.adherence)} of the time — let the light "
            "lead, and change phase when it does."
        )
    return Insight(text, m.adherence, "adherence")


def _phase_length(
    kind: str, measured: float | None, guide: float, m: SessionMetrics
) -> Insight | None:
    if measured is None or not _trusted(m):
        return None
    off = round(measured / guide - 1.0, 4)  # 6.4 s against 8 s is 20 % off, not 19.99
    if abs(off) < PHASE_LENGTH_OFF:
        return None
    word = "shorter" if off < 0 else "longer"
    return Insight(
        f"Your {kind}s were {_pct(abs(off))} {word} than the guide's {_seconds(guide)}.",
        off,
        f"{kind}_length",
    )


def exhale_length(m: SessionMetrics, p: Pattern) -> Insight | None:
    return _phase_length("exhale", m.measured_exhale_s, p.exhale, m)


def inhale_length(m: SessionMetrics, p: Pattern) -> Insight | None:
    return _phase_length("inhale", m.measured_inhale_s, p.inhale, m)


def onset_late(m: SessionMetrics, p: Pattern) -> Insight | None:
    lags = [x for x in (m.onset.inhale_mean_s, m.onset.exhale_mean_s) if x is not None]
    if not lags or not _trusted(m):
        return None
    lag = sum(lags) / len(lags)
    if lag < ONSET_LATE_S:
        return None
    return Insight(
        f"You changed phase {_seconds(lag)} after the guide on average — try to move with it.",
        lag,
        "onset_late",
    )


def rate_settled(m: SessionMetrics, p: Pattern) -> Insight | None:
    r = m.rate
    if r.settled_bpm is None or r.settled_after_s is None or not _trusted(m):
        return None
    if r.settled_after_s < SETTLED_AFTER_MIN_S:
        return None
    return Insight(
        f"Your rate settled at {r.settled_bpm:.1f} breaths/min after "
        f"{_duration(r.settled_after_s)}.",
        r.settled_bpm,
        "rate_settled",
    )


def resonance(m: SessionMetrics, p: Pattern) -> Insight | None:
    low, high = RESONANCE_BPM
    median = m.rate.median
    if median is None or not _trusted(m) or not low <= median <= high:
        return None
    return Insight(
        f"You breathed at {median:.1f} breaths/min, in the resonance range of {low:g}–{high:g}.",
        median,
        "resonance",
    )


def longest_hold(m: SessionMetrics, p: Pattern) -> Insight | None:
    longest = m.holds.longest_s
    if longest is None or longest < HOLD_NOTABLE_S or not _trusted(m):
        return None
    return Insight(f"Your longest measured hold was {_seconds(longest)}.", longest, "longest_hold")


def still(m: SessionMetrics, p: Pattern) -> Insight | None:
    if m.stillness is None:
        return None
    if m.stillness >= STILL_HIGH:
        return Insight(f"You were still {_pct(m.stillness)} of the time.", m.stillness, "still")
    if m.stillness < STILL_LOW:
        return Insight(
            f"You moved for {_pct(1 - m.stillness)} of the time; sitting still lets the camera "
            "read your breath.",
            m.stillness,
            "still",
        )
    return None


# Priority order: the first MAX_INSIGHTS that fire are shown, in this order.
RULES: tuple[Rule, ...] = (
    summary,
    coverage_low,
    adherence,
    exhale_length,
    inhale_length,
    onset_late,
    rate_settled,
    resonance,
    longest_hold,
    still,
)


def _minutes(seconds: float) -> int:
    return max(1, round(seconds / 60))


def next_step(m: SessionMetrics, p: Pattern, pattern_id: str | None) -> NextStep:
    """Exactly one suggestion, from the first of these that applies."""
    minutes = _minutes(m.duration_s)
    if m.coverage < COVERAGE_TRUST:
        return _step(
            pattern_id,
            p,
            max(3, minutes),
            "coverage",
            "sitting where the camera sees your chest and shoulders",
        )
    if m.adherence is not None and m.adherence < ADHERENCE_LOW and pattern_id != EASY_PATTERN:
        return _step(
            EASY_PATTERN,
            BUILT_INS[EASY_PATTERN],
            3,
            "easier",
            "even breaths without holds are easier to follow",
        )
    if m.adherence is not None and m.adherence >= ADHERENCE_HIGH:
        if minutes >= 5 and pattern_id != RESONANCE_PATTERN:
            return _step(
                RESONANCE_PATTERN,
                BUILT_INS[RESONANCE_PATTERN],
                10,
                "resonance",
                "you are ready for resonance breathing",
            )
        return _step(
            pattern_id,
            p,
            min(NEXT_MAX_MINUTES, minutes + 2),
            "longer",
            "a little longer than today",
        )
    return _step(pattern_id, p, max(3, minutes), "repeat", "the same again to build the habit")


def _step(pattern_id: str | None, p: Pattern, minutes: int, rule_id: str, why: str) -> NextStep:
    unit = "minute" if minutes == 1 else "minutes"
    return NextStep(
        pattern_id=pattern_id,
        pattern_name=p.name,
        minutes=minutes,
        text=f"Next: {p.name} ({p.label}) for {minutes} {unit} — {why}.",
        rule_id=rule_id,
    )


def build_insights(
    metrics: SessionMetrics,
    pattern: Pattern,
    pattern_id: str | None = None,
    *,
    rules: tuple[Rule, ...] = RULES,
) -> Insights:
    """Two to five sentences (in rule order) and one next step."""
    fired = [i for i in (rule(metrics, pattern) for rule in rules) if i is not None]
    return Insights(tuple(fired[:MAX_INSIGHTS]), next_step(metrics, pattern, pattern_id))
