"""Causal filters that carry their state explicitly, one sample at a time.

scipy defines the contract (``y, zf = sosfilt(sos, x, zi=zi)``). ``LowPass.step`` runs the
same transposed direct-form II recursion for one sample in plain Python, because calling
``sosfilt`` on a one-element array costs ~40 µs and the estimator has a budget of a few µs per
filter. The 2nd-order Butterworth design is written out (three lines of the bilinear
transform) rather than imported: ``import scipy.signal`` alone costs ~58 MB of RSS, a quarter
of the device's memory budget. Tests prove the design, the initial state and the recursion
equal ``scipy.signal.butter``, ``sosfilt_zi`` and ``sosfilt``; ``process`` (batch) uses scipy.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

_GAUSS_ABS = math.sqrt(2.0 / math.pi)  # E|z| for a standard normal z


def butter2_sos(cutoff_hz: float, fs: float) -> np.ndarray:
    """``scipy.signal.butter(2, cutoff_hz, fs=fs, output="sos")``: one biquad, prewarped."""
    k = math.tan(math.pi * cutoff_hz / fs)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    b0 = k * k * norm
    a1 = 2.0 * (k * k - 1.0) * norm
    a2 = (1.0 - math.sqrt(2.0) * k + k * k) * norm
    return np.array([[b0, 2.0 * b0, b0, 1.0, a1, a2]])


def sos_zi(sos: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfilt_zi``: the state of each section at rest on a unit input."""
    zi = np.zeros((len(sos), 2))
    scale = 1.0
    for i, (b0, b1, b2, _a0, a1, a2) in enumerate(sos):
        zi[i] = (scale * (b1 + b2 - a1 - a2), scale * (b2 - a2))
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2)
    return zi


def _biquads(rows: list[tuple[float, ...]], state: list[list[float]], x: float) -> float:
    """One sample through cascaded biquads (transposed direct form II), updating ``state``."""
    for (b0, b1, b2, _a0, a1, a2), st in zip(rows, state, strict=True):
        y = b0 * x + st[0]
        st[0] = b1 * x - a1 * y + st[1]
        st[1] = b2 * x - a2 * y
        x = y
    return x


class LowPass:
    """Butterworth low-pass with explicit state; also yields a velocity (units per second)."""

    def __init__(self, cutoff_hz: float, fs: float, order: int = 2) -> None:
        if order != 2:
            raise ValueError(f"LowPass is a 2nd-order Butterworth; got order={order}")
        nyq = fs / 2.0
        if not 0.0 < cutoff_hz < nyq:
            raise ValueError(f"low-pass cutoff {cutoff_hz} Hz must lie in (0, {nyq}) at {fs} fps")
        self.fs = fs
        self.cutoff_hz = cutoff_hz
        self.sos = butter2_sos(cutoff_hz, fs)
        self._zi_unit = sos_zi(self.sos)
        self.zi = np.zeros_like(self._zi_unit)
        self._rows = [tuple(float(c) for c in row) for row in self.sos]
        self._state = [[0.0, 0.0] for _ in self._rows]
        self.last = 0.0
        self.delay_s = self._dc_delay()
        self.gain_y, self.gain_v = self._noise_gains()

    def reset(self, x0: float) -> None:
        """Settle the filter on a constant input ``x0`` (no start-up transient, velocity 0)."""
        self.zi = self._zi_unit * x0
        self._state = [[float(a), float(b)] for a, b in self.zi]
        self.last = x0

    def step(self, x: float) -> tuple[float, float]:
        """Filter one sample; return (smoothed value, velocity in units/s)."""
        x = _biquads(self._rows, self._state, x)
        v = (x - self.last) * self.fs
        self.last = x
        return x, v

    def process(self, xs: np.ndarray) -> np.ndarray:
        """Batch form with scipy's ``sosfilt`` and the same carried state as ``step``."""
        from scipy import signal

        self.zi = np.array(self._state, dtype=float)
        y, self.zi = signal.sosfilt(self.sos, np.asarray(xs, dtype=float), zi=self.zi)
        self._state = [[float(a), float(b)] for a, b in self.zi]
        if len(y):
            self.last = float(y[-1])
        return y

    def _impulse(self, n: int) -> np.ndarray:
        """Impulse response by the same recursion as ``step`` (state untouched)."""
        state = [[0.0, 0.0] for _ in self._rows]
        return np.array([_biquads(self._rows, state, 1.0 if i == 0 else 0.0) for i in range(n)])

    def _dc_delay(self) -> float:
        """Group delay at 0 Hz (s): how late a slow breath's turning point appears."""
        h = self._impulse(int(20 * self.fs / self.cutoff_hz))
        return float(np.sum(np.arange(len(h)) * h) / np.sum(h)) / self.fs

    def _noise_gains(self) -> tuple[float, float]:
        """Std of smoothed value and of velocity per unit std of white input noise."""
        h = self._impulse(int(20 * self.fs / self.cutoff_hz))
        dv = np.diff(np.concatenate([[0.0], h])) * self.fs
        return float(np.sqrt(np.sum(h**2))), float(np.sqrt(np.sum(dv**2)))


