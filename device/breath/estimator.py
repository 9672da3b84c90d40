"""The causal breath estimator: displacement samples in, phase / rate / quality / breaths out.

One call per frame, nothing looks ahead, all state lives in the instance (so the live device
and ``breathe analyze`` run the same code and a file gives the same answer in any chunking).

Per sample:
1. gaps, absent person and body motion → no reading; afterwards the filters restart on the
   new level (a re-placed ROI is a new baseline) and no breath interval spans the gap;
2. a sudden jump far beyond noise and breath speed is a residual step: subtracted for good;
3. a bank of light 2nd-order Butterworth low-passes (0.2–2.3 Hz) runs on every sample. The
   ≈1.1 Hz one gives the charted signal and the extrema — unless the breath is slow and that
   signal carries ripple (heartbeat, a flick at the end of each exhale) big enough to threaten
   the hysteresis: then the extrema come from the one nearest three times the breath rate, so
   the ripple in a slow breather's pauses makes no breaths. The velocity that drives the live
   phase comes from whichever filter sees the next movement start soonest, given the noise
   and the recent strokes' speed and length (slow breathing affords a quiet, slower filter).
   No high-pass: a strong one would erase a 60 s hold, and extrema-relative logic does not
   care about slow drift anyway;
4. every threshold scales with what was learnt: the white-noise floor (second differences),
   inflated when phase reversals show the jitter is worse than white, and the recent breath
   depth and speed, each per direction;
5. ``StrokeTracker`` turns that into live phase, holds and timed extrema; ``RateTracker``
   into the rate shown (the last four breaths) and the current breath length the timing
   below uses; ``quality`` says how far to trust it (depth over noise, steady periods and
   depths, the signal repeating one period later) and gates the number.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from device.breath.extrema import Extremum, Limits, Sample, StrokeTracker
from device.breath.filters import FilterBank, NoiseFloor, Ripple
from device.breath.quality import Periodicity, breath_quality
from device.breath.rate import RateTracker
from device.breath.types import BreathEvent, BreathReading


@dataclass(frozen=True)
class EstimatorSettings:
    """Tuning knobs. Defaults suit 15–30 fps and displacement in pixels."""

    cutoff_hz: float = 1.1  # smoothing of the charted signal and of the live phase
    # The turning points are found on a low-pass at this many times the breath rate (at most
    # ``cutoff_hz``, at least ``turn_cutoff_min_hz``) when what it takes out of the charted
    # signal is ripple: a slow breather's end-of-exhale pause ripples with the heartbeat as
    # much as a fast one's, and those wiggles must not become breaths. Ripple means its rms
    # is ``turn_ripple_k`` noise stds (a random walk's is noise: it earns no smoother signal
    # that would make its few slow turns look steady) and its peak ``turn_ripple_depth`` of
    # the depth (a third of the hysteresis: smooth breathing keeps the 1.1 Hz turns).
    turn_cutoff_x: float = 3.0
    turn_cutoff_min_hz: float = 0.57
    turn_ripple_k: float = 3.0
    turn_ripple_depth: float = 0.1
    hold_s: float = 1.5  # a still stretch at least this long is a hold ...
    hold_factor: float = 2.5  # ... and this many times as long as a smooth turn takes
    hold_max_s: float = 3.0  # ... or at least this long
    hold_rate_timeout_s: float = 10.0  # no rate once a hold lasts longer
    max_silence_s: float = 75.0  # no phase once nothing has moved for this long
    motion_threshold: float = 1.0  # body_motion at or above this: the person is moving
    motion_settle_s: float = 0.7  # still no reading this long after motion stops
    max_gap_s: float = 0.5  # a time gap longer than this restarts the filters
    resume_gap_s: float = 15.0  # after a shorter disturbance the old rate may return at once
    min_swing: float = 0.05  # smallest swing the extrema logic acts on (displacement units)
    min_depth: float = 0.4  # no rate for breaths shallower than this (px: tracking jitter)
    min_bpm: float = 2.5
    max_bpm: float = 45.0
    creep: float = 0.03  # a hold moves less than this fraction of the depth per second ...
    creep_k_y: float = 4.0  # ... or than this many noise stds of the smoothed signal
    hysteresis: float = 0.3  # extremum confirmation depth, fraction of the recent depth
    deadband: float = 0.08  # velocity dead band, fraction of the recent stroke speed
    noise_k_y: float = 5.0  # hysteresis floor in noise stds of the smoothed signal
    noise_k_v: float = 1.5  # dead-band floor in noise stds of the velocity
    leave_k: float = 4.0  # a hold ends this many noise stds from its resting level ...
    leave_depth: float = 0.04  # ... or this fraction of the depth, whichever is more ...
    leave_max: float = 0.3  # ... but never more than this fraction of the depth
    blip_k_y: float = 3.0  # a movement in a hold must carry this many noise stds ...
    blip_depth: float = 0.15  # ... and this fraction of the depth to end the hold
    min_quality: float = 0.3  # below this quality no rate is shown
    remove_steps: bool = True  # off when the front end cannot make steps (key-chained motion)
    # The summary's breaths, holds and periods: the last this many (the device runs for
    # months; 200 breaths is 10 minutes at 20/min); None keeps them all (a video file).
    history: int | None = 200


class BreathEstimator:
    """Streaming estimator; see the module docstring for the method."""

    def __init__(self, fps: float, settings: EstimatorSettings | None = None) -> None:
        if not (math.isfinite(fps) and 5.0 <= fps <= 240.0):
            raise ValueError(f"BreathEstimator fps={fps!r}: must be a number in 5..240")
        self.fps = float(fps)
        self.cfg = settings or EstimatorSettings()
        self.bank = FilterBank(self.fps)
        self._iy = self.bank.nearest(self.cfg.cutoff_hz)
        self._it = self._iy  # the filter the turning points are found on
        self.ripple = Ripple(self.bank, self._iy)  # ... measured against the candidate
        self.noise = NoiseFloor(self.fps)
        self.strokes = StrokeTracker(self.fps, history=self.cfg.history)
        self.rate = RateTracker(self.cfg.min_bpm, self.cfg.max_bpm, history=self.cfg.history)
        self.repeat = Periodicity(self.fps)
        self._repeat_scores: deque[float] = deque(maxlen=3)
        self._swings: deque[float] = deque(maxlen=6)
        self._speed: dict[int, deque[float]] = {1: deque(maxlen=3), -1: deque(maxlen=3)}
        self._stroke_s: dict[int, deque[float]] = {1: deque(maxlen=3), -1: deque(maxlen=3)}
        self._pick = {1: self._iy, -1: self._iy}  # velocity filter watching for each onset
        self._band = {1: 0.0, -1: 0.0}
        self._hold_s = self.cfg.hold_s
        self._inflate = 1.0  # how much worse than white the velocity noise has proved
        self._tuned_at = -math.inf
        self._last_ext_t: float | None = None
        self._t_prev: float | None = None
        self._x_prev = 0.0
        self._offset = 0.0
        self._restart = True
        self._moving_until = -math.inf
        self.breaths: deque[dict] = deque(maxlen=self.cfg.history)
        self._breath_open = False
        self._n = self._n_present = self._n_still = self._n_rate = 0

    # ---- public API ------------------------------------------------------------------------

    def update(self, t: float, displacement: float | None, valid: bool,
               body_motion: float = 0.0) -> BreathReading:
        """Take one frame's sample; return the reading for time ``t`` (uses nothing later)."""
        self._n += 1
        gap = self._t_prev is not None and t - self._t_prev > self.cfg.max_gap_s
        self._t_prev = t
        ok = valid and displacement is not None and math.isfinite(displacement)
        if not ok or gap:
            self._disrupt()
        if not ok:
            return BreathReading(t, None, None, 0.0, None, present=False, still=False)
        self._n_present += 1
        x = float(displacement)
        if body_motion >= self.cfg.motion_threshold:
            self._moving_until = t + self.cfg.motion_settle_s
        if t < self._moving_until:
            self._disrupt()
            return BreathReading(t, None, None, 0.0, None, present=True, still=False)
        if self._restart:
            self._start_over(t, x)
        still = not self._remove_step(x) if self.cfg.remove_steps else True
        self._n_still += still
        return self._step(t, x + self._offset, still)

    def pop_events(self) -> list[BreathEvent]:
        """Breath events confirmed since the last call, in confirmation order."""
        ev = list(self.strokes.events)
        self.strokes.events.clear()
        return ev

    def holds(self) -> list[dict]:
        """Hold segments (the last ``history``, lag-corrected); one still going ends at the
        last sample."""
        return [{"start": h.start, "end": h.end if h.end is not None else self._t_prev}
                for h in self.strokes.holds]

    def summary(self) -> dict:
        """Session summary with the field names of ``breathe analyze --json`` (over the last
        ``history`` breaths, holds and periods; all of them with ``history=None``)."""
        complete = [b for b in self.breaths if b["end"] is not None]
        return {
            "rate_bpm": self.rate.session_rate(),
            "breath_count": len(complete),
            "breaths": [dict(b) for b in self.breaths],
            "holds": self.holds(),
            "stillness": self._n_still / self._n_present if self._n_present else 0.0,
            "coverage": self._n_rate / self._n if self._n else 0.0,
            "person_found": self._n_present > 0,
        }

    # ---- gaps, motion, steps -----------------------------------------------------------

    def _disrupt(self) -> None:
        if not self._restart:
            self.strokes.reset(self._t_prev)
            self.rate.disrupt(self._t_prev)
            self._breath_open = False
        self._restart = True

    def _start_over(self, t: float, x: float) -> None:
        """Restart the filters on the current level: a re-placed ROI is a new baseline."""
        self._offset = 0.0
        self.bank.reset(x)
        self.noise.reset()
        self.repeat.reset()
        self._repeat_scores.clear()
        self.strokes.reset(t)
        self._it = self._iy
        self.ripple.reset(self._iy)
        self._x_prev = x
        self._restart = False

    def _remove_step(self, x: float) -> bool:
        """Subtract a jump that neither noise nor breathing could make; True if there was one."""
        dx = x - self._x_prev
        self._x_prev = x
        if not self.noise.ready:
            return False
        r = dx - self.bank.v[self._iy] / self.fps
        limit = max(8.5 * self.noise.sigma, 0.35 * self._depth(), 2.0 * self.cfg.min_swing)
        if abs(r) <= limit:
            return False
        self._offset -= r
        return True

    # ---- the estimate ------------------------------------------------------------------

    def _depth(self) -> float:
        """Recent breath depth, fading (to a floor) when breathing stops, e.g. in a hold."""
        if not self._swings:
            return 0.0
        # The two largest of the last six strokes: a breath is two strokes (in and out), and
        # the small wiggles of a long pause (heartbeat, sway) must not talk the depth down,
        # or the hysteresis shrinks with it and every wiggle becomes a breath.
        top = sorted(self._swings)[-2:]
        depth = max(statistics.median(self._swings), 0.6 * sum(top) / len(top))
        if self._last_ext_t is None or self._t_prev is None:
            return depth
        idle = self._t_prev - self._last_ext_t - 2.0 * (self.rate.period or 8.0)
        if idle > 0:
            depth *= max(0.35, 0.5 ** (idle / 15.0))
        return depth

    def _tune(self, t: float) -> None:
        """Pick, per direction, the velocity filter that sees a movement start soonest.

        Seeing an onset takes the filter's lag plus the time the velocity needs to clear the
        dead band (noise-driven, so wider for a higher cutoff) at the onset's acceleration,
        which a recent stroke of speed V and duration D puts at about πV/D.
        """
        cfg, bank = self.cfg, self.bank
        sigma = self.noise.sigma * self._inflate
        expect = 0.0
        for d in (1, -1):
            speed = statistics.median(self._speed[d]) if self._speed[d] else 0.0
            dur = statistics.median(self._stroke_s[d]) if self._stroke_s[d] else 0.0
            if speed <= 0.0 or dur <= 0.0:
                k = self._iy
                self._pick[d] = k
                self._band[d] = cfg.noise_k_v * sigma * bank.gains_v[k]
                expect += 0.5
                continue
            accel = math.pi * speed / dur
            floor = cfg.deadband * speed
            best = None
            for k, fc in enumerate(bank.cutoffs):
                if fc < 0.75 / dur:
                    continue
                band = max(cfg.noise_k_v * sigma * bank.gains_v[k], floor)
                cost = bank.delays[k] + band / accel
                if best is None or cost < best[0]:
                    best = (cost, k, band)
            _, k, band = best or (0.0, self._iy, floor)
            self._pick[d], self._band[d] = k, band
            expect += band / accel
        self._hold_s = min(max(cfg.hold_factor * expect, cfg.hold_s), cfg.hold_max_s)
        self._tuned_at = t

    def _step(self, t: float, x: float, still: bool) -> BreathReading:
        cfg, bank = self.cfg, self.bank
        sigma = self.noise.update(x)
        sig_v = sigma * self._inflate
        bank.step(x)
        y = bank.y[self._iy]
        self.repeat.push(y)
        self.ripple.step()
        if not self.noise.ready:
            return BreathReading(t, None, None, 0.0, y, present=True, still=still)
        if t - self._tuned_at > 0.5:
            self._tune(t)
        st = self.strokes
        if (st.hold_since is not None and t - st.hold_since > cfg.hold_rate_timeout_s) or (
                self._still_without_turn(t)):
            self.repeat.reset()  # a long hold is no evidence against breathing after it
            self._repeat_scores.clear()
        watch = -1 if st.phase == "inhale" else 1 if st.phase == "exhale" else -st.last_dir or 1
        k = self._pick[watch]
        sig_y = sigma * bank.filters[self._iy].gain_y
        it = self._it
        sample = Sample(t, y, bank.delays[self._iy], bank.v[k], bank.delays[k], bank.y[it],
                        bank.delays[it])
        ext = st.step(sample, self._limits(sig_y, sig_v, bank.gains_v[k]))
        if ext is not None:
            self._on_extremum(ext)
            self._tune(t)
            score = self.repeat.score(self.rate.period) if self.rate.period else None
            if score is not None:
                self._repeat_scores.append(score)
        quality = self._quality(sig_y, statistics.median(self._swings) if self._swings else 0.0)
        rate = self._rate(t, quality)
        self._n_rate += rate is not None
        phase = st.phase if self._active(t) else None
        return BreathReading(t, phase, rate, quality, y, present=True, still=still)

    def _still_without_turn(self, t: float) -> bool:
        """No turn for ``hold_rate_timeout_s`` and the signal stayed near one level all that
        time: a hold the tracker saw in pieces (it crept), not a wander (which is what the
        repeat evidence is there to catch)."""
        st, wait = self.strokes, self.cfg.hold_rate_timeout_s
        if st.last_confirm is None or t - st.last_confirm <= wait or not self._swings:
            return False
        ys = [y for tc, y in st.recent_trail(t - wait)]
        return bool(ys) and max(ys) - min(ys) <= 0.5 * statistics.median(self._swings)

    def _limits(self, sig_y: float, sig_v: float, gain_v: float) -> Limits:
        """The stroke tracker's thresholds now, from the noise of the smoothed signal
        (``sig_y``), the velocity noise (``sig_v``) through the watching filter's gain, and
        the recent breaths."""
        cfg = self.cfg
        depth = self._depth()
        noise_v = cfg.noise_k_v * sig_v * gain_v
        leave = max(cfg.leave_k * sig_y * self._inflate, cfg.leave_depth * depth, cfg.min_swing)
        if depth:
            leave = min(leave, cfg.leave_max * depth)  # never ask for most of a breath
        return Limits(
            up=max(self._band[1], noise_v),
            down=max(self._band[-1], noise_v),
            confirm=max(cfg.noise_k_y * sig_y, cfg.hysteresis * depth, cfg.min_swing),
            blip=max(cfg.blip_k_y * sig_y, cfg.blip_depth * depth, cfg.min_swing),
            hold_s=self._hold_s,
            creep=max(cfg.creep_k_y * sig_y, cfg.creep * depth),
            leave=leave,
            depth=depth,
        )

    def _on_extremum(self, ext: Extremum) -> None:
        self._last_ext_t = ext.confirmed_at
        # One phase reversal per turn is right; more were noise the white-noise floor missed
        # (correlated jitter), so widen the velocity dead band, and relax it while all is well.
        extra = max(0, ext.flips - 1)
        if extra:
            self._inflate = min(4.0, self._inflate * 1.25 ** extra)
        else:
            self._inflate = max(1.0, self._inflate * 0.93)
        d = 1 if ext.kind == "peak" else -1  # the stroke that led here went this way
        if ext.swing is not None:
            self._swings.append(ext.swing)
            self._speed[d].append(ext.speed)
            if ext.stroke_s:
                self._stroke_s[d].append(ext.stroke_s)
        self.rate.add(ext.kind, ext.period_t)
        self.rate.resume(ext.period_t, self.cfg.resume_gap_s)
        self._it = self._turn_filter()
        if ext.kind == "trough":
            if self._breath_open and self.breaths:
                self.breaths[-1]["end"] = ext.t
            self.breaths.append({"inhale_start": ext.t, "exhale_start": None, "end": None})
            self._breath_open = True
        elif self._breath_open and self.breaths[-1]["exhale_start"] is None:
            self.breaths[-1]["exhale_start"] = ext.t

    def _turn_filter(self) -> int:
        """The filter to find turning points on: the charted one, or one smoothed in proportion
        to the breath rate once what it removes has proved to be ripple (see the settings)."""
        cfg, period, ripple = self.cfg, self.rate.period, self.ripple
        if not period:
            return self._iy
        cutoff = min(cfg.cutoff_hz, max(cfg.turn_cutoff_min_hz, cfg.turn_cutoff_x / period))
        cand = self.bank.nearest(cutoff)
        if ripple.slow == self._iy:
            ripple.reset(cand)  # nothing measured against it yet
            return self._iy
        ripple.slow = cand
        sig_y = self.noise.sigma * self.bank.filters[self._iy].gain_y
        if (math.sqrt(ripple.ms) < cfg.turn_ripple_k * sig_y
                or ripple.peak < cfg.turn_ripple_depth * self._depth()):
            return self._iy
        return cand

    def _active(self, t: float) -> bool:
        st = self.strokes
        return st.direction != 0 and st.last_confirm is not None and (
            t - st.last_confirm < self.cfg.max_silence_s)

    def _quality(self, sig_y: float, depth: float) -> float:
        if depth < self.cfg.min_depth:
            return 0.0
        periods = [p for _, p in self.rate.periods]
        rs = self._repeat_scores
        return breath_quality(depth, sig_y, periods, self._swings, self.rate.fresh > 0,
                              statistics.median(rs) if rs else None)

    def _rate(self, t: float, quality: float) -> float | None:
        cfg, r, st = self.cfg, self.rate, self.strokes
        if r.fresh == 0 or r.period is None or quality < cfg.min_quality:
            return None
        since = st.hold_since
        if since is not None and t - since > cfg.hold_rate_timeout_s:
            return None
        stale = max(1.5 * r.period + 2.0, 12.0)
        if st.last_confirm is None or t - st.last_confirm > stale:
            return None
        shown = r.rate_bpm
        return None if shown is None else round(shown, 2)
