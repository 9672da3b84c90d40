"""The session's own breath rate: counted only from breaths that began after Start.

The estimator's reading carries a rate made from the last few breaths it saw, and before a
session begins those are the person's breaths from before Start (sitting down, talking, a
different rhythm). A session must not report them: its first rate, its median, its resonance
time and everything built on them come from the breaths inside the session.

:class:`SessionRate` keeps a :class:`device.breath.rate.RateTracker` of its own, fed with the
session's breath events (already on session time, so nothing from before Start can reach it):
an ``inhale_start`` is a trough of the breath signal, an ``exhale_start`` a peak, exactly the
turning points the estimator's own tracker counts. The estimator still decides *whether* a rate
may be shown (quality, staleness, a long hold); this class decides *what* it is. A reading
without a person, with the body moving or with the camera lost starts a new epoch, as in the
estimator, so no breath period spans a disturbance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from device.breath.rate import RateTracker
from device.breath.types import BreathEvent, BreathReading

_TURN_OF = {"inhale_start": "trough", "exhale_start": "peak"}
RESUME_GAP_S = 15.0  # as the estimator: after a shorter disturbance old periods still count


class SessionRate:
    """Rate from the session's breaths only; ``shown`` rewrites a reading's rate."""

    def __init__(self) -> None:
        self.tracker = RateTracker()
        self._disturbed = False

    def add_events(self, events: Iterable[BreathEvent]) -> None:
        """Events on session time (``events_on_session_time``), in the order they came."""
        for event in sorted(events, key=lambda e: e.t):
            turn = _TURN_OF.get(event.kind)
            if turn is None:
                continue
            self.tracker.add(turn, event.t)
            self.tracker.resume(event.t, RESUME_GAP_S)

    def observe(self, reading: BreathReading | None, t: float) -> None:
        """Each step's reading at session time ``t`` (None: no usable reading, e.g. the camera
        is lost): a disturbance starts a new epoch."""
        disturbed = reading is None or not reading.present or not reading.still
        if disturbed and not self._disturbed:
            self.tracker.disrupt(t)
        self._disturbed = disturbed

    def shown(self, reading: BreathReading | None) -> BreathReading | None:
        """``reading`` with the session's rate (None until the session has breaths of its own).

        The estimator's ``rate_bpm`` None (no reading, stale, a long hold) stays None.
        """
        if reading is None or reading.rate_bpm is None:
            return reading
        own = self.tracker.rate_bpm
        return replace(reading, rate_bpm=None if own is None else round(own, 2))
