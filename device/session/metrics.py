"""Session metrics: how closely the measured breath followed the guide, as pure arithmetic.

Input is what the session loop sees each tick — one :class:`Sample` per tick (the pacing
engine's target phase beside the estimator's reading) plus the estimator's breath events — and
the pattern. Times are *active* session seconds (the pacing engine's ``elapsed``), so pauses do
not count and events line up with the guide. No I/O and no clock: the same samples always give
the same :class:`SessionMetrics`.

:class:`MetricsAccumulator` is the incremental form (``add`` per tick, ``live()`` for the cheap
"adherence so far" the engine publishes at 10 Hz, ``snapshot()`` for checkpoints and the final
summary); :func:`compute_metrics` is the same thing in one call, so both always agree.

Definitions (the summary page and the insights quote these):
- Each sample stands for the time until the next one (capped at ``MAX_GAP_S``, so a stalled
  loop does not inflate anything); the last sample borrows the interval before it.
- A *valid reading* is a sample whose measured phase is not None.
- *Adherence*: the share of read time in which the measured phase equals a guide phase that was
  in effect at some moment of the last ``LAG_S`` seconds (guide hold_in / hold_out count as the
  estimator's ``hold``). The measured breath may trail the guide by up to ``LAG_S``, not lead it.
- *Onset error*: a measured inhale_start / exhale_start minus the nearest guide start of the same
  phase, counted only within half that phase's length (positive = late).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from device.breath.types import BreathEvent, BreathReading, Phase
from device.pacing.engine import PacingState
from device.session.timeline import SETTLE_MIN_TAIL_S as SETTLE_MIN_TAIL_S
from device.session.timeline import SETTLE_SMOOTH_S as SETTLE_SMOOTH_S
from device.session.timeline import RunningMedian, Timeline
from device.session.timeline import mean_or_none as _mean
from device.session.timeline import round_or_none as _round
from wire.metrics import HoldStats, OnsetStats, RateStats, SessionMetrics, TimelinePoint
from wire.patterns import PHASE_NAMES, Pattern, PhaseName

LAG_S = 0.7
MAX_GAP_S = 1.0
RESONANCE_BPM = (5.0, 7.0)
TREND_MIN_SPAN_S = 30.0  # a slope over less than this says nothing
EPS = 1e-9

_MEASURED_OF: dict[PhaseName, Phase] = {
    "inhale": "inhale",
    "exhale": "exhale",
    "hold_in": "hold",
    "hold_out": "hold",
}


@dataclass(frozen=True)
class Sample:
    """One tick of a session: the guide's phase and what the camera measured at ``t``."""

    t: float  # active seconds since the session started
    target_phase: PhaseName
    measured_phase: Phase | None = None
    rate_bpm: float | None = None
    quality: float = 0.0
    displacement: float | None = None
    present: bool = False
    still: bool = True

    @classmethod
    def from_parts(cls, state: PacingState, reading: BreathReading | None) -> Sample:
        """Pair the guide state with the latest reading (None: no camera, pacing only)."""
        if reading is None:
            return cls(t=state.elapsed, target_phase=state.phase)
        return cls(
            t=state.elapsed,
            target_phase=state.phase,
            measured_phase=reading.phase,
            rate_bpm=reading.rate_bpm,
            quality=reading.quality,
            displacement=reading.displacement,
            present=reading.present,
            still=reading.still,
        )


@dataclass
class _Totals:
    """Time-weighted sums; copied so a snapshot can credit the pending sample."""

    total: float = 0.0
    read: float = 0.0
    matched: float = 0.0
    present: float = 0.0
    still: float = 0.0
    resonance: float = 0.0
    read_by_phase: dict[str, float] = field(default_factory=dict)
    matched_by_phase: dict[str, float] = field(default_factory=dict)

    def credit(self, sample: Sample, matched: bool, weight: float) -> None:
        self.total += weight
        if sample.present:
            self.present += weight
            if sample.still:
                self.still += weight
        if sample.rate_bpm is not None and RESONANCE_BPM[0] <= sample.rate_bpm <= RESONANCE_BPM[1]:
            self.resonance += weight
        if sample.measured_phase is None:
            return
        phase = sample.target_phase
        self.read += weight
        self.read_by_phase[phase] = self.read_by_phase.get(phase, 0.0) + weight
        if matched:
            self.matched += weight
            self.matched_by_phase[phase] = self.matched_by_phase.get(phase, 0.0) + weight

    def copy(self) -> _Totals:
        read, matched = dict(self.read_by_phase), dict(self.matched_by_phase)
        return replace(self, read_by_phase=read, matched_by_phase=matched)


