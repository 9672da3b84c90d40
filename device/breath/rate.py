"""Breath rate from the intervals between like turning points (peak→peak, trough→trough).

Both kinds of interval are full breath periods, so the rate updates twice per breath and the
first rate appears one period after the first turning point (one 4-7-8 breath is 19 s).

The rate averages the periods of the last ``window_s`` seconds (at least ``min_count``), after
dropping those far from their median: a single long interval spanning a breath hold does not
move it, while breath-to-breath jitter averages out. When the last three periods all differ
from the rest by more than ``change`` in the same direction, the breathing has changed and the
older periods are forgotten, so a step from 12 to 20 breaths/min shows within about two new
breaths. Periods outside the plausible range (a 25 s hold makes a 30 s interval) are dropped
outright. A disturbance (no person, body motion) starts a new epoch: no interval spans it.
"""

from __future__ import annotations

import statistics
from collections import deque


class RateTracker:
    """Collects breath periods and answers with a rate (breaths/min) or None."""

    def __init__(self, min_bpm: float = 2.5, max_bpm: float = 45.0, window_s: float = 15.0,
                 min_count: int = 4, change: float = 0.15) -> None:
        self.min_period = 60.0 / max_bpm
        self.max_period = 60.0 / min_bpm
        self.window_s = window_s
        self.min_count = min_count
        self.change = change
        self.periods: deque[tuple[float, float]] = deque(maxlen=40)  # (end time, period)
        self.all_periods: list[float] = []
        self._last: dict[str, tuple[float, int]] = {}
        self._epoch = 0
        self.fresh = 0  # periods measured since the last disturbance
        self._gap_start: float | None = None
        self.period: float | None = None  # current estimate (s)

    def disrupt(self, t: float | None = None) -> None:
        """Nothing measured before ``t`` may pair with what comes after."""
        self._epoch += 1
        self.fresh = 0
        self._gap_start = t

    def resume(self, t: float, max_gap_s: float) -> None:
        """Breathing is seen again at ``t``: after a short gap, trust the old periods again.

        A person who shifted in the chair for a few seconds breathes as before, so the rate
        may return at the first turning point instead of a full breath later.
        """
        if self.fresh == 0 and self.period is not None and self._gap_start is not None and (
                t - self._gap_start <= max_gap_s):
            self.fresh = 1

    def add(self, kind: str, t: float) -> float | None:
        """Record a turning point of ``kind`` at ``t``; return the period it closes, if any."""
        prev = self._last.get(kind)
        self._last[kind] = (t, self._epoch)
        if prev is None or prev[1] != self._epoch:
            return None
        period = t - prev[0]
        if not self.min_period <= period <= self.max_period:
            return None
        self.periods.append((t, period))
        self.all_periods.append(period)
        self.fresh += 1
        self._estimate()
        return period

    def _estimate(self) -> None:
        ps = [p for _, p in self.periods]
        if len(ps) >= 6:
            recent, older = ps[-3:], ps[:-3]
            ref = statistics.median(older[-8:])
            if all(p > ref * (1 + self.change) for p in recent) or all(
                    p < ref * (1 - self.change) for p in recent):
                keep = self.periods[-3], self.periods[-2], self.periods[-1]
                self.periods.clear()
                self.periods.extend(keep)
        t_end = self.periods[-1][0]
        sel = [p for t, p in self.periods if t >= t_end - self.window_s]
        if len(sel) < self.min_count:
            sel = [p for _, p in list(self.periods)[-self.min_count:]]
        med = statistics.median(sel)
        kept = [p for p in sel if 0.8 * med <= p <= 1.25 * med]
        self.period = sum(kept) / len(kept) if kept else med

    @property
    def rate_bpm(self) -> float | None:
        return None if self.period is None else 60.0 / self.period

    def session_rate(self) -> float | None:
        """Rate over the whole session (median period), for the summary."""
        return 60.0 / statistics.median(self.all_periods) if self.all_periods else None
