"""A session's summary as it is stored on the device and shared with the relay.

:class:`SessionMetrics` is computed on the device (``device/session/metrics.py`` says how each
number is defined) and travels in the ``sessions`` message; :class:`TimelinePoint` is one second
of its chart. Plain data, no arithmetic: the relay reads these without the device's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from wire.patterns import PhaseName


@dataclass(frozen=True)
class TimelinePoint:
    """One second of a session: what the guide asked for and what the camera measured."""

    second: int
    target_phase: PhaseName
    measured_phase: str | None = None  # device.breath.types.Phase or None ("no reading")
    rate: float | None = None  # breaths per minute
    quality: float | None = None  # 0..1
    displacement: float | None = None



class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateStats(_Model):
    """Measured breathing rate in breaths/min; None where there were no rate readings."""

    median: float | None = None
    min: float | None = None
    max: float | None = None
    trend_bpm_per_min: float | None = None  # least-squares slope; None under 30 s of readings
    settled_bpm: float | None = None
    settled_after_s: int | None = None


class OnsetStats(_Model):
    """Mean timing error (s, positive = late) of measured inhale and exhale starts."""

    inhale_mean_s: float | None = None
    inhale_mean_abs_s: float | None = None
    inhale_count: int = 0
    exhale_mean_s: float | None = None
    exhale_mean_abs_s: float | None = None
    exhale_count: int = 0


class HoldStats(_Model):
    count: int = 0
    longest_s: float | None = None


class SessionMetrics(_Model):
    """Everything stored with a session (``to_dict``) plus the per-second chart timeline."""

    duration_s: float = 0.0
    cycles_completed: int = 0
    rate: RateStats = RateStats()
    adherence: float | None = None
    adherence_by_phase: dict[PhaseName, float | None] = {}
    onset: OnsetStats = OnsetStats()
    measured_inhale_s: float | None = None  # median length of measured inhales (≥ 3 seen)
    measured_exhale_s: float | None = None
    holds: HoldStats = HoldStats()
    stillness: float | None = None  # share of present time that was still
    presence: float = 0.0  # share of time someone was in view
    coverage: float = 0.0  # share of time with a valid reading
    resonance_s: float = 0.0  # time with a measured rate within RESONANCE_BPM
    timeline: tuple[TimelinePoint, ...] = ()

    def to_dict(self, *, timeline: bool = False) -> dict[str, Any]:
        """JSON-ready; the timeline has its own table, so it is left out unless asked for."""
        return self.model_dump(mode="json", exclude=None if timeline else {"timeline"})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionMetrics:
        """Read back what ``to_dict`` stored (a session saved before any metrics: ``{}``)."""
        return cls.model_validate(data)
