"""Breathing driven by a real respiration recording, with truth from the recording itself.

The synthetic person's chest can follow a recorded respiration waveform (impedance
pneumography from the BIDMC dataset: Pimentel M.A.F. et al., "Towards a robust estimation of
respiratory rate from pulse oximeters", IEEE TBME 2016; PhysioNet, ODC-By 1.0) instead of the
generated one, so the estimator meets real, irregular breathing: cardiac ripple, end-of-exhale
plateaus of varying length, sudden changes of depth and pace.

``RecordedPlan`` answers the same questions as ``waveform.BreathPlan`` (volume, phase, rate,
breaths, holds), so ``synth.Scenario`` renders and scores it the same way. Truth comes from the
recording's own turning points, found offline (the truth may look ahead; the estimator may
not): the waveform is smoothed without lag below the cardiac band, and peaks and troughs with
a prominence of at least ``PROMINENCE`` of the typical breath are its breaths. A breath's
inhale starts where the signal leaves its trough (the last moment within ``DEPART`` of the
swing above it), its exhale where the signal leaves its peak; everything from the exhale start
to the next inhale start, plateau included, is exhale, as in ``waveform``. A bump that rises
more than that in the pause counts as the start of the inhale (the chest did rise).

``speed`` < 1 plays the breathing slower (a 20/min record becomes a 10/min person at 0.5);
the cardiac ripple keeps its own timing, as a slower breather's heart does.
"""

from __future__ import annotations

import csv
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.errors import SourceError
from device.simulator.waveform import A_REF, MAX_CYCLE_S, V_REST, Breath

PROMINENCE = 0.3  # a turning point must stand out by this fraction of the median breath
DEPART = 0.05  # a stroke starts where the signal leaves its extremum by this fraction
BREATH_BAND_HZ = 0.9  # above this (scaled by speed) is cardiac ripple and sensor noise
DRIFT_HZ = 0.03  # slower than this is electrode drift, not chest movement
DATA_ENV = "BREATHE_BIDMC_DIR"


def default_data_dir() -> Path:
    """Where the development records are: $BREATHE_BIDMC_DIR, else ../shared/data/bidmc
    beside the repository."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bidmc"


def available_records(folder: Path | str | None = None) -> list[Path]:
    """The ``*_Signals.csv`` files in ``folder`` (the default data dir), sorted."""
    folder = Path(folder) if folder is not None else default_data_dir()
    return sorted(folder.glob("*_Signals.csv")) if folder.is_dir() else []


@lru_cache(maxsize=16)
def load_resp(path: str, column: str = "RESP") -> tuple[np.ndarray, float]:
    """(samples, sampling rate) of the ``column`` signal in a CSV whose first column is time
    in seconds; the column is found by its header name (its position varies by record)."""
    p = Path(path)
    try:
        with p.open(newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            k = header.index(column) if column in header else -1
            rows = [(r[0], r[k]) for r in reader if len(r) > k] if k >= 0 else []
    except OSError as exc:
        raise SourceError(f"{p}: cannot read the recording ({exc.strerror or exc}); set "
                          f"{DATA_ENV} or --data to the folder of BIDMC records") from exc
    if k < 0:
        raise SourceError(f"{p}: no {column!r} column (header: {', '.join(header)}); "
                          "give a BIDMC *_Signals.csv file")
    data = np.array([[_num(a), _num(b)] for a, b in rows], dtype=float)
    if len(data) < 100:
        raise SourceError(f"{p}: only {len(data)} samples of {column}; need a longer recording")
    fs = (len(data) - 1) / (data[-1, 0] - data[0, 0])
    x = data[:, 1]
    bad = ~np.isfinite(x)
    if bad.any():  # short dropouts: bridge them
        idx = np.arange(len(x))
        x[bad] = np.interp(idx[bad], idx[~bad], x[~bad])
    return x, float(fs)


def _num(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.nan


class RecordingSpec(BaseModel):
    """Which stretch of which recording drives the breathing."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="CSV with a time column and a RESP column")
    start: float = Field(0.0, ge=0, description="seconds into the recording")
    speed: float = Field(1.0, ge=0.25, le=2.0, description="playback speed of the breathing")
    invert: bool = Field(False, description="flip the sign (impedance leads can be reversed)")
    depth_jumps: float = Field(0.0, ge=0, le=1.0,
                               description="random breath-depth steps every ~20 s (fraction)")


