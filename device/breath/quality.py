"""How far to trust the breath estimate: a 0..1 quality from evidence the estimator has.

The number shown to a person must be right or absent, so the quality leans on what tells
breathing from everything else that wiggles: breathing is deep compared with the jitter, and
it repeats — its periods and its depths stay alike from breath to breath. Band-limited
tracking noise or a slow wander can swing as far as a shallow breath, but their "periods"
and "depths" scatter widely; that scatter is what pulls the quality down.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np


def spread(values: Sequence[float]) -> float:
    """Relative scatter: median absolute deviation over the median (0 for identical values)."""
    med = statistics.median(values)
    if med <= 0:
        return 1.0
    return statistics.median(abs(v - med) for v in values) / med


def _ramp(x: float, good: float, bad: float) -> float:
    """1 at ``good`` or better, 0 at ``bad`` or worse, linear between."""
    return max(0.0, min(1.0, (bad - x) / (bad - good)))


def depth_over_noise(depth: float, noise: float) -> float:
    """Breath depth against the smoothed white-noise std: 0 below 4×, 1 above 12×."""
    if depth <= 0.0:
        return 0.0
    return _ramp(-depth / max(noise, 1e-12), -12.0, -4.0)


def steadiness(periods: Sequence[float], swings: Sequence[float]) -> float:
    """Do the last breaths repeat? Periods and depths that agree score 1.

    With one period there is nothing to compare but the two strokes' depths; with two, the
    periods must also agree within a third. From three on, the scatter of up to six periods
    and of the last four depths decides.
    """
    if not periods or len(swings) < 2:
        return 0.0
    sw = list(swings)[-4:]
    depth_ok = _ramp(spread(sw), 0.15, 0.5) if len(sw) >= 3 else (
        1.0 if min(sw) >= 0.6 * max(sw) else 0.0)
    ps = list(periods)[-6:]
    if len(ps) == 1:
        return 0.8 * depth_ok
    if len(ps) == 2:
        return 0.8 * depth_ok if abs(ps[0] - ps[1]) <= 0.3 * max(ps) else 0.0
    return _ramp(spread(ps), 0.1, 0.35) * (0.5 + 0.5 * depth_ok)


def breath_quality(depth: float, noise: float, periods: Sequence[float],
                   swings: Sequence[float], fresh: bool, repeat: float | None) -> float:
    """Overall quality 0..1.

    ``fresh`` is False until a period was measured since a gap; ``repeat`` is the
    ``Periodicity`` score (None while there is too little signal to tell).
    """
    q = depth_over_noise(depth, noise) * steadiness(periods, swings)
    if repeat is not None:
        q *= _ramp(repeat, 0.85, 0.6)
    return round(q if fresh else 0.5 * q, 3)


class Periodicity:
    """Does the signal repeat itself one breath period later? (normalised correlation)

    Keeps the last ``span_s`` seconds of the smoothed velocity in a ring buffer. Correlating
    the velocity rather than the position makes a slow wander or a random walk (whose steps
    do not repeat) score near zero, while breathing, even a little irregular, scores high.
    """

    def __init__(self, fps: float, span_s: float = 64.0) -> None:
        self.fps = fps
        self.buf = np.zeros(int(span_s * fps))
        self.n = 0  # samples written since the last reset

    def reset(self) -> None:
        self.n = 0

    def push(self, v: float) -> None:
        self.buf[self.n % len(self.buf)] = v
        self.n += 1

    def _last(self, count: int) -> np.ndarray:
        size = len(self.buf)
        end = self.n % size
        if count <= end:
            return self.buf[end - count:end]
        return np.concatenate([self.buf[size - (count - end):], self.buf[:end]])

    @staticmethod
    def _detrend(a: np.ndarray) -> np.ndarray:
        """Remove the mean and the straight-line trend (posture drift is not breathing)."""
        x = np.arange(len(a)) - (len(a) - 1) / 2.0
        a = a - a.mean()
        return a - x * (float(np.dot(x, a)) / float(np.dot(x, x)))

    def score(self, period_s: float) -> float | None:
        """Best correlation at lags 0.9–1.1 periods over 1.5 periods; None: too little data."""
        lag = int(round(period_s * self.fps))
        win = int(round(1.5 * period_s * self.fps))
        need = win + int(round(1.1 * lag))
        if lag < 2 or need > min(self.n, len(self.buf)):
            return None
        seg = self._last(need)
        a = self._detrend(seg[-win:])
        best = -1.0
        for f in (0.9, 1.0, 1.1):
            k = int(round(f * lag))
            b = self._detrend(seg[need - win - k:need - k])
            den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
            if den > 0:
                best = max(best, float(np.dot(a, b)) / den)
        return best
