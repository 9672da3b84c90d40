"""Checks on the wire beyond the schema: JSON that parsers would read differently or that
cannot be stored (duplicate keys, NaN / Infinity / 1e999, deep nesting). Pure;
:mod:`wire.protocol` applies them in ``decode``. The physical ranges of a session's values
are in the models' types (:mod:`wire.metrics`).
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

import jiter
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

    Cheap on the relay's hot path, in C or Rust where it can be:
    - the nesting depth is first over-estimated from the brackets alone (strings included)
      and measured exactly, strings left out, only when that estimate is over the limit;
    - jiter (pydantic's JSON parser) parses and refuses duplicate keys and NaN / Infinity in
      one pass; whatever it refuses is parsed again by :func:`_strict_python`, which says why
      (or, for the rare text only jiter refuses, such as a lone surrogate escape, accepts it:
      the fast path never changes what is accepted);
    - a number too large for a float (1e999) parses as infinity; the models refuse it
      (``allow_inf_nan=False``, physical ranges), so no per-number hook runs."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if _depth(raw) > MAX_DEPTH and _depth(_STRING.sub(b"", raw)) > MAX_DEPTH:
        raise WireRefused("too_deep", f"nested deeper than {MAX_DEPTH} levels")
    try:
        return jiter.from_json(raw, allow_inf_nan=False, catch_duplicate_keys=True,
                               cache_mode="keys")
    except ValueError:
        return _strict_python(raw)


def _strict_python(raw: bytes) -> Any:
    """The reference: Python's json with a hook that finds duplicate keys, slower."""
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
