"""Session metrics on hand-built sample sequences whose answers are known in advance."""

from __future__ import annotations

import pytest

from device.breath.types import BreathEvent, BreathReading
from device.pacing.engine import state_at
from device.session.metrics import MetricsAccumulator, Sample, compute_metrics
from wire.metrics import SessionMetrics
from wire.patterns import BUILT_INS, Pattern

HZ = 10
BOX = BUILT_INS["box"]  # 4-4-4-4, 16 s cycle
MEASURED = {"inhale": "inhale", "exhale": "exhale", "hold_in": "hold", "hold_out": "hold"}


def follower(
    pattern: Pattern, seconds: float, *, lag: float = 0.0, rate: float | None = None, **kw
) -> list[Sample]:
    """A person doing exactly what the guide did ``lag`` seconds ago (no reading before)."""
    samples = []
    for i in range(int(seconds * HZ)):
        t = i / HZ
        measured = MEASURED[state_at(pattern, t - lag).phase] if t >= lag else None
        samples.append(
            Sample(
                t=t,
                target_phase=state_at(pattern, t).phase,
                measured_phase=measured,
                rate_bpm=rate if measured else None,
                quality=0.9 if measured else 0.0,
                present=True,
                **kw,
            )
        )
    return samples


def test_perfect_follower_of_box_breathing_scores_full_adherence():
    m = compute_metrics(follower(BOX, 160), [], BOX)
    assert m.adherence == pytest.approx(1.0)
    assert m.adherence_by_phase == {p: pytest.approx(1.0) for p in MEASURED}
    assert m.duration_s == pytest.approx(160.0)
    assert m.cycles_completed == 10
    assert m.coverage == pytest.approx(1.0)


def test_breathing_at_own_pace_scores_low():
    # 12 breaths/min, inhale 2.5 s / exhale 2.5 s, no holds, against 4-4-4-4
    samples = [
        Sample(
            t=i / HZ,
            target_phase=state_at(BOX, i / HZ).phase,
            measured_phase="inhale" if (i / HZ) % 5 < 2.5 else "exhale",
            rate_bpm=12.0,
            quality=0.8,
            present=True,
        )
        for i in range(160 * HZ)
    ]
    m = compute_metrics(samples, [], BOX)
    assert m.coverage == pytest.approx(1.0)
    assert m.adherence < 0.35
    # never held: only the 0.7 s allowance after each inhale counts inside the guide's holds
    assert m.adherence_by_phase["hold_in"] < 0.2
    assert m.rate.median == 12.0


def test_lag_of_half_a_second_still_counts():
    m = compute_metrics(follower(BOX, 160, lag=0.5), [], BOX)
    assert m.adherence == pytest.approx(1.0)


def test_lag_of_one_second_does_not():
    m = compute_metrics(follower(BOX, 160, lag=1.0), [], BOX)
    # After each of the 39 guide changes once reading starts, the follower is still in the old
    # phase for 0.3 s beyond the 0.7 s allowance: 39 × 0.3 s missed of 159 s read.
    assert m.adherence == pytest.approx(1 - 39 * 0.3 / 159, abs=0.005)
    assert m.adherence < 0.95


def test_no_readings_gives_zero_coverage_and_no_adherence():
    samples = [Sample(t=i / HZ, target_phase=state_at(BOX, i / HZ).phase) for i in range(600)]
    m = compute_metrics(samples, [], BOX)
    assert m.coverage == 0.0
    assert m.adherence is None
    assert m.adherence_by_phase == {}
    assert m.rate.median is None
    assert m.stillness is None  # nobody present
    assert m.duration_s == pytest.approx(60.0)
    assert all(p.measured_phase is None for p in m.timeline)


def test_empty_session():
    m = compute_metrics([], [], BOX)
    assert (m.duration_s, m.coverage, m.adherence, m.cycles_completed) == (0.0, 0.0, None, 0)
    assert m.timeline == ()


