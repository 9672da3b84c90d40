"""The breath-rate tracker on synthetic turning-point sequences (no signal, no video).

A breath of length ``c`` starting at ``s`` gives a trough (inhale start) at ``s`` and a peak at
``s + 0.4 c``; the tracker sees them in that order, optionally with timing noise, and what it
shows is compared with what a person counting the breaths of the shown window would say: the
last four breaths, but no more than 30 s of them (so 6/min counts three breaths, 4/min two).
"""

from __future__ import annotations

import numpy as np
import pytest

from device.breath.rate import RateTracker


def turning_points(cycles: list[float], t0: float = 0.0, rng: np.random.Generator | None = None,
                   peak_sd: float = 0.0, trough_sd: float = 0.0) -> list[tuple[str, float, int]]:
    """(kind, time, index of the breath that has just ended at a trough) in time order."""
    out = []
    s = t0
    for i, c in enumerate(cycles):
        jt = rng.normal(0, trough_sd) if rng is not None else 0.0
        jp = rng.normal(0, peak_sd) if rng is not None else 0.0
        out.append(("trough", s + jt, i))
        out.append(("peak", s + 0.4 * c + jp, i))
        s += c
    return out


def feed(tracker: RateTracker, points) -> list[tuple[int, str, float | None]]:
    """Add every point; return (breaths ended, kind, shown rate) after each."""
    return [(i, kind, (tracker.add(kind, t), tracker.rate_bpm)[1]) for kind, t, i in points]


def counted(cycles: list[float], ended: int) -> float:
    """The rate over the last four breaths that ended by breath ``ended``, leaving out the
    older ones while they span more than 30 s (at least two stay)."""
    last = cycles[max(0, ended - 4):ended]
    while len(last) > 2 and sum(last) > 30.0:
        last = last[1:]
    return 60.0 * len(last) / sum(last)


