"""Breath rate from the intervals between like turning points (peak→peak, trough→trough).

Both kinds of interval are full breath periods, so the rate updates twice per breath and the
first rate appears one period after the first turning point (one 4-7-8 breath is 19 s).

Two estimates, for two uses:

* ``shown_period`` — the number a person reads — averages the last ``cycles`` breaths, but
  never over more than ``shown_s`` seconds. A fixed count of breaths is 10 s at 24/min but
  40 s at 6/min, so a slow breather's number would trail a change for most of a minute; a
  fixed time would average ten breaths at 40/min and a single one at 4/min. So the count
  rules at ordinary and fast paces (where it is 4–16 s) and the time at slow ones (3 breaths
  at 6/min, 2 at 4/min). Each kind of interval (peak→peak, trough→trough) is averaged
  over the window (at least ``min_shown`` of each); peaks weigh ``peak_weight`` times as much
  as troughs because the top of a breath is a sharp turn while the bottom sits in the
  end-of-exhale pause. An interval far from the recent median — a missed turn makes
  one about twice as long, a spurious turn splits a breath in two — is left out, so a
  tracking slip cannot move the number; ordinary breath-to-breath irregularity, a sigh
  included, stays in, as it does when a person counts.
* ``period`` — how long a breath is right now — drives the estimator's own timing (when a
  rate is stale, the lag of the periodicity check, the fading depth) and the steadiness part
  of the quality. It averages the periods of the last ``window_s`` seconds (at least
  ``min_count``) after dropping those far from their median.

A change of pace: when the last three periods all differ from the ones before by more than
``change`` in the same direction, the breathing has changed and ``period`` forgets the older
periods. If the new pace is more than ``restart`` away from the shown rate and steady (the
last two periods agree within ``change``), the shown rate also starts over from those two
(the first of the three usually straddles the change), so a step from 12 to 20 breaths/min
shows after about two new breaths; a smaller drift, or one odd breath, is followed by the
windowed mean, one breath at a time.

Periods outside the plausible range (a 25 s hold makes a 30 s interval) are dropped outright.
A disturbance (no person, body motion) starts a new epoch: no interval spans it. After a short
one the old breaths still count (the person breathes as before, see ``resume``) and new ones
replace them one by one; after a long one the shown rate is rebuilt from new breaths only.
"""

from __future__ import annotations

import statistics
from collections import deque

KINDS = ("peak", "trough")