def test_coverage_is_the_share_of_time_with_a_reading():
    samples = follower(BOX, 100)
    half = [
        s if s.t < 50 else Sample(t=s.t, target_phase=s.target_phase, present=False)
        for s in samples
    ]
    m = compute_metrics(half, [], BOX)
    assert m.coverage == pytest.approx(0.5)
    assert m.presence == pytest.approx(0.5)
    assert m.adherence == pytest.approx(1.0)  # only time with a reading is scored


def test_stillness_is_a_share_of_present_time():
    samples = [
        Sample(t=i / HZ, target_phase="inhale", present=i < 500, still=i < 400) for i in range(1000)
    ]
    m = compute_metrics(samples, [], BUILT_INS["mindfulness"])
    assert m.stillness == pytest.approx(0.8)


def test_rate_median_min_max_and_trend():
    # rate falls linearly from 12 to 6 breaths/min over 3 minutes: trend -2 per minute
    samples = [
        Sample(
            t=i / HZ,
            target_phase="inhale",
            measured_phase="inhale",
            rate_bpm=12.0 - 2.0 * (i / HZ) / 60.0,
        )
        for i in range(180 * HZ)
    ]
    m = compute_metrics(samples, [], BUILT_INS["mindfulness"])
    assert m.rate.trend_bpm_per_min == pytest.approx(-2.0, abs=1e-3)
    assert m.rate.min == pytest.approx(6.0, abs=0.01)
    assert m.rate.max == 12.0
    assert m.rate.median == pytest.approx(9.0, abs=0.01)


def test_rate_settles_after_two_minutes():
    # 10 breaths/min easing down to 5.8 over two minutes, then steady for three
    def rate(t: float) -> float:
        return 10.0 - 4.2 * t / 120 if t < 120 else 5.8

    samples = [
        Sample(t=i / HZ, target_phase="inhale", measured_phase="inhale", rate_bpm=rate(i / HZ))
        for i in range(300 * HZ)
    ]
    m = compute_metrics(samples, [], BUILT_INS["coherent"])
    assert m.rate.settled_bpm == pytest.approx(5.8)
    # within ±0.58 of 5.8 from 103.4 s on
    assert 100 <= m.rate.settled_after_s <= 108
    assert m.rate.trend_bpm_per_min is not None and m.rate.trend_bpm_per_min < 0


def test_short_rate_series_has_no_trend():
    samples = [
        Sample(t=i / HZ, target_phase="inhale", measured_phase="inhale", rate_bpm=6.0 + i)
        for i in range(20 * HZ)
    ]
    m = compute_metrics(samples, [], BOX)
    assert m.rate.trend_bpm_per_min is None
    assert m.rate.settled_bpm is None


def test_resonance_time_counts_rates_between_5_and_7():
    samples = [
        Sample(
            t=i / HZ,
            target_phase="inhale",
            measured_phase="inhale",
            rate_bpm=6.0 if i < 300 else 9.0,
        )
        for i in range(600)
    ]
    assert compute_metrics(samples, [], BOX).resonance_s == pytest.approx(30.0)


def test_onset_errors_against_guide_starts():
    # box guide: inhale starts at 0, 16, 32; exhale at 8, 24, 40
    events = [
        BreathEvent("inhale_start", 16.5, 17.0),  # 0.5 late
        BreathEvent("exhale_start", 23.0, 24.0),  # 1.0 early
        BreathEvent("inhale_start", 32.3, 33.0),  # 0.3 late
        BreathEvent("exhale_start", 42.5, 43.0),  # more than half an exhale away: ignored
    ]
    m = compute_metrics(follower(BOX, 48), events, BOX)
    assert m.onset.inhale_count == 2
    assert m.onset.inhale_mean_s == pytest.approx(0.4)
    assert m.onset.exhale_count == 1
    assert m.onset.exhale_mean_s == pytest.approx(-1.0)
    assert m.onset.exhale_mean_abs_s == pytest.approx(1.0)