def jittered(rate: float, count: int, cv: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(60.0 / rate * np.exp(cv * rng.standard_normal(count)))


@pytest.mark.parametrize("rate", [6.0, 12.0, 20.0, 30.0, 40.0])
def test_irregular_breathing_reads_as_the_breaths_of_the_window(rate: float) -> None:
    """10 % breath-to-breath jitter; peaks timed to 1.5 % of a breath, troughs (which sit in
    the end-of-exhale pause) to 5 %, as measured on the test videos."""
    cycles = jittered(rate, 60, 0.10, seed=int(rate))
    rng = np.random.default_rng(7)
    c = 60.0 / rate
    shown = feed(RateTracker(), turning_points(cycles, rng=rng, peak_sd=0.015 * c,
                                               trough_sd=0.05 * c))
    errors = [abs(r - counted(cycles, i)) for i, kind, r in shown[12:] if kind == "trough"]
    assert np.mean(errors) <= 0.025 * rate
    assert np.mean([e <= 0.04 * rate for e in errors]) >= 0.85


def test_fast_breathing_is_not_averaged_over_a_quarter_minute() -> None:
    """At 40/min the pace drifts from 36 to 44 and back: the number follows within 1."""
    rates = 40.0 + 4.0 * np.sin(np.linspace(0, 2 * np.pi, 80))
    cycles = [60.0 / r for r in rates]
    shown = feed(RateTracker(), turning_points(cycles))
    errors = [abs(r - counted(cycles, i)) for i, kind, r in shown[10:] if kind == "trough"]
    assert max(errors) <= 1.0


def test_a_step_from_12_to_20_shows_within_about_two_breaths() -> None:
    cycles = [5.0] * 12 + [3.0] * 8
    shown = feed(RateTracker(), turning_points(cycles))
    before = [r for i, _, r in shown if 6 <= i <= 11]
    assert all(r == pytest.approx(12.0, abs=0.2) for r in before)
    after = [r for i, _, r in shown if i >= 12 + 3]  # two new breaths done, the third going
    assert after and all(r == pytest.approx(20.0, abs=1.0) for r in after)


def test_a_slow_drift_is_followed_breath_by_breath_not_jumped() -> None:
    """12 → 16 over ten breaths: each reading is the window's breaths, never ahead of them."""
    rates = [12.0] * 8 + list(np.linspace(12.4, 16.0, 10)) + [16.0] * 6
    cycles = [60.0 / r for r in rates]
    shown = feed(RateTracker(), turning_points(cycles))
    for i, kind, r in shown[8:]:
        if kind == "trough":
            assert r == pytest.approx(counted(cycles, i), abs=0.5)


def test_a_missed_turn_does_not_move_the_rate() -> None:
    """One peak lost: the peak-to-peak interval across it is two breaths long."""
    points = [p for p in turning_points([5.0] * 16) if not (p[0] == "peak" and p[2] == 9)]
    shown = feed(RateTracker(), points)
    assert all(r == pytest.approx(12.0, abs=0.05) for i, _, r in shown if i >= 4)


def test_a_spurious_turn_barely_moves_the_rate() -> None:
    """A wobble inside one breath adds an extra trough and peak a second apart."""
    points = turning_points([5.0] * 20)
    extra = [("trough", 46.5, 9), ("peak", 47.5, 9)]
    points = sorted(points + extra, key=lambda p: p[1])
    shown = feed(RateTracker(), points)
    assert all(r == pytest.approx(12.0, rel=0.05) for i, _, r in shown if i >= 4)
    assert all(r == pytest.approx(12.0, abs=0.05) for i, _, r in shown if i >= 15)


def test_one_sigh_moves_the_rate_a_little_and_briefly() -> None:
    cycles = [5.0] * 10 + [7.0] + [5.0] * 8
    shown = feed(RateTracker(), turning_points(cycles))
    assert min(r for _, _, r in shown[8:]) >= 12.0 * 0.88  # a 40 % longer breath: < 12 % off
    assert all(r == pytest.approx(12.0, abs=0.05) for i, _, r in shown if i >= 16)


def test_a_breath_hold_is_no_breath_period() -> None:
    cycles = [5.0] * 8 + [31.0] + [5.0] * 3  # a 25 s hold after a breath
    tracker = RateTracker()
    shown = feed(tracker, turning_points(cycles))
    assert all(r == pytest.approx(12.0, abs=0.05) for i, _, r in shown if i >= 4)
    assert max(tracker.session_periods) < 24.0


def test_a_short_disturbance_keeps_the_old_breaths_a_long_one_does_not() -> None:
    for gap, first_after in ((5.0, 12.0), (40.0, 20.0)):
        tracker = RateTracker()
        feed(tracker, turning_points([5.0] * 10))
        tracker.disrupt(50.0)
        later = turning_points([3.0] * 6, t0=50.0 + gap)
        tracker.add(*later[0][:2])
        tracker.resume(later[0][1], max_gap_s=15.0)
        tracker.add(*later[1][:2])
        tracker.add(*later[2][:2])  # the first period after the gap: 3 s (20/min)
        assert tracker.rate_bpm == pytest.approx(first_after, rel=0.25), gap
        assert tracker.fresh == 1 + (gap < 15.0)


def test_the_breath_length_for_timing_follows_a_change_at_once() -> None:
    """``period`` (staleness, periodicity lag) jumps with the change; the shown rate counts."""
    tracker = RateTracker()
    cycles = [5.0] * 10 + [4.0] * 3
    feed(tracker, turning_points(cycles)[:-1])  # up to the trough that ends the 2nd 4 s breath
    assert tracker.period == pytest.approx(4.0, abs=0.01)
    assert tracker.rate_bpm == pytest.approx(counted(cycles, 12), abs=0.5)


@pytest.mark.parametrize(("rate", "seconds"), [(4.0, 30.0), (6.0, 30.0), (12.0, 20.0),
                                               (24.0, 10.0)])
def test_the_shown_window_is_time_based(rate: float, seconds: float) -> None:
    """A slow breather's number is not a 40 s average (four breaths at 6/min)."""
    tracker = RateTracker()
    assert tracker.shown_window_s(60.0 / rate) == pytest.approx(seconds)
    # a change from ``rate`` to 20 % slower, gradual enough not to count as a new pace:
    # after the window's worth of new breaths the number has fully moved
    cycles = [60.0 / rate] * 30 + [60.0 / rate * (1 + 0.02 * k) for k in range(1, 11)]
    cycles += [60.0 / rate * 1.2] * 30
    shown = feed(tracker, turning_points(cycles))
    settled = 40 + int(np.ceil(seconds / (60.0 / rate * 1.2))) + 1
    after = [r for i, kind, r in shown if i >= settled and kind == "trough"]
    assert after and all(r == pytest.approx(rate / 1.2, rel=0.02) for r in after)


def test_no_periods_no_rate() -> None:
    tracker = RateTracker()
    assert tracker.rate_bpm is None and tracker.session_rate() is None
    tracker.add("trough", 0.0)
    tracker.add("peak", 2.0)
    assert tracker.rate_bpm is None
    tracker.add("trough", 5.0)
    assert tracker.rate_bpm == pytest.approx(12.0)
