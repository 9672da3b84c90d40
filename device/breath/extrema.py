"""Segment a smoothed breathing signal into strokes, turning points and holds, causally.

Two views of the same signal, each doing what it is good at:

* the live phase follows the velocity and is sticky: it turns to exhale only when the
  velocity leaves the dead band downwards (and to inhale upwards), so a slow turn never
  flickers; a still stretch longer than ``hold_s`` becomes a hold, dated from when it began;
* breath boundaries come from extrema with hysteresis: a peak counts only once the smoothed
  signal has fallen ``Limits.confirm`` (a fraction of the recent depth) below it, so noise
  and drift in a long hold cannot make breaths. A confirmed extremum is dated when the
  signal left it for good (the last moment within ``DEPART`` of a breath of it): the end of a
  flat hold (box breathing starts its inhale when the hold ends), the start of the rise out of
  a pause that creeps. On a slow smooth turn (no pause: the signal stayed in that band evenly
  about the extremum, and no longer than three times what its rise then took to reach a
  quarter of a breath) the departure lags the turn's vertex by 7 % of a breath, 0.8 s at
  5.5/min; from ``SMOOTH_LAG_MIN`` on, the date is moved back towards the vertex by half that
  lag (at most ``SMOOTH_BACK_MAX``), so a slow paced breath is dated between the vertex (where
  the test signals date it) and the departure (where the recordings' truth does).

Every time this module reports is corrected for the smoother's lag (``ydelay`` for the signal,
``vdelay`` for the velocity, passed in with each ``Sample`` because the velocity filter
adapts). The thresholds come with each sample too (``Limits``): the estimator scales them to
the noise and the recent breaths. The tracker never looks ahead: all state is in the instance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from device.breath.types import BreathEvent

INHALE, EXHALE, HOLD = "inhale", "exhale", "hold"


@dataclass
class Extremum:
    """A confirmed turning point: ``kind`` "peak" (exhale starts) or "trough" (inhale starts)."""

    kind: str
    t: float  # when the movement turned (lag-corrected): the breath's date
    value: float
    swing: float | None  # depth from the previous opposite extremum (None: unknown)
    speed: float  # fastest |velocity| in the stroke that led here
    stroke_s: float | None  # how long that stroke moved (holds excluded), None: unknown
    held: float  # seconds of hold sitting on this turn (0: a smooth turn)
    confirmed_at: float
    # Where the breath period is measured from: the end of a hold that sat on the turn (a
    # crisper mark, breath after breath, than leaving a pause that ripples), else ``t``.
    period_t: float
    flips: int = 1  # live phase reversals since the previous extremum (1 expected)


@dataclass(frozen=True, slots=True)
class Sample:
    """One smoothed sample, as the tracker sees it."""

    t: float  # frame time (s)
    y: float  # smoothed displacement
    ydelay: float  # lag of ``y`` (s)
    v: float  # velocity, from the filter watching for the next movement's onset
    vdelay: float  # lag of ``v`` (s)
    # The signal the turning points are found on: smoothed in proportion to the breathing
    # (a slow breather's rippling pause is a pause, not breaths); ``y`` by default.
    turn: float | None = None
    turn_delay: float = 0.0  # lag of ``turn`` (s)


@dataclass(frozen=True, slots=True)
class Limits:
    """This sample's thresholds, in displacement units unless said. The estimator scales them
    to the noise floor and to the recent breaths."""

    up: float  # velocity above this: moving up (inhaling)
    down: float  # velocity below minus this: moving down (exhaling)
    confirm: float  # an extremum counts once the signal has come back this far (hysteresis)
    blip: float  # a movement inside a hold must carry this far before it ends the hold
    hold_s: float  # a still stretch at least this long (s) is a hold ...
    creep: float  # ... if it moved no further than this within ``creep_s``: a slow exhale
    # tail creeps further and is still an exhale
    leave: float  # the signal this far from a hold's resting level ends the hold (seen
    # sooner than by the velocity, because the level of a hold is known precisely)
    depth: float = 0.0  # the recent breath depth (0: not known yet)


@dataclass
class Hold:
    start: float
    end: float | None = None


class StrokeTracker:
    """Live phase, holds and confirmed extrema from smoothed samples."""

    def __init__(self, fps: float, edge_s: float = 0.5, creep_s: float = 1.0,
                 history: int | None = 200) -> None:
        self.edge_s = edge_s
        self.fps = fps
        self._level_alpha = 1.0 / (2.0 * fps)  # hold level: 2 s running mean
        self._recent: deque[float] = deque(maxlen=max(2, round(creep_s * fps) + 1))
        # taken by the estimator every sample; capped for whoever never takes them
        self.events: deque[BreathEvent] = deque(maxlen=history)
        self.holds: deque[Hold] = deque(maxlen=history)  # the last ``history`` holds
        self.extrema: deque[Extremum] = deque(maxlen=8)
        self._trail: deque[tuple[float, float]] = deque(maxlen=max(8, round(30.0 * fps)))
        self._last_t: float | None = None
        self._h = self._depth = self._ydelay = 0.0  # this sample's confirm, depth and lag
        self.reset(None)

    def reset(self, t: float | None) -> None:
        """Start over after a gap or a disturbance: no direction, no phase, hold closed."""
        if self.holds and self.holds[-1].end is None and self._last_t is not None:
            self.holds[-1].end = self._last_t
            self.events.append(BreathEvent("hold_end", self._last_t, self._last_t))
        self.t0 = t
        self.direction = 0  # +1 rising (tracking a peak), -1 falling, 0 not yet known
        self.ext_val = 0.0
        self.ext_t = 0.0
        self.lo = self.hi = None
        self.lo_t = self.hi_t = 0.0
        self.prev_ext: Extremum | None = None
        self._prev_turn = 0.0  # its departure (stroke lengths run between departures)
        self.stroke_speed = 0.0
        self.phase: str | None = None
        self.last_dir = 0  # direction of the last movement: +1 up, -1 down
        self.flips = 0  # changes of direction since the last confirmed extremum
        self.move = 0  # velocity state: +1, -1, 0 (inside the band)
        self.stroke_from: float | None = None  # level where the live stroke began
        self.stroke_ext: float | None = None  # furthest level it has reached so far
        self.move_t = 0.0
        self.move_y = 0.0
        self.dwell_t: float | None = None  # start of the current still stretch (blips merged)
        self.dwells: deque[tuple[float, float, bool]] = deque(maxlen=4)  # (start, end, hold?)
        self.in_hold = False
        self.level = 0.0  # the signal's resting level during a hold
        self.last_confirm = t
        self._recent.clear()

    def recent_trail(self, since: float) -> list[tuple[float, float]]:
        """(lag-corrected time, smoothed value) of the samples from ``since`` on (≤ 30 s)."""
        out = []
        for tc, y in reversed(self._trail):
            if tc < since:
                break
            out.append((tc, y))
        return out

    @property
    def hold_since(self) -> float | None:
        """Lag-corrected start of the hold in progress, or None."""
        return self.holds[-1].start if self.in_hold and self.holds else None

    def step(self, s: Sample, lim: Limits) -> Extremum | None:
        """Advance one sample; return an extremum if one was confirmed now."""
        t, y = s.t, s.y
        if self.t0 is None:
            self.reset(t)
            self.move_y = y
        self._last_t = t
        self._h = lim.confirm
        self._depth = lim.depth
        self._recent.append(y)
        self._ydelay = s.ydelay
        yt, tdelay = (y, s.ydelay) if s.turn is None else (s.turn, s.turn_delay)
        self._trail.append((t - tdelay, yt))
        self._follow_stroke(y)
        if not (self.in_hold and self._leave_hold(t, y, s.ydelay, lim.leave)):
            self._phase_step(s, lim)
        return self._extremum_step(t, yt, tdelay, s.v)

    # ---- live phase and holds ----------------------------------------------------------

    def _phase_step(self, s: Sample, lim: Limits) -> None:
        t, y, v = s.t, s.y, s.v
        state = 1 if v > lim.up else -1 if v < -lim.down else 0
        tc = t - s.vdelay
        if state != self.move:
            self.move, self.move_t, self.move_y = state, tc, y
        if state == 0:
            if self.dwell_t is None:
                self.dwell_t = tc
            if (not self.in_hold and tc - self.dwell_t >= lim.hold_s
                    and abs(y - self._recent[0]) <= lim.creep):
                self.in_hold = True
                self.level = sum(self._recent) / len(self._recent)
                self.holds.append(Hold(self.dwell_t))
                self.events.append(BreathEvent("hold_start", self.dwell_t, t))
            if self.in_hold:
                self.phase = HOLD
            return
        # Moving: say so at once (low lag) — except in a hold, which ends only once the
        # movement has carried ``blip`` far (or the signal left its level, see _leave_hold),
        # so a noise blip inside a hold neither splits, ends nor flickers it.
        carried = abs(y - self.move_y) >= lim.blip
        if self.in_hold and not carried:
            return
        if state != self.last_dir and self.phase in (INHALE, EXHALE):
            if not self._reversal_ok(y, v):
                return  # a wiggle (heartbeat, sway) in mid-stroke, not a turn
            self.flips += 1  # a reversal straight from moving
        new_phase = INHALE if state > 0 else EXHALE
        if new_phase != self.phase:
            self._new_stroke(y)
        self.phase = new_phase
        self.last_dir = state
        if carried and self.dwell_t is not None:
            self.dwells.append((self.dwell_t, self.move_t, self.in_hold))
            if self.in_hold:
                self.holds[-1].end = self.move_t
                self.in_hold = False
                self.events.append(BreathEvent("hold_end", self.move_t, t))
            self.dwell_t = None

    # A live stroke may reverse at once where a turn is plausible (it has covered most of a
    # breath), once the reversal itself has carried REVERSAL_CARRY of a breath, or when the
    # signal is back where the stroke began (it was a false start); a bump in the middle of a
    # stroke does none of these, so the phase shown does not flicker.
    REVERSAL_NEAR_END = 0.6
    REVERSAL_CARRY = 0.12

    def _follow_stroke(self, y: float) -> None:
        if self.stroke_ext is None:
            return
        if self.phase == INHALE:
            self.stroke_ext = max(self.stroke_ext, y)
        elif self.phase == EXHALE:
            self.stroke_ext = min(self.stroke_ext, y)

    def _new_stroke(self, y: float) -> None:
        self.stroke_from = self.stroke_ext if self.stroke_ext is not None else y
        self.stroke_ext = y

    REVERSAL_MIN = 0.05  # a reversal must have left the stroke's extreme by this much
    REVERSAL_SPEED = 0.2  # near a turn, the new stroke must move this fraction of its usual speed

    def _usual_speed(self, going_up: bool) -> float:
        """Median top speed of recent strokes in that direction (inhales end in peaks)."""
        kind = "peak" if going_up else "trough"
        speeds = sorted(e.speed for e in list(self.extrema)[-6:] if e.kind == kind)
        return speeds[len(speeds) // 2] if speeds else 0.0

    def _reversal_ok(self, y: float, v: float = 0.0) -> bool:
        depth = self._depth
        if depth <= 0 or self.stroke_from is None or self.stroke_ext is None:
            return True
        going_up = self.phase == EXHALE  # reversing an exhale
        if abs(y - self.stroke_ext) < self.REVERSAL_MIN * depth:
            return False  # still at the turn: a flat top or a rippling pause is no new stroke
        if abs(self.stroke_ext - self.stroke_from) >= self.REVERSAL_NEAR_END * depth:
            # a turn is plausible here; a heartbeat wiggle is slower than a new stroke
            return abs(v) >= self.REVERSAL_SPEED * self._usual_speed(going_up)
        if abs(y - self.stroke_ext) >= self.REVERSAL_CARRY * depth:
            return True
        return y >= self.stroke_from if going_up else y <= self.stroke_from

    def _end_hold_now(self, t: float) -> None:
        """A turn was confirmed inside a "hold" the level test never saw end: the signal slid
        away slowly, so it was a slow turn, not a hold. Close it and forget it as a hold."""
        if self.in_hold:
            self._leave_hold(t, self._recent[-1], self._ydelay, 0.0)
            start, end, _ = self.dwells.pop()
            self.dwells.append((start, end, False))
            self.holds.pop()

    def _leave_hold(self, t: float, y: float, ydelay: float, leave: float) -> bool:
        """End the hold if the signal has left its resting level; True if it did."""
        dev = y - self.level
        if abs(dev) < leave or dev == 0.0:
            self.level += self._level_alpha * dev
            return False
        # the departure began when the signal was last near the level
        back = next((k for k, old in enumerate(reversed(self._recent))
                     if abs(old - self.level) <= leave / 3.0), len(self._recent) - 1)
        end = t - ydelay - back / self.fps
        state = 1 if dev > 0 else -1
        self._new_stroke(self.level)
        self.phase = INHALE if state > 0 else EXHALE
        self.last_dir = state
        self.move, self.move_t, self.move_y = state, end, y
        self.dwells.append((self.holds[-1].start, end, True))
        self.holds[-1].end = end
        self.in_hold = False
        self.dwell_t = None
        self.events.append(BreathEvent("hold_end", end, t))
        return True

    # ---- extrema -----------------------------------------------------------------------

    def _extremum_step(self, t: float, y: float, ydelay: float, v: float) -> Extremum | None:
        tc = t - ydelay
        if self.direction == 0:
            return self._first_stroke(t, tc, y)
        if self.direction > 0:
            self.stroke_speed = max(self.stroke_speed, v)
            if y > self.ext_val:
                self.ext_val, self.ext_t = y, tc
            elif self.ext_val - y >= self._h:
                self._end_hold_now(t)
                return self._confirm("peak", t, tc, y)
        else:
            self.stroke_speed = max(self.stroke_speed, -v)
            if y < self.ext_val:
                self.ext_val, self.ext_t = y, tc
            elif y - self.ext_val >= self._h:
                self._end_hold_now(t)
                return self._confirm("trough", t, tc, y)
        return None

    def _first_stroke(self, t: float, tc: float, y: float) -> Extremum | None:
        if self.lo is None or y < self.lo:
            self.lo, self.lo_t = y, tc
        if self.hi is None or y > self.hi:
            self.hi, self.hi_t = y, tc
        start = self.t0 if self.t0 is not None else t
        if y - self.lo >= self._h:
            self.ext_val, self.ext_t = self.lo, self.lo_t
            return self._confirm("trough", t, tc, y, boundary=self.lo_t - start < self.edge_s)
        if self.hi - y >= self._h:
            self.ext_val, self.ext_t = self.hi, self.hi_t
            return self._confirm("peak", t, tc, y, boundary=self.hi_t - start < self.edge_s)
        return None

    DEPART = 0.05  # a stroke starts where the signal leaves its extremum by this much of a breath
    SMOOTH_LAG_MIN = 0.65  # a smooth turn's departure this far (s) after its vertex ...
    SMOOTH_BACK_MAX = 0.4  # ... is dated half that earlier, at most this much (s)
    SMOOTH_RISE = 0.25  # smooth: the band dwell is at most 3x the rise from DEPART to this ...
    SMOOTH_EVEN = 0.3  # ... and the vertex sits mid-dwell, give or take this much of the dwell

    def _departure(self, kind: str) -> float:
        """When the signal left the extremum just confirmed: the last moment it was within
        ``DEPART`` of a breath's depth of it. A breath that rests at the bottom (the pause
        after an exhale, ripple and all) starts its inhale when it leaves, not at the
        pause's lowest wiggle, which can be anywhere in it."""
        if self._depth <= 0:
            return self.ext_t
        near = self.DEPART * self._depth
        for tc, y in reversed(self._trail):
            if tc <= self.ext_t:
                break
            if (y <= self.ext_val + near) if kind == "trough" else (y >= self.ext_val - near):
                return tc
        return self.ext_t

    def _smooth_date(self, kind: str, dep: float) -> float:
        """``dep``, moved back towards the vertex on a slow smooth turn (module docstring)."""
        lag = dep - self.ext_t
        if lag < self.SMOOTH_LAG_MIN or self._depth <= 0:
            return dep
        near, far = self.DEPART * self._depth, self.SMOOTH_RISE * self._depth
        sign = 1.0 if kind == "trough" else -1.0
        t_far = t_in = None
        for tc, y in reversed(self._trail):
            off = sign * (y - self.ext_val)
            if tc > dep:
                t_far = tc if off >= far else t_far  # the earliest past the rise mark
            elif tc < self.ext_t and off > near:
                t_in = tc  # where the signal came into the band
                break
        if t_far is None or t_in is None:
            return dep
        dwell = dep - t_in
        if dwell > 3.0 * (t_far - dep) or abs((self.ext_t - t_in) - lag) > self.SMOOTH_EVEN * dwell:
            return dep  # a pause, or a turn lopsided by a dip or a creep
        return dep - min(self.SMOOTH_BACK_MAX, 0.5 * lag)

    def _confirm(self, kind: str, t: float, tc: float, y: float,
                 boundary: bool = False) -> Extremum | None:
        """The stroke turned at ``ext_t``; date the turn, flip direction, maybe report it."""
        # Dated where the signal left the extremum for good; on a flat hold that is the hold's
        # end, and in a pause that creeps (a real end-of-exhale pause often does) it is where
        # the creep began, however long the tracker went on calling the pause a hold.
        turn = mark = self._departure(kind)
        date = self._smooth_date(kind, turn)
        held = 0.0
        for start, end, was_hold in self.dwells:
            if was_hold and start - 0.5 <= self.ext_t <= end + 0.5:
                held, mark = max(0.0, min(end, turn) - start), max(end, turn)
        prev = self.prev_ext
        swing = None if prev is None else abs(self.ext_val - prev.value)
        stroke_s = None if prev is None else max(0.0, turn - held - self._prev_turn)
        self._prev_turn = turn
        ext = Extremum(kind, date, self.ext_val, swing, self.stroke_speed, stroke_s, held, t,
                       mark, self.flips)
        self.flips = 0
        self.prev_ext = ext
        self.direction = 1 if kind == "trough" else -1
        self.ext_val, self.ext_t = y, tc
        self.stroke_speed = 0.0
        self.last_confirm = t
        if boundary:
            ext.swing = None
            return None
        self.extrema.append(ext)
        self.events.append(BreathEvent("inhale_start" if kind == "trough" else "exhale_start",
                                       date, t))
        return ext
