"""Checks on the wire beyond the schema: JSON that parsers would read differently or that
cannot be stored (duplicate keys, NaN / Infinity / 1e999, deep nesting), and session values
outside their physical ranges. Pure; :mod:`wire.protocol` applies them in ``decode``
and in :class:`~wire.protocol.SessionMessage`.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from operator import attrgetter
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

MAX_DEPTH = 8  # objects/arrays nested deeper are refused (a session message is 3 deep)
DAY_S = 24 * 3600


class WireRefused(ValueError):
    """Raised while parsing; ``reason`` is how the relay counts it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes included
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_OTHER = bytes(b for b in range(256) if b not in b"[{]}")


def strict_loads(payload: bytes | str) -> Any:
    """``json.loads`` that refuses deep nesting, duplicate keys and NaN / Infinity with a
    :class:`WireRefused` (bad UTF-8 / JSON raise as usual).

    Cheap on the relay's hot path: the nesting depth is first over-estimated in C from the
    brackets alone (strings included) and measured exactly, strings left out, only when that
    estimate is over the limit. A number too large for a float (1e999) parses as infinity;
    the models refuse it (``allow_inf_nan=False``, physical ranges), so no per-number hook
    slows every message down."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if _depth(raw) > MAX_DEPTH and _depth(_STRING.sub(b"", raw)) > MAX_DEPTH:
        raise WireRefused("too_deep", f"nested deeper than {MAX_DEPTH} levels")
    try:
        return _DECODER.decode(raw.decode())
    except RecursionError:  # not after the depth check; but never a traceback
        raise WireRefused("too_deep", f"nested deeper than {MAX_DEPTH} levels") from None


def _no_constant(name: str) -> None:
    raise WireRefused("non_finite", f"{name} is not a number JSON allows")


def _depth(text: bytes) -> int:
    """The deepest ``[``/``{`` nesting in ``text``, counted in C."""
    return max(accumulate(array("b", text.translate(_BRACKETS, _OTHER))), default=0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different (``{"device_id": A, "device_id": B}`` is not
    one object: parsers disagree on which value wins)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for i, key in enumerate(keys) if key in keys[:i])
        raise WireRefused("duplicate_key", f"key {twice[:64]!r} appears more than once")
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def implausible(field: str, problem: str) -> PydanticCustomError:
    return PydanticCustomError("implausible", "{field} {problem}",
                               {"field": field, "problem": problem})


FRACTION = (0.0, 1.0)
COUNT = (0, 100_000)  # a day of 1-second breaths is 86,400
SECONDS = (0.0, DAY_S)
SIGNED_SECONDS = (-DAY_S, DAY_S)
BPM = (0.0, 120.0)
# the physical range of each metric, by field name (SessionMetrics and its parts)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "adherence": FRACTION, "stillness": FRACTION, "presence": FRACTION, "coverage": FRACTION,
    "inhale": FRACTION, "exhale": FRACTION, "hold_in": FRACTION, "hold_out": FRACTION,
    "quality": FRACTION,
    "cycles_completed": COUNT, "inhale_count": COUNT, "exhale_count": COUNT, "count": COUNT,
    "duration_s": SECONDS, "resonance_s": SECONDS, "longest_s": SECONDS,
    "measured_inhale_s": SECONDS, "measured_exhale_s": SECONDS, "inhale_mean_abs_s": SECONDS,
    "exhale_mean_abs_s": SECONDS, "settled_after_s": SECONDS, "second": SECONDS,
    "inhale_mean_s": SIGNED_SECONDS, "exhale_mean_s": SIGNED_SECONDS,
    "median": BPM, "min": BPM, "max": BPM, "settled_bpm": BPM, "rate": BPM,
    "trend_bpm_per_min": (-BPM[1], BPM[1]), "displacement": (-1e6, 1e6),
}


def _range_checks(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, getter) of every field of ``model`` (and of the models inside it) that
    has a range in METRIC_RANGES; worked out once, so each message costs only the getters."""
    checks = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            checks += _range_checks(kind, f"{prefix}{name}.")
        elif name in METRIC_RANGES:
            checks.append((f"{prefix}{name}", attrgetter(f"{prefix}{name}"),
                           *METRIC_RANGES[name]))
    return checks


def out_of_range(metrics: BaseModel) -> tuple[str, tuple[float, float]] | None:
    """The first metric outside its physical range: (path, (low, high)); None if all fit."""
    checks = _CHECKS.get(type(metrics))
    if checks is None:
        checks = _CHECKS[type(metrics)] = _range_checks(type(metrics))
    for path, get, low, high in checks:
        value = get(metrics)
        if value is not None and not low <= value <= high:
            return path, (low, high)
    for phase, value in (getattr(metrics, "adherence_by_phase", None) or {}).items():
        if value is not None and not 0.0 <= value <= 1.0:
            return f"adherence_by_phase.{phase}", FRACTION
    for i, point in enumerate(getattr(metrics, "timeline", ())):
        for name in ("second", "rate", "quality"):
            value = getattr(point, name, None)
            bounds = METRIC_RANGES[name]
            if value is not None and not bounds[0] <= value <= bounds[1]:
                return f"timeline.{i}.{name}", bounds
    return None


_CHECKS: dict[type, list[tuple[str, Any]]] = {}
