"""A breathing waveform with exact ground truth: lung-volume-like v(t) in 0..1.

The synthetic person is driven by this signal, and the truth the estimator is scored against
comes from the same breath list, so the two can never disagree.

Ground-truth conventions (used by ``synth.truth``):

* A breath runs from its ``inhale_start`` to the next breath's ``inhale_start`` (its cycle);
  the rate of every moment in it is ``60 / cycle``, or None when the cycle is longer than
  ``MAX_CYCLE_S`` (a long voluntary hold has no breathing rate).
* Phase is "inhale" while v rises and "exhale" while it falls. A flat stretch is "hold" only
  when it lasts at least ``HOLD_MIN_S`` (paced holds, breath holds). Shorter flats (the natural
  end-of-exhale pause, always < 1 s here, or a paced hold under 1 s) belong to the phase before.
* A breath's ``end`` is when its exhale finishes: the start of the hold that follows if there
  is one, else the next ``inhale_start``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

HOLD_MIN_S = 1.0  # flat stretches at least this long are holds
MAX_CYCLE_S = 24.0  # longer cycles (< 2.5 breaths/min) have no rate: that is a breath hold
A_REF = 0.35  # v amplitude of a typical breath at 12 breaths/min; maps to the scene's amplitude_px
V_REST = 0.12  # typical end-of-exhale level
_NATURAL_PAUSE_MAX = 0.9  # natural pauses stay below HOLD_MIN_S so they never read as holds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FreeBreathing(_Strict):
    """Unpaced breathing around a rate that may ramp or step over the block."""

    kind: Literal["free"] = "free"
    duration: float = Field(gt=0, description="seconds of this block")
    rate_bpm: float | list[tuple[float, float]] = Field(
        12.0,
        description="breaths/min, or [[t, bpm], ...] knots from the block start, linear "
        "between knots (two knots close together make a step)",
    )

    def rate_at(self, t: float) -> float:
        if isinstance(self.rate_bpm, int | float):
            return float(self.rate_bpm)
        knots = np.asarray(self.rate_bpm, dtype=float)
        return float(np.interp(t, knots[:, 0], knots[:, 1]))

    def rates(self) -> list[float]:
        if isinstance(self.rate_bpm, int | float):
            return [float(self.rate_bpm)]
        return [bpm for _, bpm in self.rate_bpm]


class PacedBreathing(_Strict):
    """Following a pacing guide (inhale, hold_in, exhale, hold_out seconds) with human lag."""

    kind: Literal["paced"] = "paced"
    duration: float = Field(gt=0, description="seconds of this block")
    pattern: tuple[float, float, float, float] = Field(
        description="inhale, hold_in, exhale, hold_out in seconds"
    )
    origin: float | None = Field(
        None, description="time the guide started (s); None: when this block begins"
    )


class BreathHold(_Strict):
    """One voluntary breath hold (after a deep inhale, or after an exhale)."""

    kind: Literal["hold"] = "hold"
    duration: float = Field(ge=HOLD_MIN_S, le=180, description="hold length in seconds")
    after: Literal["inhale", "exhale"] = "inhale"


Block = Annotated[FreeBreathing | PacedBreathing | BreathHold, Field(discriminator="kind")]


class BreathingSpec(_Strict):
    """What the person breathes and how irregularly."""

    blocks: list[Block] = Field(min_length=1)
    period_cv: float = Field(0.08, ge=0, le=0.3, description="cycle-to-cycle period jitter")
    amp_cv: float = Field(0.15, ge=0, le=0.5, description="breath-to-breath amplitude jitter")
    ie_ratio: float = Field(1.5, ge=0.7, le=3.0, description="exhale:inhale time, free breathing")
    sigh_per_min: float = Field(0.3, ge=0, le=4, description="how often a deep sigh comes")
    follow_lag_s: float = Field(0.3, ge=0, le=1.5, description="paced: delay behind the guide")
    follow_jitter_s: float = Field(0.12, ge=0, le=0.5, description="paced: timing scatter")
    tremor: float = Field(0.003, ge=0, le=0.05, description="micro-motion in v units")
    depth: float = Field(1.0, ge=0.3, le=2.0, description="scales every breath's amplitude")


@dataclass(frozen=True)
class Breath:
    """One breath's timing and levels. Holds are derived from the flat stretches' lengths."""

    inhale_start: float
    peak_time: float  # v stops rising
    exhale_start: float  # v starts falling
    trough_time: float  # v stops falling
    next_start: float  # next breath's inhale_start
    base0: float
    peak: float
    base1: float
    gamma_in: float
    gamma_out: float

    @property
    def hold_in(self) -> bool:
        return self.exhale_start - self.peak_time >= HOLD_MIN_S

    @property
    def hold_out(self) -> bool:
        return self.next_start - self.trough_time >= HOLD_MIN_S

    @property
    def end(self) -> float:
        return self.trough_time if self.hold_out else self.next_start

    @property
    def cycle(self) -> float:
        return self.next_start - self.inhale_start


class SmoothNoise:
    """Band-limited noise as a sum of sinusoids, unit RMS: a pure function of time."""

    def __init__(self, rng: np.random.Generator, low_hz: float, high_hz: float, n: int = 6):
        self.freqs = rng.uniform(low_hz, high_hz, n)
        self.phases = rng.uniform(0, 2 * math.pi, n)
        amps = rng.uniform(0.5, 1.0, n)
        self.amps = amps / math.sqrt(float(np.sum(amps**2)) / 2)

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        arg = 2 * math.pi * t[..., None] * self.freqs + self.phases
        return (self.amps * np.sin(arg)).sum(-1)


def _ease(u: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Smooth 0→1 ramp with zero slope at both ends; gamma < 1 front-loads it (passive exhale)."""
    u = np.clip(u, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(math.pi * u**gamma)


class BreathPlan:
    """Generates breaths block by block on demand, and answers v, phase and rate at any time."""

    def __init__(self, spec: BreathingSpec, seed: int = 0):
        self.spec = spec
        self.rng = np.random.default_rng(seed)
        self.breaths: list[Breath] = []
        self._tremor = SmoothNoise(self.rng, 0.4, 3.0)
        self._starts = np.cumsum([0.0] + [b.duration for b in spec.blocks])
        self._k = -1  # current block (-1: the free pre-roll before t = 0)
        self._hold_done = False
        self._e = 0.0  # AR(1) state of the period jitter
        self._base = V_REST
        self._recovery = 0  # deeper, faster breaths left after a breath hold
        self._guide: tuple[float, int] | None = None  # (origin, next cycle number) while paced
        self._last_rate = self._first_rate()
        self._arrays: dict[str, np.ndarray] | None = None
        period = 60.0 / self._last_rate
        self._append(self._free_breath(-float(self.rng.uniform(0.2, 1.0)) * period, None))

    # ---- generation -------------------------------------------------------------------
    def _first_rate(self) -> float:
        first = self.spec.blocks[0]
        return first.rate_at(0.0) if isinstance(first, FreeBreathing) else 12.0

    def extend(self, until: float) -> None:
        """Make sure breaths cover every time up to ``until``."""
        while self.breaths[-1].next_start <= until:
            self._append(self._next_breath(self.breaths[-1].next_start))

    def forget_before(self, t: float) -> None:
        """Drop the breaths over before ``t`` (a live source asks only about recent times)."""
        keep = next((i for i, b in enumerate(self.breaths) if b.next_start > t),
                    len(self.breaths) - 1)
        if keep > 0:
            del self.breaths[:keep]
            self._arrays = None

    def _append(self, breath: Breath) -> None:
        self.breaths.append(breath)
        self._base = breath.base1
        self._arrays = None

    def _block_for(self, s: float) -> FreeBreathing | PacedBreathing | BreathHold | None:
        blocks = self.spec.blocks
        while self._k + 1 < len(blocks):
            current = blocks[self._k] if self._k >= 0 else None
            if isinstance(current, BreathHold):
                if not self._hold_done:
                    break  # a hold is never skipped, however late it starts
            elif s < self._starts[self._k + 1]:
                break
            self._k += 1
            self._hold_done = False
            self._guide = None
        if self._k < 0:
            return None
        block = blocks[self._k]
        if isinstance(block, BreathHold) and self._hold_done:
            return None  # a final hold: carry on breathing freely
        return block

    def _next_breath(self, s: float) -> Breath:
        block = self._block_for(s)
        if isinstance(block, PacedBreathing):
            return self._paced_breath(s, block)
        if isinstance(block, BreathHold):
            self._hold_done = True
            self._recovery = 3
            return self._hold_breath(s, block)
        return self._free_breath(s, block)

    def _levels(self, amplitude: float) -> tuple[float, float, float]:
        base0 = self._base
        base1 = V_REST + 0.85 * (base0 - V_REST) + float(self.rng.normal(0, 0.008))
        peak = min(base0 + amplitude, 0.98)
        return base0, peak, float(np.clip(base1, 0.04, 0.25))

    def _amplitude(self, rate: float, scale: float = 1.0) -> float:
        depth = A_REF * self.spec.depth * (12.0 / rate) ** 0.35 * scale
        return depth * math.exp(self.spec.amp_cv * float(self.rng.normal()))

    def _free_breath(self, s: float, block: FreeBreathing | None) -> Breath:
        rng, spec = self.rng, self.spec
        if block is not None:
            rate = block.rate_at(s - self._starts[self._k])
        else:
            rate = self._last_rate
        self._last_rate = rate
        boost = 1.0
        if self._recovery > 0:
            rate, boost, self._recovery = rate * 1.2, 1.35, self._recovery - 1
        nominal = 60.0 / rate
        self._e = 0.5 * self._e + math.sqrt(1 - 0.25) * float(rng.normal())
        period = float(np.clip(nominal * math.exp(spec.period_cv * self._e), 0.7 * nominal,
                               1.4 * nominal))
        ie = spec.ie_ratio * math.exp(0.08 * float(rng.normal()))
        pause = min(float(rng.uniform(0.04, 0.14)) * period, 0.8)
        inhale = (period - pause) / (1 + ie)
        exhale = period - pause - inhale
        amplitude = self._amplitude(rate, boost)
        if rng.random() < spec.sigh_per_min * period / 60.0:
            amplitude *= float(rng.uniform(1.7, 2.2))
            inhale, exhale = inhale * 1.5, exhale * 1.35
            pause = min(pause * 1.6, _NATURAL_PAUSE_MAX)
        base0, peak, base1 = self._levels(amplitude)
        t1 = s + inhale
        t2 = t1 + exhale
        return Breath(s, t1, t1, t2, t2 + pause, base0, peak, base1,
                      float(rng.uniform(0.9, 1.15)), float(rng.uniform(0.6, 0.8)))

    def _paced_breath(self, s: float, block: PacedBreathing) -> Breath:
        rng, spec = self.rng, self.spec
        inhale, hold_in, exhale, hold_out = block.pattern
        cycle = inhale + hold_in + exhale + hold_out
        lag = spec.follow_lag_s
        if self._guide is None:
            origin = block.origin if block.origin is not None else s - lag
            n = max(0, math.ceil((s - lag - origin) / cycle - 0.1))
            self._guide = (origin, n)
        origin, n = self._guide
        self._guide = (origin, n + 1)
        g = origin + n * cycle + lag

        def jit() -> float:
            return float(rng.normal(0, spec.follow_jitter_s))

        start = max(s, g)  # a late joiner waits at the bottom for the guide's next inhale
        if start > s:
            self._stretch_last(start)
            s = start
        peak_time = max(g + inhale + jit(), s + 0.5 * inhale)
        exhale_start = peak_time
        if hold_in > 0:
            exhale_start = max(g + inhale + hold_in + jit(), peak_time)
        trough = max(g + inhale + hold_in + exhale + jit(), exhale_start + 0.5 * exhale)
        next_start = max(g + cycle + jit(), trough + 0.05)
        if hold_out == 0:
            trough = min(trough, max(next_start - float(rng.uniform(0.05, 0.3)),
                                     exhale_start + 0.5 * exhale))
        amplitude = min(self._amplitude(60.0 / cycle, 1.15), 0.8)
        base0, peak, base1 = self._levels(amplitude)
        return Breath(s, peak_time, exhale_start, trough, next_start, base0, peak, base1,
                      float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.75, 0.95)))

    def _stretch_last(self, new_next: float) -> None:
        last = self.breaths[-1]
        self.breaths[-1] = Breath(last.inhale_start, last.peak_time, last.exhale_start,
                                  last.trough_time, new_next, last.base0, last.peak, last.base1,
                                  last.gamma_in, last.gamma_out)
        self._arrays = None

    def _hold_breath(self, s: float, block: BreathHold) -> Breath:
        rng = self.rng
        if block.after == "inhale":
            inhale, exhale = float(rng.uniform(2.0, 3.0)), float(rng.uniform(2.5, 4.0))
            amplitude = min(A_REF * self.spec.depth * float(rng.uniform(1.6, 2.0)), 0.8)
            base0, peak, base1 = self._levels(amplitude)
            t1 = s + inhale
            t2 = t1 + block.duration
            return Breath(s, t1, t2, t2 + exhale, t2 + exhale + float(rng.uniform(0.2, 0.6)),
                          base0, peak, base1, 1.0, 0.7)
        period = 60.0 / self._last_rate
        inhale = period / 2.5
        amplitude = self._amplitude(self._last_rate)
        base0, peak, base1 = self._levels(amplitude)
        t1 = s + inhale
        t2 = t1 + period - inhale
        return Breath(s, t1, t1, t2, t2 + block.duration, base0, peak, base1, 1.0, 0.7)

    def restart_from(self, t: float, block: FreeBreathing | PacedBreathing) -> None:
        """Switch to ``block`` at the first breath boundary after ``t`` (the demo's new pattern)."""
        self.extend(t)
        while len(self.breaths) > 1 and self.breaths[-1].inhale_start > t:
            self.breaths.pop()
        self._base = self.breaths[-1].base1
        boundary = self.breaths[-1].next_start
        self.spec = self.spec.model_copy(
            update={"blocks": [block.model_copy(update={"duration": 1e9})]})
        self._starts = np.array([boundary, boundary + 1e9])
        self._k, self._hold_done, self._guide = -1, False, None
        self._arrays = None

    # ---- evaluation -------------------------------------------------------------------
    def _table(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            names = ["inhale_start", "peak_time", "exhale_start", "trough_time", "next_start",
                     "base0", "peak", "base1", "gamma_in", "gamma_out"]
            self._arrays = {n: np.array([getattr(b, n) for b in self.breaths]) for n in names}
        return self._arrays

    def _index(self, t: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        self.extend(float(np.max(t)) if t.size else 0.0)
        tab = self._table()
        k = np.clip(np.searchsorted(tab["inhale_start"], t, side="right") - 1, 0, None)
        return {n: a[k] for n, a in tab.items()}, k

    def volume(self, t: np.ndarray | float) -> np.ndarray:
        """Lung-volume-like signal in 0..1 at each time."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        b, _ = self._index(t)
        rise = b["base0"] + (b["peak"] - b["base0"]) * _ease(
            (t - b["inhale_start"]) / (b["peak_time"] - b["inhale_start"]), b["gamma_in"])
        fall = b["peak"] + (b["base1"] - b["peak"]) * _ease(
            (t - b["exhale_start"]) / (b["trough_time"] - b["exhale_start"]), b["gamma_out"])
        v = np.where(t < b["peak_time"], rise,
                     np.where(t < b["exhale_start"], b["peak"],
                              np.where(t < b["trough_time"], fall, b["base1"])))
        return np.clip(v + self.spec.tremor * self._tremor(t), 0.0, 1.0)

    def phase(self, t: np.ndarray | float) -> np.ndarray:
        """"inhale" | "exhale" | "hold" at each time (object array)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        b, _ = self._index(t)
        top_hold = (b["exhale_start"] - b["peak_time"]) >= HOLD_MIN_S
        bottom_hold = (b["next_start"] - b["trough_time"]) >= HOLD_MIN_S
        out = np.full(t.shape, "exhale", dtype=object)
        out[t < b["exhale_start"]] = "inhale"
        out[(t >= b["peak_time"]) & (t < b["exhale_start"]) & top_hold] = "hold"
        out[(t >= b["trough_time"]) & bottom_hold] = "hold"
        return out

    def rate(self, t: np.ndarray | float) -> np.ndarray:
        """Breaths/min of the cycle each time falls in; NaN for cycles over MAX_CYCLE_S."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        b, _ = self._index(t)
        cycle = b["next_start"] - b["inhale_start"]
        return np.where(cycle <= MAX_CYCLE_S, 60.0 / cycle, np.nan)

    def breaths_between(self, t0: float, t1: float) -> list[Breath]:
        self.extend(t1)
        return [b for b in self.breaths if t0 <= b.inhale_start < t1]

    def holds_between(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """Deliberate holds overlapping [t0, t1), clipped to it."""
        self.extend(t1)
        spans = []
        for b in self.breaths:
            if b.hold_in:
                spans.append((b.peak_time, b.exhale_start))
            if b.hold_out:
                spans.append((b.trough_time, b.next_start))
        return [(max(s, t0), min(e, t1)) for s, e in spans if e > t0 and s < t1]
