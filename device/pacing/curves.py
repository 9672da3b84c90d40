"""Small value transforms for the pacing outputs, in the spirit of gpiozero's ``tools.py``.

gpiozero chains generators (``scaled(clamped(values))``) because its sources pull values; our
outputs are pushed one value per tick by a clock-driven loop, so these are plain functions of one
value that compose the same way. Each does one thing and is tested on its own.

The guide level from :func:`device.pacing.engine.guide_level` is already cosine-eased; the LED
curve only has to make it *look* eased: eyes see brightness roughly as duty ** (1 / 2.2), so a
linear duty ramp looks like it jumps at the dark end. ``gamma_corrected`` undoes that.
"""

from __future__ import annotations

import math


def clamped(value: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """``value`` limited to ``lo..hi`` (NaN becomes ``lo``: a PWM duty must be a number)."""
    if math.isnan(value):
        return lo
    return min(hi, max(lo, value))


def gamma_corrected(value: float, gamma: float) -> float:
    """Perceived brightness 0..1 → PWM duty 0..1, so equal steps look equal."""
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma!r}")
    return clamped(value) ** gamma


def scaled(value: float, lo: float, hi: float) -> float:
    """``value`` 0..1 mapped onto ``lo..hi`` (``lo`` may be above ``hi`` to invert)."""
    return lo + (hi - lo) * clamped(value)


def led_duty(level: float, *, gamma: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """Guide level 0..1 → LED duty: clamped, gamma-corrected, then scaled into ``lo..hi``."""
    return scaled(gamma_corrected(clamped(level), gamma), lo, hi)
