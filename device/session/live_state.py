"""What a live session looks like right now: the message the web app and the terminal show.

One frozen :class:`LiveState` per publish, built by the session engine from the pacing state,
the latest breath reading and the metrics so far. It is plain data (``to_dict`` is JSON-ready),
so subscribers in other threads can keep it without locking anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from device.breath.types import BreathEvent, BreathReading
from device.pacing.engine import PacingState, PhaseChange

SessionStatus = Literal["idle", "running", "paused", "completed", "stopped", "interrupted"]
Mode = Literal["measuring", "pacing-only"]

ACTIVE: tuple[SessionStatus, ...] = ("running", "paused")

REASON_NO_CAMERA = "no camera"
REASON_NO_PERSON = "no person in view"
REASON_WAITING = "waiting for the first camera reading"


class BreathSource(Protocol):
    """What the engine needs from the camera side (:class:`device.breath.live.LiveBreath`).

    ``pop_events()`` is optional: without it no breath events (onset timing) are recorded.
    """

    def latest(self) -> BreathReading | None: ...

    def status(self) -> Any: ...  # anything with ``.error: str | None``


class Outputs(Protocol):
    """What the engine needs from :class:`device.pacing.outputs.PacingOutputs`."""

    def tick(
        self, state: PacingState | None, changes: Sequence[PhaseChange], now: float
    ) -> None: ...

    def off(self) -> None: ...


def camera_lost(error: str) -> str:
    return f"camera lost: {error}"


@dataclass(frozen=True)
class LiveState:
    """One moment of the live session (``status`` idle: everything else empty)."""

    status: SessionStatus
    t: float  # clock seconds when this state was made
    session_id: str | None = None
    pattern_id: str | None = None
    target_phase: str | None = None
    next_phase: str | None = None
    progress: float = 0.0  # 0..1 within the target phase
    level: float = 0.0  # guide level 0 (empty) .. 1 (full)
    cycle: int = 0  # 0-based breath number
    elapsed: float = 0.0  # active seconds (pauses do not count)
    remaining: float = 0.0
    measured_phase: str | None = None
    rate: float | None = None  # breaths/min measured
    quality: float | None = None
    displacement: float | None = None  # the cleaned breath signal (px), for the live trace
    mode: Mode = "pacing-only"
    reason: str | None = None  # why pacing-only; None while measuring
    adherence: float | None = None  # share of read time matching the guide so far
    coverage: float = 0.0  # share of time with a valid reading so far

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def breath_mode(
    reading: BreathReading | None, *, has_camera: bool, error: str | None
) -> tuple[Mode, str | None]:
    """Measuring, or pacing-only and why: the camera is missing, lost, or sees nobody."""
    if not has_camera:
        return "pacing-only", REASON_NO_CAMERA
    if error:
        return "pacing-only", camera_lost(error)
    if reading is None:
        return "pacing-only", REASON_WAITING
    if not reading.present:
        return "pacing-only", REASON_NO_PERSON
    return "measuring", None


def read_breath(
    breath: BreathSource | None,
) -> tuple[BreathReading | None, Mode, str | None]:
    """The latest reading (None without a camera) and the mode it puts the session in."""
    if breath is None:
        mode, reason = breath_mode(None, has_camera=False, error=None)
        return None, mode, reason
    error = getattr(breath.status(), "error", None)
    reading = breath.latest()
    mode, reason = breath_mode(reading, has_camera=True, error=error)
    return reading, mode, reason


def pop_events(breath: BreathSource | None) -> list[BreathEvent]:
    pop = getattr(breath, "pop_events", None)
    return list(pop()) if pop is not None else []


def events_on_session_time(
    events: Sequence[BreathEvent], elapsed: float, reading: BreathReading | None
) -> list[BreathEvent]:
    """Move events from camera time onto active session time, by their age at ``reading``.

    ``elapsed`` is the session's active time when ``reading`` (the newest) was taken. Events
    from before the session (negative time) are dropped.
    """
    if not events or reading is None:
        return []
    shift = elapsed - reading.t
    moved = [BreathEvent(e.kind, e.t + shift, e.confirmed_at + shift) for e in events]
    return [e for e in moved if e.t >= 0]