class NoiseFloor:
    """Running, robust estimate of white measurement noise (std) from second differences.

    A second difference cancels the slow breath and keeps the frame-to-frame jitter
    (variance 6σ² for white noise). Values beyond a few times the running mean are clipped so
    that steps and jolts do not inflate the floor. Time constant ``tau_s``.
    """

    def __init__(self, fs: float, tau_s: float = 8.0, warmup: int = 8) -> None:
        self.alpha = 1.0 / max(1.0, tau_s * fs)
        self.warmup = warmup
        self._prev: list[float] = []
        self._mean_abs = 0.0
        self._n = 0

    @property
    def ready(self) -> bool:
        return self._n >= self.warmup

    @property
    def sigma(self) -> float:
        return self._mean_abs / (math.sqrt(6.0) * _GAUSS_ABS)

    def reset(self) -> None:
        """Forget the last samples (after a gap) but keep the learnt floor."""
        self._prev = []

    def update(self, x: float) -> float:
        prev = self._prev
        if len(prev) < 2:
            prev.append(x)
            return self.sigma
        e = abs(x - 2.0 * prev[1] + prev[0])
        prev[0], prev[1] = prev[1], x
        self._n += 1
        if self._n <= self.warmup:
            self._mean_abs += (e - self._mean_abs) / self._n
        else:
            e = min(e, 3.0 * self._mean_abs) if self._mean_abs > 0 else e
            self._mean_abs += self.alpha * (e - self._mean_abs)
        return self.sigma


class FilterBank:
    """Low-pass filters at cutoffs a factor √2 apart, all fed the same samples.

    Slow breathing wants a low cutoff (a quiet velocity), fast breathing a high one (little
    lag); running the whole bank (~1 µs per filter) lets the estimator pick per sample without
    restarting a filter.
    """

    def __init__(self, fs: float, lowest_hz: float = 0.2, count: int = 8) -> None:
        self.fs = fs
        cut = [lowest_hz * math.sqrt(2.0) ** k for k in range(count)]
        self.filters = [LowPass(c, fs) for c in cut if c < 0.4 * fs]
        self.cutoffs = [f.cutoff_hz for f in self.filters]
        self.delays = [f.delay_s for f in self.filters]
        self.gains_v = [f.gain_v for f in self.filters]
        self.y = [0.0] * len(self.filters)
        self.v = [0.0] * len(self.filters)

    def nearest(self, cutoff_hz: float) -> int:
        """Index of the filter whose cutoff is closest (in ratio) to ``cutoff_hz``."""
        return min(range(len(self.cutoffs)),
                   key=lambda k: abs(math.log(self.cutoffs[k] / cutoff_hz)))

    def reset(self, x0: float) -> None:
        for f in self.filters:
            f.reset(x0)
        self.y = [x0] * len(self.filters)
        self.v = [0.0] * len(self.filters)

    def step(self, x: float) -> None:
        for k, f in enumerate(self.filters):
            self.y[k], self.v[k] = f.step(x)


class Ripple:
    """What a slower low-pass of the bank takes out of the charted one: ripple above the breath
    band (heartbeat, the flick at the end of an exhale), lag-matched so the breath's own slope
    mostly cancels. Keeps its mean square (8 s) and a fading peak (20 s) of the difference."""

    def __init__(self, bank: FilterBank, fast: int) -> None:
        self.bank, self.fast = bank, fast
        self._y: deque[float] = deque(maxlen=max(4, round(3.0 * bank.fs)))
        self._ms_a = 1.0 / (8.0 * bank.fs)
        self._pk_fade = 1.0 - 1.0 / (20.0 * bank.fs)
        self.reset(fast)

    def reset(self, slow: int) -> None:
        """Measure against filter ``slow`` from now on (``fast`` itself: measure nothing)."""
        self.slow = slow
        self.ms = self.peak = 0.0
        self._y.clear()

    def step(self) -> None:
        """After ``bank.step``."""
        bank = self.bank
        self._y.append(bank.y[self.fast])
        if self.slow == self.fast:
            return
        back = round((bank.delays[self.slow] - bank.delays[self.fast]) * bank.fs)
        if back >= len(self._y):
            return
        r = self._y[-1 - back] - bank.y[self.slow]
        self.ms += self._ms_a * (r * r - self.ms)
        self.peak = max(abs(r), self.peak * self._pk_fade)