class RateTracker:
    """Collects breath periods and answers with a rate (breaths/min) or None."""

    def __init__(self, min_bpm: float = 2.5, max_bpm: float = 45.0, window_s: float = 15.0,
                 min_count: int = 4, change: float = 0.15, cycles: int = 4,
                 shown_s: float = 30.0, min_shown: int = 2,
                 peak_weight: float = 2.0, outlier: float = 1.6, restart: float = 0.4,
                 history: int | None = 200) -> None:
        self.min_period = 60.0 / max_bpm
        self.max_period = 60.0 / min_bpm
        self.window_s = window_s
        self.min_count = min_count
        self.change = change
        self.cycles = cycles
        self.shown_s = shown_s
        self.min_shown = min_shown
        self.weights = {"peak": peak_weight, "trough": 1.0}
        self.outlier = outlier  # shown: periods within [1/outlier, outlier] × recent median
        self.restart = restart
        self.periods: deque[tuple[float, float]] = deque(maxlen=40)  # (end time, period)
        self._by_kind: dict[str, deque[tuple[float, float]]] = {
            k: deque(maxlen=40) for k in KINDS}
        self.session_periods: deque[float] = deque(maxlen=history)  # for the session rate
        self._last: dict[str, tuple[float, int]] = {}
        self._epoch = 0
        self.fresh = 0  # periods measured since the last disturbance
        self._gap_start: float | None = None
        self.period: float | None = None  # current breath length (s)
        self.shown_period: float | None = None  # mean breath over the shown window (s)

    def disrupt(self, t: float | None = None) -> None:
        """Nothing measured before ``t`` may pair with what comes after."""
        self._epoch += 1
        self.fresh = 0
        self._gap_start = t

    def resume(self, t: float, max_gap_s: float) -> None:
        """Breathing is seen again at ``t``: after a short gap, trust the old periods again.

        A person who shifted in the chair for a few seconds breathes as before, so the rate
        may return at the first turning point instead of a full breath later. After a gap
        longer than ``max_gap_s`` the old breaths say nothing about the new ones.
        """
        if self.fresh > 0 or self._gap_start is None:
            return
        if t - self._gap_start <= max_gap_s:
            if self.period is not None:
                self.fresh = 1
        else:
            for recent in self._by_kind.values():
                recent.clear()

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
        self._by_kind[kind].append((t, period))
        self.session_periods.append(period)
        self.fresh += 1
        self._follow_change()
        self._estimate()
        self._estimate_shown()
        return period

    def _follow_change(self) -> None:
        """Forget the periods before a change of pace (see the module docstring)."""
        ps = [p for _, p in self.periods]
        if len(ps) < 6:
            return
        recent, older = ps[-3:], ps[:-3]
        ref = statistics.median(older[-8:])
        if not (all(p > ref * (1 + self.change) for p in recent) or all(
                p < ref * (1 - self.change) for p in recent)):
            return
        keep = list(self.periods)[-3:]
        self.periods.clear()
        self.periods.extend(keep)
        new, shown = statistics.median(recent), self.shown_period
        if shown is None or max(new, shown) / min(new, shown) <= 1 + self.restart:
            return
        a, b = recent[1], recent[2]
        if max(a, b) / min(a, b) > 1 + self.change:
            return  # not a steady new pace yet (a slip or an odd breath): follow it gently
        start = keep[1][0] - keep[1][1] - 1e-6
        for recent_kind in self._by_kind.values():
            since = [(t, p) for t, p in recent_kind if t - p >= start]
            recent_kind.clear()
            recent_kind.extend(since)

    def _estimate(self) -> None:
        t_end = self.periods[-1][0]
        sel = [p for t, p in self.periods if t >= t_end - self.window_s]
        if len(sel) < self.min_count:
            sel = [p for _, p in list(self.periods)[-self.min_count:]]
        med = statistics.median(sel)
        kept = [p for p in sel if 0.8 * med <= p <= 1.25 * med]
        self.period = sum(kept) / len(kept) if kept else med

    def shown_window_s(self, period: float) -> float:
        """How far back the shown rate looks: ``cycles`` breaths, at most ``shown_s``."""
        return min(self.cycles * period, self.shown_s)

    def _estimate_shown(self) -> None:
        med = statistics.median(p for k in KINDS for _, p in list(self._by_kind[k])[-4:])
        total = weight = 0.0
        for kind in KINDS:
            kept = [p for _, p in self._plausible(self._by_kind[kind], med)][-self.cycles:]
            while len(kept) > self.min_shown and sum(kept) > self.shown_s + 1e-9:
                kept.pop(0)  # a slow breather: no older breath than the time window
            if kept:
                total += self.weights[kind] * sum(kept) / len(kept)
                weight += self.weights[kind]
        self.shown_period = total / weight if weight else med

    def _plausible(self, periods, med: float) -> list[tuple[float, float]]:
        """Periods near ``med``; one cut short by a spurious turn is joined to the next (the
        two halves of a split breath make the breath again)."""
        lo, hi = med / self.outlier, med * self.outlier
        out, carry = [], 0.0
        for t, p in periods:
            if p < lo:
                carry += p
                continue
            if lo <= p + carry <= hi:
                out.append((t, p + carry))
            elif p <= hi:
                out.append((t, p))
            carry = 0.0
        return out

    @property
    def rate_bpm(self) -> float | None:
        """The rate to show: breaths/min over the shown window."""
        return None if self.shown_period is None else 60.0 / self.shown_period

    def session_rate(self) -> float | None:
        """Rate over the session (median period of the last ``history``), for the summary."""
        kept = self.session_periods
        return 60.0 / statistics.median(kept) if kept else None
