"""Insight rules: each fires at its threshold and stays silent just short of it."""

from __future__ import annotations

import pytest

from device.session import insights as ins
from wire.metrics import HoldStats, OnsetStats, RateStats, SessionMetrics
from wire.patterns import BUILT_INS

BOX = BUILT_INS["box"]
RELAX = BUILT_INS["relaxation"]  # 4-7-8-0


def metrics(**kw) -> SessionMetrics:
    """A good, fully seen 5-minute session unless told otherwise."""
    base = {"duration_s": 300.0, "cycles_completed": 18, "coverage": 0.95, "adherence": 0.85}
    return SessionMetrics(**{**base, **kw})


def test_summary_always_fires_with_duration_and_cycles():
    i = ins.summary(metrics(duration_s=600, cycles_completed=37), BOX)
    assert i.text == "You practised Box breathing for 10 minutes: 37 full cycles."
    assert i.value == 600
    assert "45 seconds" in ins.summary(metrics(duration_s=45, cycles_completed=2), BOX).text


def test_coverage_low_fires_below_70_percent():
    i = ins.coverage_low(metrics(coverage=0.6), BOX)
    assert i.text.startswith("The camera saw you for 60 % of the session — move into view")
    assert i.rule_id == "coverage_low" and i.value == 0.6
    assert ins.coverage_low(metrics(coverage=0.7), BOX) is None


@pytest.mark.parametrize(
    ("adherence", "words"),
    [(0.8, "You followed the guide 80 % of the time."), (0.79, "79 %"), (0.49, "only 49 %")],
)
def test_adherence_sentence_by_level(adherence, words):
    i = ins.adherence(metrics(adherence=adherence), BOX)
    assert words in i.text and i.value == adherence


def test_adherence_silent_without_readings_or_with_too_little_coverage():
    assert ins.adherence(metrics(adherence=None, coverage=0.0), BOX) is None
    assert ins.adherence(metrics(adherence=0.9, coverage=0.29), BOX) is None
    assert ins.adherence(metrics(adherence=0.9, coverage=0.3), BOX) is not None


def test_exhale_length_fires_at_20_percent_off():
    i = ins.exhale_length(metrics(measured_exhale_s=5.6), RELAX)
    assert i.text == "Your exhales were 30 % shorter than the guide's 8 s."
    assert i.value == pytest.approx(-0.3)
    assert ins.exhale_length(metrics(measured_exhale_s=6.4), RELAX) is not None  # exactly 20 %
    assert ins.exhale_length(metrics(measured_exhale_s=6.5), RELAX) is None
    assert ins.exhale_length(metrics(measured_exhale_s=None), RELAX) is None


def test_inhale_length_reports_longer_too():
    i = ins.inhale_length(metrics(measured_inhale_s=5.0), BOX)
    assert i.text == "Your inhales were 25 % longer than the guide's 4 s."
    assert ins.inhale_length(metrics(measured_inhale_s=4.7), BOX) is None


def test_onset_late_fires_from_0_7_s():
    late = OnsetStats(inhale_mean_s=1.0, exhale_mean_s=0.6, inhale_count=5, exhale_count=5)
    i = ins.onset_late(metrics(onset=late), BOX)
    assert i.text.startswith("You changed phase 0.8 s after the guide on average")
    just_short = OnsetStats(inhale_mean_s=0.69, inhale_count=5)
    assert ins.onset_late(metrics(onset=just_short), BOX) is None
    assert ins.onset_late(metrics(), BOX) is None  # no onsets measured


def test_rate_settled_fires_after_30_s():
    settled = RateStats(median=6.0, settled_bpm=5.8, settled_after_s=120)
    i = ins.rate_settled(metrics(rate=settled), BOX)
    assert i.text == "Your rate settled at 5.8 breaths/min after 2 minutes."
    immediate = RateStats(median=6.0, settled_bpm=5.8, settled_after_s=29)
    assert ins.rate_settled(metrics(rate=immediate), BOX) is None
    assert ins.rate_settled(metrics(rate=RateStats(median=6.0)), BOX) is None


@pytest.mark.parametrize(
    ("median", "fires"), [(4.9, False), (5.0, True), (7.0, True), (7.1, False)]
)
def test_resonance_range_is_5_to_7(median, fires):
    i = ins.resonance(metrics(rate=RateStats(median=median)), BOX)
    assert (i is not None) == fires
    if fires:
        assert f"{median:.1f} breaths/min" in i.text


def test_longest_hold_fires_from_10_s():
    i = ins.longest_hold(metrics(holds=HoldStats(count=3, longest_s=16.0)), BOX)
    assert i.text == "Your longest measured hold was 16 s."
    assert ins.longest_hold(metrics(holds=HoldStats(count=3, longest_s=9.9)), BOX) is None


def test_still_high_and_low_and_in_between():
    assert ins.still(metrics(stillness=0.92), BOX).text == "You were still 92 % of the time."
    low = ins.still(metrics(stillness=0.55), BOX)
    assert low.text.startswith("You moved for 45 % of the time")
    assert ins.still(metrics(stillness=0.89), BOX) is None
    assert ins.still(metrics(stillness=0.6), BOX) is None
    assert ins.still(metrics(stillness=None), BOX) is None


def test_build_gives_two_to_five_sentences_in_rule_order():
    rich = metrics(
        coverage=0.6,
        adherence=0.85,
        measured_exhale_s=5.0,
        measured_inhale_s=6.0,
        stillness=0.95,
        rate=RateStats(median=6.0, settled_bpm=6.0, settled_after_s=60),
    )
    out = ins.build_insights(rich, RELAX, "relaxation")
    ids = [s.rule_id for s in out.sentences]
    assert ids == ["summary", "coverage_low", "adherence", "exhale_length", "inhale_length"]
    assert out.to_dict()["next_step"]["pattern_id"] == "coherent"


def test_build_on_an_empty_session_still_says_two_things():
    out = ins.build_insights(SessionMetrics(), BOX, "box")
    assert [s.rule_id for s in out.sentences] == ["summary", "coverage_low"]
    assert out.next_step.rule_id == "coverage"
    assert out.next_step.minutes == 3


def test_build_is_deterministic():
    m = metrics(stillness=0.95)
    assert ins.build_insights(m, BOX, "box") == ins.build_insights(m, BOX, "box")


def test_next_step_easier_pattern_when_adherence_is_low():
    step = ins.next_step(metrics(adherence=0.4), BOX, "box")
    assert (step.pattern_id, step.minutes, step.rule_id) == ("mindfulness", 3, "easier")
    assert step.text.startswith("Next: Mindfulness (5-0-5-0) for 3 minutes")


def test_next_step_resonance_after_a_good_long_session():
    step = ins.next_step(metrics(adherence=0.8, duration_s=300), BOX, "box")
    assert (step.pattern_id, step.minutes) == ("coherent", 10)


def test_next_step_longer_after_a_good_short_session():
    step = ins.next_step(metrics(adherence=0.9, duration_s=180), BOX, "box")
    assert (step.pattern_id, step.minutes, step.rule_id) == ("box", 5, "longer")
    capped = ins.next_step(
        metrics(adherence=0.9, duration_s=1200), BUILT_INS["coherent"], "coherent"
    )
    assert capped.minutes == 20


def test_next_step_repeat_in_the_middle():
    step = ins.next_step(metrics(adherence=0.6, duration_s=240), BOX, "box")
    assert (step.pattern_id, step.minutes, step.rule_id) == ("box", 4, "repeat")
