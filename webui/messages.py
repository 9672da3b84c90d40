"""Validation errors as sentences for the person at the form, not for a developer.

The API's ``message`` is shown next to the field it names, so it says what to do and what is
allowed, in plain words: "Use 1 to 30 seconds, in steps of 0.25 s (you entered -4)." rather
than pydantic's "input should be greater than or equal to 1". Too long is refused, never cut,
and the message says so.
"""

from __future__ import annotations

from typing import Any

from wire.patterns import (
    BENEFIT_MAX,
    BREATH_MAX_S,
    BREATH_MIN_S,
    DESCRIPTION_MAX,
    HOLD_MAX_S,
    HOLD_MIN_S,
    MAX_CYCLE_S,
    NAME_MAX,
    RESOLUTION_S,
)

_SECONDS = {"inhale": (BREATH_MIN_S, BREATH_MAX_S), "exhale": (BREATH_MIN_S, BREATH_MAX_S),
            "hold_in": (HOLD_MIN_S, HOLD_MAX_S), "hold_out": (HOLD_MIN_S, HOLD_MAX_S)}
_PATTERN_TEXTS = {
    "name_empty": "Enter a name.",
    "name_chars": "Use printable characters only: this name has a control or invisible one.",
    "description_chars": "Use printable characters only: this text has a control character.",
    "benefit_empty": "Leave out empty benefits.",
    "benefit_chars": "Use printable characters only in a benefit.",
}


def shown(value: Any) -> str:
    """What the person entered, short enough to quote."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def pattern_message(error: dict[str, Any], field: str) -> str:
    """One problem of a breathing pattern, for the pattern form."""
    kind, value = error["type"], error.get("input")
    leaf = field.split(".")[0]
    if leaf in _SECONDS:
        lo, hi = _SECONDS[leaf]
        entered = "" if kind == "missing" else f" (you entered {shown(value)})"
        return f"Use {lo:g} to {hi:g} seconds, in steps of {RESOLUTION_S:g} s{entered}."
    if kind == "missing":
        return "Enter a name." if leaf == "name" else "This is required."
    if kind == "name_long":
        return (f"Use at most {NAME_MAX} characters: this name has {len(value)}. Nothing was "
                "saved or cut; shorten it and save again.")
    if kind == "description_long":
        return f"Use at most {DESCRIPTION_MAX} characters: this text has {len(value)}."
    if kind == "cycle_long":
        got = (error.get("ctx") or {}).get("got")
        return (f"One breath (in, hold, out, hold) may last at most {MAX_CYCLE_S:g} seconds: "
                f"this one lasts {got:g}. Shorten a phase.")
    if kind == "benefit_long":
        return f"Keep each benefit to {BENEFIT_MAX} characters: this one has {len(value)}."
    return _PATTERN_TEXTS.get(kind) or sentence(str(error["msg"]))


def field_message(error: dict[str, Any], field: str | None) -> str:
    """One problem of any other request body or query."""
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "This is required."
    if kind == "extra_forbidden":
        return "This field is not known here: leave it out."
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return "This must not be empty." if least == 1 else f"Use at least {least} characters."
    if kind == "string_too_long":
        return (f"Use at most {ctx.get('max_length')} characters: this has {len(value)}. "
                "Nothing was saved or cut.")
    if kind == "string_pattern_mismatch":
        if field and "pattern" in field:
            return (f"There is no pattern {shown(value)!r} here: choose one of the patterns "
                    "listed.")
        return f"{shown(value)!r} is not in the expected form."
    for name, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"),
                        ("lt", "less than")):
        if name in ctx:
            return f"Use a number of {words} {ctx[name]:g} (you entered {shown(value)})."
    text = sentence(str(error["msg"]))
    if kind.endswith("_type") or kind.endswith("_parsing"):
        text = text.rstrip(".") + f" (you entered {shown(value)})."
    return text
