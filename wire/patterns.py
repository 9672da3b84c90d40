"""Breathing patterns: the model, the seven built-ins and the rules for custom patterns.

A pattern is four phases in seconds (inhale, hold_in, exhale, hold_out) plus the words a person
reads when choosing one. The same model validates built-ins and custom patterns, so a built-in
can never break a rule a custom pattern has to follow. Invalid input raises
:class:`common.errors.BadInput` with one line per problem, each starting with the field:
``inhale: must be at least 1 s (got 0.5; allowed 1–30 s in steps of 0.25 s)``.

These are breathing exercises, not treatment: descriptions say what a pattern does and what it
is commonly used for, without medical claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from common.errors import BadInput

PhaseName = Literal["inhale", "hold_in", "exhale", "hold_out"]
PHASE_NAMES: tuple[PhaseName, ...] = ("inhale", "hold_in", "exhale", "hold_out")

RESOLUTION_S = 0.25
BREATH_MIN_S, BREATH_MAX_S = 1.0, 30.0
HOLD_MIN_S, HOLD_MAX_S = 0.0, 60.0
MAX_CYCLE_S = 120.0
NAME_MAX = 50
DESCRIPTION_MAX = 500
BENEFITS_MAX_ITEMS = 8
BENEFIT_MAX = 120

# What each field accepts, quoted in every error message about it.
ALLOWED: dict[str, str] = {
    "name": f"1–{NAME_MAX} printable characters, unique per profile",
    "description": f"up to {DESCRIPTION_MAX} characters, no control characters except newline",
    "benefits": f"a list of up to {BENEFITS_MAX_ITEMS} texts of 1–{BENEFIT_MAX} printable "
    "characters",
    "inhale": f"{BREATH_MIN_S:g}–{BREATH_MAX_S:g} s in steps of {RESOLUTION_S} s",
    "exhale": f"{BREATH_MIN_S:g}–{BREATH_MAX_S:g} s in steps of {RESOLUTION_S} s",
    "hold_in": f"{HOLD_MIN_S:g}–{HOLD_MAX_S:g} s in steps of {RESOLUTION_S} s",
    "hold_out": f"{HOLD_MIN_S:g}–{HOLD_MAX_S:g} s in steps of {RESOLUTION_S} s",
    "cycle": f"inhale + hold_in + exhale + hold_out at most {MAX_CYCLE_S:g} s",
}


def _benefit(value: str) -> str:
    value = value.strip()
    if not value:
        raise PydanticCustomError("benefit_empty", "must not be empty")
    if len(value) > BENEFIT_MAX:
        raise PydanticCustomError("benefit_long", f"too long: {len(value)} characters")
    if not value.isprintable():
        raise PydanticCustomError("benefit_chars", "contains a control character")
    return value


Benefit = Annotated[str, AfterValidator(_benefit)]


def _breath(default: float | None = None) -> Any:
    lo, hi = (BREATH_MIN_S, BREATH_MAX_S) if default is None else (HOLD_MIN_S, HOLD_MAX_S)
    extra = {} if default is None else {"default": default}
    # strict: a JSON string "4" or a bool is refused rather than silently converted.
    return Field(strict=True, ge=lo, le=hi, allow_inf_nan=False, **extra)


class Pattern(BaseModel):
    """One breathing pattern; phases in seconds, holds may be 0 (that phase is skipped)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    benefits: tuple[Benefit, ...] = ()
    inhale: float = _breath()
    hold_in: float = _breath(0.0)
    exhale: float = _breath()
    hold_out: float = _breath(0.0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise PydanticCustomError("name_empty", "must not be empty")
        if len(value) > NAME_MAX:
            raise PydanticCustomError("name_long", f"too long: {len(value)} characters")
        if not value.isprintable():
            raise PydanticCustomError("name_chars", "contains a control or invisible character")
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        value = value.strip()
        if len(value) > DESCRIPTION_MAX:
            raise PydanticCustomError("description_long", f"too long: {len(value)} characters")
        if not value.replace("\n", " ").isprintable():
            raise PydanticCustomError("description_chars", "contains a control character")
        return value

    @field_validator("benefits")
    @classmethod
    def _benefits(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > BENEFITS_MAX_ITEMS:
            raise PydanticCustomError("benefits_many", f"too many: {len(value)} items")
        return value

    @field_validator("inhale", "hold_in", "exhale", "hold_out")
    @classmethod
    def _resolution(cls, value: float) -> float:
        steps = value / RESOLUTION_S
        if abs(steps - round(steps)) > 1e-9:
            raise PydanticCustomError("resolution", f"must be a multiple of {RESOLUTION_S} s")
        return round(steps) * RESOLUTION_S

    @model_validator(mode="after")
    def _cycle(self) -> Pattern:
        if self.cycle_s > MAX_CYCLE_S:
            raise PydanticCustomError(
                "cycle_long", "one cycle is too long", {"field": "cycle", "got": self.cycle_s}
            )
        return self

    @property
    def phases(self) -> tuple[tuple[PhaseName, float], ...]:
        """All four phases in order, including zero-length ones."""
        return tuple((name, float(getattr(self, name))) for name in PHASE_NAMES)

    @property
    def cycle_s(self) -> float:
        return self.inhale + self.hold_in + self.exhale + self.hold_out

    @property
    def breaths_per_minute(self) -> float:
        return 60.0 / self.cycle_s

    @property
    def label(self) -> str:
        """Phases as people write them: ``4-7-8-0``, ``5.5-0-5.5-0``."""
        return "-".join(f"{seconds:g}" for _, seconds in self.phases)


def _got(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']:g} s"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']:g} s"
    if kind in ("float_type", "finite_number"):
        return "must be a number of seconds"
    msg = str(error["msg"])
    return msg[:1].lower() + msg[1:]


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per problem: ``field: message (got X; allowed Y)``."""
    fields = list(Pattern.model_fields)
    lines = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        loc = error["loc"]
        field = str(ctx.get("field") or (loc[0] if loc else "pattern"))
        where = field + "".join(f"[{part}]" for part in loc[1:])
        got = "nothing" if error["type"] == "missing" else _got(ctx.get("got", error["input"]))
        allowed = ALLOWED.get(field, "one of " + ", ".join(fields))
        lines.append(f"{where}: {_message(error)} (got {got}; allowed {allowed})")
    return lines


def parse_pattern(data: object, *, source: str | None = None) -> Pattern:
    """Validate untrusted input (a JSON object) into a Pattern, or raise BadInput."""
    prefix = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        raise BadInput(
            f"{prefix}pattern: must be a JSON object (got {type(data).__name__}; allowed an "
            f"object with {', '.join(Pattern.model_fields)})"
        )
    try:
        return Pattern.model_validate(dict(data))
    except ValidationError as exc:
        raise BadInput("\n".join(prefix + line for line in describe_errors(exc))) from None


def _builtin(name: str, phases: str, description: str, *benefits: str) -> Pattern:
    inhale, hold_in, exhale, hold_out = (float(p) for p in phases.split("-"))
    return Pattern(
        name=name,
        description=description,
        benefits=benefits,
        inhale=inhale,
        hold_in=hold_in,
        exhale=exhale,
        hold_out=hold_out,
    )


# Stable ids: stored in sessions and used by the web app and the CLI. Never rename one.
BUILT_INS: dict[str, Pattern] = {
    "box": _builtin(
        "Box breathing",
        "4-4-4-4",
        "Four equal sides: breathe in, hold, breathe out, hold, four seconds each. The even "
        "count gives the mind one simple thing to follow.",
        "An easy rhythm to remember and use anywhere",
        "Slows breathing to about 3.75 breaths a minute",
        "Often used to steady attention before a demanding task",
    ),
    "relaxation": _builtin(
        "4-7-8 relaxation",
        "4-7-8-0",
        "In for 4, hold for 7, out slowly for 8. The long exhale is the point; the hold can "
        "feel hard at first — if it does, stop and breathe normally.",
        "Exhale twice as long as the inhale, which many people find calming",
        "Commonly used to wind down before sleep",
        "Slow: about 3 breaths a minute",
    ),
    "energy": _builtin(
        "Energy",
        "3-2-4-1",
        "A brisker, active rhythm: a quick inhale, a short hold, a steady exhale and a brief "
        "pause. Useful as a short break when feeling sluggish.",
        "Keeps an alert rhythm of 6 breaths a minute",
        "Short holds that are comfortable for most people",
    ),
    "sleep": _builtin(
        "Sleep",
        "4-6-8-3",
        "A slow pattern with a long exhale and a rest at the bottom of the breath, for lying "
        "down at the end of the day.",
        "Long exhale and a pause that slow the breath to under 3 breaths a minute",
        "A gentle count to focus on instead of the day's thoughts",
    ),
    "mindfulness": _builtin(
        "Mindfulness",
        "5-0-5-0",
        "Even breaths in and out with no holds. The guide keeps time so attention can rest on "
        "the sensation of breathing.",
        "No holds, so it is comfortable for long sessions",
        "A steady 6 breaths a minute",
        "A simple anchor for attention practice",
    ),
    "energising": _builtin(
        "Energising",
        "6-0-6-0",
        "Paced, full breaths: six seconds in, six seconds out, no holds. Slow and deep rather "
        "than fast, for feeling clear-headed without over-breathing.",
        "Full, unhurried breaths at 5 breaths a minute",
        "No holds: easy to keep up for several minutes",
    ),
    "coherent": _builtin(
        "Coherent breathing",
        "5.5-0-5.5-0",
        "Resonance breathing at about 5.5 breaths a minute, the rate at which heart rate "
        "variability tends to be largest for many adults in biofeedback research.",
        "Breathing near the resonance rate increases heart rate variability in studies",
        "No holds: easy to sustain for 10–20 minutes",
        "Balanced inhale and exhale",
    ),
}


def builtin(pattern_id: str) -> Pattern:
    """A built-in by id, or BadInput naming the ids that exist."""
    try:
        return BUILT_INS[pattern_id]
    except KeyError:
        raise BadInput(
            f"pattern: unknown built-in (got {pattern_id!r}; allowed {', '.join(BUILT_INS)})"
        ) from None