def _share(part: float, whole: float) -> float | None:
    """part / whole to 4 decimals (plenty for a percentage), None when there is no whole."""
    return round(part / whole, 4) if whole > EPS else None


class MetricsAccumulator:
    """Metrics built one sample at a time; ``snapshot()`` equals ``compute_metrics`` so far."""

    def __init__(self, pattern: Pattern, *, lag_s: float = LAG_S) -> None:
        self.pattern = pattern
        self.lag_s = lag_s
        self._totals = _Totals()
        self._pending: tuple[Sample, bool] | None = None  # last sample, its interval not known yet
        self._last_dt = 0.0
        self._window: deque[tuple[float, Phase]] = deque()  # guide phases over the last lag_s
        self._breaths = _Breaths(pattern)
        self._rates = RunningMedian()
        self._sums = [0.0] * 5  # n, Σt, Σr, Σt², Σtr over rate readings (t in minutes)
        self._rate_span: tuple[float, float] | None = None
        self._timeline = Timeline()

    def add(self, sample: Sample) -> None:
        """Take the next tick; samples must come in time order."""
        if self._pending is not None:
            prev, prev_matched = self._pending
            if sample.t < prev.t:
                raise ValueError(f"samples must be in time order: {sample.t} s after {prev.t} s")
            self._last_dt = min(sample.t - prev.t, MAX_GAP_S)
            self._totals.credit(prev, prev_matched, self._last_dt)
        self._pending = (sample, self._matches(sample))
        self._add_rate(sample)
        self._timeline.add(sample)

    def add_event(self, event: BreathEvent) -> None:
        self._breaths.add(event)

    def add_events(self, events: Iterable[BreathEvent]) -> None:
        for event in events:
            self.add_event(event)

    def _matches(self, sample: Sample) -> bool:
        window = self._window
        window.append((sample.t, _MEASURED_OF[sample.target_phase]))
        # keep the newest entry at or before t - lag: the guide phase in effect at that moment
        while len(window) > 1 and window[1][0] <= sample.t - self.lag_s + EPS:
            window.popleft()
        if sample.measured_phase is None:
            return False
        return any(phase == sample.measured_phase for _, phase in window)

    def _add_rate(self, sample: Sample) -> None:
        if sample.rate_bpm is None or not math.isfinite(sample.rate_bpm):
            return
        r, tm = sample.rate_bpm, sample.t / 60.0
        self._rates.add(r)
        for i, value in enumerate((1.0, tm, r, tm * tm, tm * r)):
            self._sums[i] += value
        first = self._rate_span[0] if self._rate_span else sample.t
        self._rate_span = (first, sample.t)

    def _totals_now(self) -> _Totals:
        totals = self._totals.copy()
        if self._pending is not None:
            totals.credit(*self._pending, self._last_dt)
        return totals

    def live(self) -> tuple[float | None, float]:
        """(adherence so far, coverage so far): O(1), for the 10 Hz live state."""
        totals = self._totals_now()
        return _share(totals.matched, totals.read), _share(totals.read, totals.total) or 0.0

    def snapshot(self) -> SessionMetrics:
        totals = self._totals_now()
        duration = totals.total
        current = self._timeline.current()  # only the second in progress is rebuilt
        timeline = self._timeline.points(current)
        inhale_s, exhale_s, holds = self._breaths.lengths(self._end_t())
        return SessionMetrics(
            duration_s=round(duration, 3),
            # samples cover the whole active time, so whole cycles follow from the duration
            cycles_completed=int(duration / self.pattern.cycle_s + 1e-6),
            rate=self._rate_stats(current),
            adherence=_share(totals.matched, totals.read),
            adherence_by_phase={
                phase: _share(totals.matched_by_phase.get(phase, 0.0), totals.read_by_phase[phase])
                for phase in PHASE_NAMES
                if phase in totals.read_by_phase
            },
            onset=self._breaths.onsets(),
            measured_inhale_s=_round(_typical(inhale_s), 3),
            measured_exhale_s=_round(_typical(exhale_s), 3),
            holds=HoldStats(count=len(holds), longest_s=max(holds) if holds else None),
            stillness=_share(totals.still, totals.present),
            presence=_share(totals.present, totals.total) or 0.0,
            coverage=_share(totals.read, totals.total) or 0.0,
            resonance_s=round(totals.resonance, 3),
            timeline=timeline,
        )

    def _end_t(self) -> float:
        return self._pending[0].t + self._last_dt if self._pending else 0.0

    def _rate_stats(self, current: TimelinePoint | None) -> RateStats:
        if not self._rates:
            return RateStats()
        n, st, sr, stt, str_ = self._sums
        trend = None
        span = self._rate_span
        if span and span[1] - span[0] >= TREND_MIN_SPAN_S:
            denominator = n * stt - st * st
            if denominator > EPS:
                trend = (n * str_ - st * sr) / denominator
        settled, after = self._timeline.settled(current)
        return RateStats(
            median=round(self._rates.median(), 2),
            min=self._rates.min,
            max=self._rates.max,
            trend_bpm_per_min=_round(trend, 3),
            settled_bpm=settled,
            settled_after_s=after,
        )


