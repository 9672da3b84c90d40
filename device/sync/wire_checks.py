"""Checks on the wire beyond the schema: JSON that parsers would read differently or that
cannot be stored (duplicate keys, NaN / Infinity / 1e999, deep nesting), and session values
outside their physical ranges. Pure; :mod:`device.sync.protocol` applies them in ``decode``
and in :class:`~device.sync.protocol.SessionMessage`.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections.abc import Iterator
from itertools import accumulate
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


def strict_loads(payload: bytes | str) -> Any:
    """``json.loads`` that refuses duplicate keys, non-finite numbers and deep nesting with a
    :class:`WireRefused` (and bad UTF-8 / JSON with the usual errors)."""
    try:
        data = json.loads(payload, object_pairs_hook=_unique_keys, parse_float=_finite,
                          parse_constant=_no_constant)
    except RecursionError:
        raise WireRefused("too_deep", f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError:
        # b"[" * 60000 is cut short either by the recursion limit or by its end, depending on
        # the interpreter's limit: call it what it is either way
        if bracket_depth(payload) > MAX_DEPTH:
            raise WireRefused("too_deep", f"nested deeper than {MAX_DEPTH} levels") from None
        raise
    if too_deep(data):
        raise WireRefused("too_deep", f"nested deeper than {MAX_DEPTH} levels")
    return data


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_OTHER = bytes(b for b in range(256) if b not in b"[{]}")


def bracket_depth(payload: bytes | str) -> int:
    """The deepest ``[``/``{`` nesting in (maybe broken) JSON text, strings left out."""
    raw = payload.encode(errors="replace") if isinstance(payload, str) else payload
    skeleton = _STRING.sub(b"", raw).translate(_BRACKETS, _OTHER)
    return max(accumulate(array("b", skeleton)), default=0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different (``{"device_id": A, "device_id": B}`` is not
    one object: parsers disagree on which value wins)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for i, key in enumerate(keys) if key in keys[:i])
        raise WireRefused("duplicate_key", f"key {twice[:64]!r} appears more than once")
    return out


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise WireRefused("non_finite", f"number {text[:32]} is out of range")
    return value


def _no_constant(name: str) -> None:
    raise WireRefused("non_finite", f"{name} is not a number JSON allows")


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether objects/arrays in ``data`` nest deeper than ``limit`` (without recursion)."""
    stack = [(data, 1)] if isinstance(data, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


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


def metric_values(metrics: BaseModel) -> Iterator[tuple[str, float]]:
    """(dotted path, value) of every number in ``metrics`` whose field has a known range."""
    stack: list[tuple[str, Any]] = [("", metrics.model_dump(mode="python"))]
    while stack:
        prefix, value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, (dict, list, tuple)):
                stack.append((f"{prefix}{key}.", item))
            elif (str(key) in METRIC_RANGES and isinstance(item, (int, float))
                  and not isinstance(item, bool)):
                yield f"{prefix}{key}", item


