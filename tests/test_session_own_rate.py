"""The session's own rate: only breaths that began after Start count (device.session.own_rate)."""

from __future__ import annotations

import pytest

from device.breath.types import BreathEvent, BreathReading
from device.session.own_rate import SessionRate


def reading(t: float, rate: float | None = 12.0, *, present: bool = True) -> BreathReading:
    return BreathReading(t, "inhale", rate, 0.9, 0.0, present=present, still=True)


def breaths(start: float, period: float, count: int) -> list[BreathEvent]:
    events = []
    for k in range(count):
        t = start + k * period
        events += [BreathEvent("inhale_start", t, t + 1), BreathEvent("exhale_start",
                                                                      t + period / 2, t + 1)]
    return events


def test_no_rate_until_the_session_has_breaths_of_its_own():
    rate = SessionRate()
    assert rate.shown(reading(1.0, 12.0)).rate_bpm is None  # the estimator's 12 is not ours
    rate.add_events(breaths(0.5, 10.0, 1))
    assert rate.shown(reading(6.0)).rate_bpm is None  # one breath: no period yet
    rate.add_events(breaths(10.5, 10.0, 3))
    assert rate.shown(reading(35.0, 12.0)).rate_bpm == pytest.approx(6.0, abs=0.01)


def test_the_estimator_still_decides_when_there_is_no_rate():
    rate = SessionRate()
    rate.add_events(breaths(0.0, 10.0, 4))
    assert rate.shown(reading(40.0, None)).rate_bpm is None
    assert rate.shown(None) is None


def test_no_period_spans_a_time_nobody_was_in_view():
    rate = SessionRate()
    rate.add_events(breaths(0.0, 10.0, 2))  # 6/min
    rate.observe(reading(21.0, None, present=False), 21.0)
    rate.observe(reading(60.0), 60.0)
    rate.add_events(breaths(60.0, 5.0, 1))  # back: its first breath pairs with nothing old
    assert list(rate.tracker.session_periods) == pytest.approx([10.0, 10.0])


def test_no_period_spans_a_lost_camera():
    rate = SessionRate()
    rate.add_events(breaths(0.0, 10.0, 2))
    rate.observe(None, 21.0)  # no usable reading
    rate.observe(reading(30.0), 30.0)
    rate.add_events(breaths(30.0, 10.0, 1))
    assert list(rate.tracker.session_periods) == pytest.approx([10.0, 10.0])