def turning_points(y: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of alternating troughs and peaks of a smoothed breathing signal (offline)."""
    from scipy import signal  # offline only: scipy.signal costs ~58 MB, the demo never needs it

    peaks, _ = signal.find_peaks(y, distance=max(1, int(0.8 * fs)))
    troughs, _ = signal.find_peaks(-y, distance=max(1, int(0.8 * fs)))
    if len(peaks) < 2 or len(troughs) < 2:
        return np.array([], int), np.array([], int)
    swing = np.percentile(y[peaks], 75) - np.percentile(y[troughs], 25)
    pk, _ = signal.find_peaks(y, prominence=PROMINENCE * 0.5 * swing,
                              distance=max(1, int(0.8 * fs)))
    tr, _ = signal.find_peaks(-y, prominence=PROMINENCE * 0.5 * swing,
                              distance=max(1, int(0.8 * fs)))
    # alternate: between two troughs keep the highest peak, between two peaks the lowest trough
    marks = sorted([(i, 1) for i in pk] + [(i, -1) for i in tr])
    out: list[tuple[int, int]] = []
    for i, kind in marks:
        if out and out[-1][1] == kind:
            j = out[-1][0]
            if (kind == 1 and y[i] > y[j]) or (kind == -1 and y[i] < y[j]):
                out[-1] = (i, kind)
            continue
        out.append((i, kind))
    return (np.array([i for i, k in out if k == -1], int),
            np.array([i for i, k in out if k == 1], int))


class RecordedPlan:
    """A recording's stretch as a breath plan: volume, phase, rate and breaths at any time."""

    def __init__(self, spec: RecordingSpec, duration: float, seed: int = 0) -> None:
        from scipy import signal

        raw, fs = load_resp(str(Path(spec.path).expanduser().resolve()))
        self.spec = spec
        sign = -1.0 if spec.invert else 1.0
        span = duration * spec.speed + 30.0  # margin for filter edges and the last breath
        i0 = int(spec.start * fs)
        i1 = min(len(raw), i0 + int(span * fs))
        if i1 - i0 < int(min(span, duration * spec.speed + 5.0) * fs):
            raise SourceError(f"{spec.path}: {len(raw) / fs:.0f} s long; cannot take "
                              f"{duration * spec.speed:.0f} s from {spec.start:.0f} s")
        x = sign * raw[i0:i1]
        sos_drift = signal.butter(2, DRIFT_HZ, "highpass", fs=fs, output="sos")
        x = signal.sosfiltfilt(sos_drift, x)
        sos_breath = signal.butter(4, BREATH_BAND_HZ, fs=fs, output="sos")
        breath = signal.sosfiltfilt(sos_breath, x)
        ripple = x - breath
        t_rec = np.arange(len(x)) / fs
        # play the breathing at ``speed``; the ripple keeps real time
        self._t = np.arange(0.0, (len(x) - 1) / fs / spec.speed, 1.0 / fs)
        b = np.interp(self._t * spec.speed, t_rec, breath)
        r = np.interp(self._t, t_rec, ripple)
        smooth = signal.sosfiltfilt(
            signal.butter(4, min(BREATH_BAND_HZ * spec.speed, 0.45 * fs), fs=fs,
                          output="sos"), b)
        tr, pk = turning_points(smooth, fs)
        if len(tr) < 3 or len(pk) < 2:
            raise SourceError(f"{spec.path} at {spec.start:.0f} s: fewer than 3 breaths found; "
                              "is the RESP signal flat there?")
        amp = float(np.median(smooth[pk]) - np.median(smooth[tr])) or 1.0
        depth = self._depth_steps(len(b), fs, seed) if spec.depth_jumps else 1.0
        level = (b + r) * depth / amp
        self.fs = fs
        self._v = V_REST + A_REF * (level - float(np.median(smooth[tr]) / amp))
        self.breaths = self._breaths(smooth / amp, tr, pk)

    def _depth_steps(self, n: int, fs: float, seed: int) -> np.ndarray:
        """Sudden changes of breath depth (a person settling, a sigh series) every ~20 s."""
        rng = np.random.default_rng([seed, 505])
        out = np.ones(n)
        t = float(rng.uniform(8, 25))
        while t * fs < n:
            out[int(t * fs):] = math.exp(float(rng.normal(0, self.spec.depth_jumps)))
            t += float(rng.uniform(12, 30))
        return out

    def _breaths(self, y: np.ndarray, tr: np.ndarray, pk: np.ndarray) -> list[Breath]:
        t = self._t
        out: list[Breath] = []
        for a, b in zip(tr[:-1], tr[1:], strict=True):
            inside = pk[(pk > a) & (pk < b)]
            if not len(inside):
                continue
            p = int(inside[0])
            swing_in, swing_out = y[p] - y[a], y[p] - y[b]
            # inhale starts where the signal leaves the trough, exhale where it leaves the peak
            near_lo = np.nonzero(y[a:p] <= y[a] + DEPART * swing_in)[0]
            start = a + int(near_lo[-1]) if len(near_lo) else a
            near_hi = np.nonzero(y[p:b] >= y[p] - DEPART * swing_out)[0]
            ex = p + int(near_hi[-1]) if len(near_hi) else p
            out.append(Breath(float(t[start]), float(t[p]), float(t[ex]), float(t[b]),
                              math.nan, float(V_REST), float(V_REST + A_REF * swing_in),
                              float(V_REST), 1.0, 1.0))
        # each breath runs to the next one's inhale start
        fixed = []
        for k, br in enumerate(out):
            nxt = out[k + 1].inhale_start if k + 1 < len(out) else br.trough_time
            fixed.append(Breath(br.inhale_start, br.peak_time, br.exhale_start, br.trough_time,
                                nxt, br.base0, br.peak, br.base1, 1.0, 1.0))
        return fixed[:-1] if len(fixed) > 1 else fixed

    # ---- the BreathPlan interface -------------------------------------------------------
    def volume(self, t: np.ndarray | float) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        return np.interp(t, self._t, self._v)

    def _index(self, t: np.ndarray) -> np.ndarray:
        starts = np.array([b.inhale_start for b in self.breaths])
        return np.searchsorted(starts, t, side="right") - 1

    def phase(self, t: np.ndarray | float) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        k = self._index(t)
        out = np.full(t.shape, None, dtype=object)
        for i, (ti, ki) in enumerate(zip(t, k, strict=True)):
            if 0 <= ki < len(self.breaths) and ti < self.breaths[ki].next_start:
                out[i] = "inhale" if ti < self.breaths[ki].exhale_start else "exhale"
        return out

    def rate(self, t: np.ndarray | float) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        k = self._index(t)
        out = np.full(t.shape, np.nan)
        for i, (ti, ki) in enumerate(zip(t, k, strict=True)):
            if 0 <= ki < len(self.breaths) and ti < self.breaths[ki].next_start:
                cycle = self.breaths[ki].cycle
                out[i] = 60.0 / cycle if cycle <= MAX_CYCLE_S else np.nan
        return out

    def breaths_between(self, t0: float, t1: float) -> list[Breath]:
        return [b for b in self.breaths if t0 <= b.inhale_start < t1]

    def holds_between(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return []
