"""What the breath estimator emits: one reading per frame, plus breath events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["inhale", "exhale", "hold"]


@dataclass
class BreathReading:
    """The estimator's view at time ``t`` (seconds), using only data up to ``t``.

    ``phase`` and ``rate_bpm`` are None when the estimator cannot tell ("no reading").
    ``quality`` 0..1 says how much to trust them. ``displacement`` is the cleaned breathing
    signal (arbitrary units, up = inhale) for charts.
    """

    t: float
    phase: Phase | None
    rate_bpm: float | None
    quality: float
    displacement: float | None = None
    present: bool = False
    still: bool = True


@dataclass
class BreathEvent:
    """A breath boundary, timed when it happened (``t``), confirmed later (``confirmed_at``)."""

    kind: Literal["inhale_start", "exhale_start", "hold_start", "hold_end"]
    t: float
    confirmed_at: float
