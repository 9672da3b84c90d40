"""Pacing engine: where in a breathing pattern the guide is, as a pure function of active time.

``state_at(pattern, elapsed)`` is the whole model: no I/O, no clock. ``PacingEngine`` adds a
:class:`device.clock.Clock` and pause/resume, turning wall time into *active* time (paused time
does not count), so the LED, the haptic motor and adherence scoring all read the same state and
tests drive it with ``FakeClock`` instead of sleeping.

Conventions:
- ``cycle`` is 0-based: the first breath is cycle 0.
- Zero-length phases (holds of 0 s) are skipped: they never appear as a state or an event.
- A phase boundary belongs to the phase that starts there: at 4.0 s into box breathing the
  state is ``hold_in`` with progress 0, and the change event has ``at == 4.0``.
- With ``duration_s``, time is clamped to it and ``finished`` is True from then on; no phase
  change is reported at or after the end.
- The guide level is 0 (empty lungs) to 1 (full): a cosine-eased rise on inhale, flat 1 on
  hold_in, a cosine-eased fall on exhale, flat 0 on hold_out. It is continuous everywhere, so an
  LED driven by it never jumps.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from common.errors import BadInput
from device.clock import Clock
from wire.patterns import Pattern, PhaseName

# Times within this of a boundary count as on it: clock sums such as 40 × 0.1 s land a hair
# either side of 4.0, and the phase must not flicker there.
EPS = 1e-9

Status = Literal["idle", "running", "paused", "stopped"]


@dataclass(frozen=True)
class PacingState:
    """The guide at one moment of active time."""

    phase: PhaseName
    next_phase: PhaseName
    progress: float  # 0..1 within the phase
    cycle: int  # 0-based breath number
    phase_elapsed: float  # seconds into this phase
    phase_duration: float
    time_to_next: float  # seconds until next_phase starts
    elapsed: float  # active seconds since start (clamped to the duration, if any)
    level: float  # guide level 0..1 (0 = empty, 1 = full)
    finished: bool


@dataclass(frozen=True)
class PhaseChange:
    """A phase starting at ``at`` active seconds: the moment for a haptic or audio cue."""

    at: float
    phase: PhaseName
    cycle: int
    duration: float


@dataclass(frozen=True)
class _Step:
    phase: PhaseName
    offset: float  # seconds from the start of the cycle
    duration: float


@lru_cache(maxsize=64)
def _steps(pattern: Pattern) -> tuple[_Step, ...]:
    steps, offset = [], 0.0
    for phase, seconds in pattern.phases:
        if seconds > 0:
            steps.append(_Step(phase, offset, seconds))
            offset += seconds
    return tuple(steps)


def guide_level(phase: PhaseName, progress: float) -> float:
    """The guide level for a phase and progress 0..1 (cosine ease on inhale and exhale)."""
    p = min(1.0, max(0.0, progress))
    if phase == "inhale":
        return (1.0 - math.cos(math.pi * p)) / 2.0
    if phase == "exhale":
        return (1.0 + math.cos(math.pi * p)) / 2.0
    return 1.0 if phase == "hold_in" else 0.0


def _check_duration(duration_s: float | None) -> None:
    if duration_s is not None and not (duration_s > 0 and math.isfinite(duration_s)):
        raise BadInput(f"duration_s: must be a positive number of seconds (got {duration_s!r})")


def state_at(pattern: Pattern, elapsed: float, *, duration_s: float | None = None) -> PacingState:
    """The guide state after ``elapsed`` active seconds (pure: same input, same output)."""
    if not elapsed >= 0:
        raise ValueError(f"elapsed must be >= 0 s, got {elapsed!r}")
    _check_duration(duration_s)
    elapsed = float(elapsed)
    finished = duration_s is not None and elapsed >= duration_s - EPS
    if finished:
        elapsed = float(duration_s)  # type: ignore[arg-type]
    steps = _steps(pattern)
    cycle_s = pattern.cycle_s
    cycle_f, t = divmod(elapsed, cycle_s)
    cycle = int(cycle_f)
    if cycle_s - t <= EPS:  # a hair before the next cycle: it has started
        cycle, t = cycle + 1, 0.0
    index = bisect_right([s.offset for s in steps], t + EPS) - 1
    step = steps[index]
    phase_elapsed = min(step.duration, max(0.0, t - step.offset))
    progress = phase_elapsed / step.duration
    return PacingState(
        phase=step.phase,
        next_phase=steps[(index + 1) % len(steps)].phase,
        progress=progress,
        cycle=cycle,
        phase_elapsed=phase_elapsed,
        phase_duration=step.duration,
        time_to_next=step.duration - phase_elapsed,
        elapsed=elapsed,
        level=guide_level(step.phase, progress),
        finished=finished,
    )


def phase_changes(
    pattern: Pattern,
    start: float | None,
    end: float,
    *,
    duration_s: float | None = None,
) -> Iterator[PhaseChange]:
    """Phase starts in the active-time window ``start < at <= end``, in order.

    ``start=None`` means "from before the beginning", so the first inhale at 0 is included.
    Consecutive windows ``(a, b]``, ``(b, c]`` never repeat or miss a change.
    """
    _check_duration(duration_s)
    steps = _steps(pattern)
    cycle_s = pattern.cycle_s
    if duration_s is not None:
        end = min(end, duration_s - 2 * EPS)  # nothing starts at the very end
    lower = -1.0 if start is None else start
    cycle = max(0, math.floor(lower / cycle_s))
    while cycle * cycle_s <= end + EPS:
        for step in steps:
            at = cycle * cycle_s + step.offset
            if at <= lower + EPS:
                continue
            if at > end + EPS:
                return
            yield PhaseChange(at=at, phase=step.phase, cycle=cycle, duration=step.duration)
        cycle += 1


class PacingEngine:
    """A pattern on a clock, with start / pause / resume / stop.

    Active time only runs while ``status == "running"``. Methods are cheap and never sleep; a
    caller (the session loop) polls ``state()`` and ``poll_changes()`` as often as it likes.
    Not thread-safe: drive one engine from one thread.
    """

    def __init__(self, pattern: Pattern, clock: Clock, *, duration_s: float | None = None) -> None:
        _check_duration(duration_s)
        self.pattern = pattern
        self.duration_s = duration_s
        self._clock = clock
        self._status: Status = "idle"
        self._banked = 0.0  # active seconds before the current run
        self._run_started: float | None = None
        self._polled: float | None = None

    @property
    def status(self) -> Status:
        return self._status

    def start(self) -> None:
        if self._status != "idle":
            raise RuntimeError(f"cannot start a pacing engine that is {self._status}")
        self._run_started = self._clock.now()
        self._status = "running"

    def pause(self) -> None:
        """Freeze active time; a no-op unless running."""
        if self._status == "running":
            self._bank()
            self._status = "paused"

    def resume(self) -> None:
        """Continue from where pause() froze; a no-op unless paused."""
        if self._status == "paused":
            self._run_started = self._clock.now()
            self._status = "running"

    def stop(self) -> None:
        """End for good: active time stays where it is."""
        if self._status == "running":
            self._bank()
        self._status = "stopped"

    def _bank(self) -> None:
        assert self._run_started is not None
        self._banked += self._clock.now() - self._run_started
        self._run_started = None

    def elapsed(self) -> float:
        """Active seconds so far (clamped to the duration, if any)."""
        active = self._banked
        if self._status == "running" and self._run_started is not None:
            active += max(0.0, self._clock.now() - self._run_started)
        if self.duration_s is not None:
            active = min(active, self.duration_s)
        return active

    @property
    def finished(self) -> bool:
        return self.duration_s is not None and self.elapsed() >= self.duration_s - EPS

    def state(self) -> PacingState:
        return state_at(self.pattern, self.elapsed(), duration_s=self.duration_s)

    def poll_changes(self) -> list[PhaseChange]:
        """Phase changes since the previous poll (the first poll includes the opening inhale)."""
        if self._status == "idle":
            return []
        now = self.elapsed()
        changes = list(phase_changes(self.pattern, self._polled, now, duration_s=self.duration_s))
        self._polled = now
        return changes