def compute_metrics(
    samples: Iterable[Sample], events: Iterable[BreathEvent], pattern: Pattern
) -> SessionMetrics:
    """Metrics of a whole session in one call (same result as the accumulator)."""
    acc = MetricsAccumulator(pattern)
    for sample in samples:
        acc.add(sample)
    acc.add_events(events)
    return acc.snapshot()


_ENDS = {
    "inhale_start": ("exhale_start", "hold_start"),
    "exhale_start": ("inhale_start", "hold_start"),
    "hold_start": ("hold_end", "inhale_start", "exhale_start"),
}


def _event_order(event: BreathEvent) -> tuple[float, bool]:
    """Time order; a hold's end before anything else at the same moment."""
    return event.t, event.kind != "hold_end"


class _Breaths:
    """Measured phase lengths and onset errors, extended as breath events arrive.

    An inhale or exhale lasts until the next start of another phase; a hold until it ends (or
    breathing resumes); a hold still open at the end of the session lasts until the end. Events
    are kept in time order and scanned once; one arriving before an event already scanned
    (late delivery) makes the next read rescan from the start.
    """

    def __init__(self, pattern: Pattern) -> None:
        self.pattern = pattern
        self._events: list[BreathEvent] = []
        self._rescan()

    def _rescan(self) -> None:
        self._scanned = 0
        self._open: list[BreathEvent] = []  # starts whose end has not come yet
        self._lengths: dict[str, list[float]] = {kind: [] for kind in _ENDS}
        self._errors: dict[str, list[float]] = {"inhale": [], "exhale": []}

    def add(self, event: BreathEvent) -> None:
        # after any equal ones: the order a stable sort of the arrivals would give
        i = bisect_right(self._events, _event_order(event), key=_event_order)
        self._events.insert(i, event)
        if i < self._scanned:
            self._rescan()

    def _scan(self) -> None:
        p = self.pattern
        starts = {"inhale": (0.0, p.inhale), "exhale": (p.inhale + p.hold_in, p.exhale)}
        for event in self._events[self._scanned :]:
            still_open = []
            for start in self._open:
                if event.kind not in _ENDS[start.kind]:
                    still_open.append(start)
                elif event.t > start.t:
                    self._lengths[start.kind].append(round(event.t - start.t, 3))
            self._open = still_open
            if event.kind in _ENDS:
                self._open.append(event)
            kind = event.kind.removesuffix("_start")
            if kind in starts:  # onset error against the nearest guide start of that phase
                offset, length = starts[kind]
                k = max(0, round((event.t - offset) / p.cycle_s))
                error = event.t - (k * p.cycle_s + offset)
                if abs(error) <= length / 2 + EPS:
                    self._errors[kind].append(error)
        self._scanned = len(self._events)

    def lengths(self, end_t: float) -> tuple[list[float], list[float], list[float]]:
        """Measured inhale, exhale and hold lengths (s), in event order."""
        self._scan()
        holds = self._lengths["hold_start"] + [
            round(end_t - e.t, 3) for e in self._open if e.kind == "hold_start" and end_t > e.t
        ]
        return self._lengths["inhale_start"], self._lengths["exhale_start"], holds

    def onsets(self) -> OnsetStats:
        self._scan()
        found: dict[str, Any] = {}
        for kind, errors in self._errors.items():
            found[f"{kind}_count"] = len(errors)
            found[f"{kind}_mean_s"] = _round(_mean(errors), 3)
            found[f"{kind}_mean_abs_s"] = _round(_mean([abs(e) for e in errors]), 3)
        return OnsetStats(**found)


MIN_STROKES = 3  # fewer measured inhales (exhales) than this say nothing about their length


def _typical(lengths: list[float]) -> float | None:
    """The median stroke length, once there are enough strokes to trust it."""
    if len(lengths) < MIN_STROKES:
        return None
    ordered = sorted(lengths)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