def test_holds_and_phase_lengths_from_events():
    events = [
        BreathEvent("inhale_start", 0.0, 0.5),
        BreathEvent("hold_start", 4.0, 5.0),
        BreathEvent("hold_end", 26.0, 26.5),  # a 22 s hold
        BreathEvent("exhale_start", 26.0, 26.5),
        BreathEvent("inhale_start", 31.6, 32.0),
        BreathEvent("exhale_start", 35.6, 36.0),
        BreathEvent("hold_start", 40.0, 41.0),  # still open at the end (60 s): 20 s
    ]
    m = compute_metrics(follower(BOX, 60), reversed(events), BOX)  # order does not matter
    assert m.holds.count == 2
    assert m.holds.longest_s == pytest.approx(22.0)
    # two inhales and two exhales are too few to say how long they typically are
    assert m.measured_inhale_s is None and m.measured_exhale_s is None
    more = events + [BreathEvent("inhale_start", 61.0, 61.5),
                     BreathEvent("exhale_start", 65.5, 66.0),
                     BreathEvent("inhale_start", 69.0, 69.5),
                     BreathEvent("exhale_start", 72.5, 73.0),
                     BreathEvent("inhale_start", 77.0, 77.5)]
    m = compute_metrics(follower(BOX, 80), more, BOX)
    assert m.measured_inhale_s == pytest.approx(4.0)  # median of 4.0, 4.0, 4.5, 3.5
    assert m.measured_exhale_s == pytest.approx(4.45)  # median of 5.6, 4.4, 3.5, 4.5


def test_timeline_has_one_point_per_second_with_majority_phase():
    samples = follower(BOX, 8, rate=3.75)
    m = compute_metrics(samples, [], BOX)
    assert [p.second for p in m.timeline] == list(range(8))
    assert [p.target_phase for p in m.timeline] == ["inhale"] * 4 + ["hold_in"] * 4
    assert [p.measured_phase for p in m.timeline] == ["inhale"] * 4 + ["hold"] * 4
    assert all(p.rate == 3.75 and p.quality == pytest.approx(0.9) for p in m.timeline)


def test_timeline_second_without_majority_reading_is_no_reading():
    samples = [
        Sample(t=i / HZ, target_phase="inhale", measured_phase="inhale" if i < 4 else None)
        for i in range(10)
    ]
    assert compute_metrics(samples, [], BOX).timeline[0].measured_phase is None


def test_accumulator_snapshots_agree_with_one_call():
    samples = follower(BOX, 40, lag=1.0, rate=4.0)
    acc = MetricsAccumulator(BOX)
    live = []
    for s in samples:
        acc.add(s)
        live.append(acc.live())
    whole = compute_metrics(samples, [], BOX)
    assert acc.snapshot() == whole
    assert live[-1] == (whole.adherence, whole.coverage)
    assert live[0] == (None, 0.0)  # one sample: no time yet
    # adherence so far dips after each late phase change and never exceeds 1
    assert all(a is None or 0 <= a <= 1 for a, _ in live)


def test_samples_out_of_order_are_refused():
    acc = MetricsAccumulator(BOX)
    acc.add(Sample(t=2.0, target_phase="inhale"))
    with pytest.raises(ValueError, match="time order"):
        acc.add(Sample(t=1.0, target_phase="inhale"))


def test_gaps_count_at_most_one_second():
    samples = [Sample(t=0.0, target_phase="inhale"), Sample(t=30.0, target_phase="inhale")]
    assert compute_metrics(samples, [], BOX).duration_s == pytest.approx(2.0)


def test_round_trip_through_json():
    m = compute_metrics(follower(BOX, 40, rate=3.75), [BreathEvent("hold_start", 4, 5)], BOX)
    stored = m.to_dict()
    assert "timeline" not in stored
    assert SessionMetrics.from_dict(stored) == m.model_copy(update={"timeline": ()})
    assert SessionMetrics.from_dict({}).coverage == 0.0
    assert len(m.to_dict(timeline=True)["timeline"]) == 40


def test_sample_from_engine_state_and_reading():
    state = state_at(BOX, 5.0)
    reading = BreathReading(t=5.0, phase="hold", rate_bpm=4.0, quality=0.7, present=True)
    s = Sample.from_parts(state, reading)
    assert (s.t, s.target_phase, s.measured_phase, s.rate_bpm) == (5.0, "hold_in", "hold", 4.0)
    pacing_only = Sample.from_parts(state, None)
    assert pacing_only.measured_phase is None and not pacing_only.present
