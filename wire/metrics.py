"""A session's summary as it is stored on the device and shared with the relay.

:class:`SessionMetrics` is computed on the device (``device/session/metrics.py`` says how each
number is defined) and travels in the ``sessions`` message; :class:`TimelinePoint` is one second
of its chart. Plain data, no arithmetic: the relay reads these without the device's code.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, is_dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from wire.checks import DAY_S
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


# --- the same, on the wire: each number within its physical range ---------------------------
# The device's own models above take any number, so a session with an odd one is still saved
# and shown. What a device sends is validated as the models below: the same fields, each
# number constrained to its range, checked by pydantic while it parses (in Rust, and in the
# JSON Schema as minimum / maximum). The relay counts a value outside as ``implausible``.

FRACTION = (0.0, 1.0)
COUNT = (0, 100_000)  # a day of 1-second breaths is 86,400
SECONDS = (0.0, DAY_S)
SIGNED_SECONDS = (-DAY_S, DAY_S)
BPM = (0.0, 120.0)
# the physical range of each number, by field name (SessionMetrics and its parts)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "adherence": FRACTION, "adherence_by_phase": FRACTION, "stillness": FRACTION,
    "presence": FRACTION, "coverage": FRACTION, "quality": FRACTION,
    "cycles_completed": COUNT, "inhale_count": COUNT, "exhale_count": COUNT, "count": COUNT,
    "duration_s": SECONDS, "resonance_s": SECONDS, "longest_s": SECONDS,
    "measured_inhale_s": SECONDS, "measured_exhale_s": SECONDS, "inhale_mean_abs_s": SECONDS,
    "exhale_mean_abs_s": SECONDS, "settled_after_s": SECONDS, "second": SECONDS,
    "inhale_mean_s": SIGNED_SECONDS, "exhale_mean_s": SIGNED_SECONDS,
    "median": BPM, "min": BPM, "max": BPM, "settled_bpm": BPM, "rate": BPM,
    "trend_bpm_per_min": (-BPM[1], BPM[1]), "displacement": (-1e6, 1e6),
}


def _ranged(annotation: Any, name: str) -> Any:
    """``annotation`` of field ``name`` with the field's range as a constraint, inside
    ``X | None``, dict values and tuple items; a model or dataclass becomes its wire twin."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict:
        return dict[args[0], _ranged(args[1], name)]  # type: ignore[index]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple[_ranged(args[0], name), ...]  # type: ignore[index]
    if origin in (Union, UnionType):
        return Union[tuple(_ranged(arg, name) for arg in args)]  # noqa: UP007
    if isinstance(annotation, type) and (issubclass(annotation, BaseModel)
                                         or is_dataclass(annotation)):
        return _wire_twin(annotation)
    if name in METRIC_RANGES and annotation in (int, float):
        low, high = METRIC_RANGES[name]
        return Annotated[annotation, Field(ge=low, le=high)]
    return annotation


def _wire_twin(kind: type) -> type:
    """The same model, named the same, with ranged fields (a dataclass's twin is a model)."""
    if is_dataclass(kind):
        hints = get_type_hints(kind)
        return create_model(kind.__name__, __base__=_FromAttributes, __module__=__name__, **{
            f.name: (_ranged(hints[f.name], f.name), ... if f.default is MISSING else f.default)
            for f in fields(kind)})
    return create_model(kind.__name__, __base__=(kind, _FromAttributes), __module__=__name__,
                        **{name: (_ranged(info.annotation, name), info)
                           for name, info in kind.model_fields.items()})


class _FromAttributes(BaseModel):
    """A wire twin also takes the device's model itself (checking its numbers)."""

    model_config = ConfigDict(from_attributes=True, frozen=True, extra="forbid")


WireMetrics = _wire_twin(SessionMetrics)
