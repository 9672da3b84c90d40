"""The pacing engine: timelines for real patterns, pause/resume on a fake clock, the guide level."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import BadInput
from device.clock import FakeClock
from device.pacing.engine import (
    PacingEngine,
    PhaseChange,
    guide_level,
    phase_changes,
    state_at,
)
from wire.patterns import BUILT_INS, Pattern, builtin

BOX = builtin("box")
RELAX = builtin("relaxation")  # 4-7-8-0


@pytest.mark.parametrize(
    ("t", "phase", "progress", "cycle", "time_to_next"),
    [
        (0.0, "inhale", 0.0, 0, 4.0),
        (1.0, "inhale", 0.25, 0, 3.0),
        (4.0, "hold_in", 0.0, 0, 4.0),
        (7.0, "hold_in", 0.75, 0, 1.0),
        (8.0, "exhale", 0.0, 0, 4.0),
        (12.0, "hold_out", 0.0, 0, 4.0),
        (15.5, "hold_out", 0.875, 0, 0.5),
        (16.0, "inhale", 0.0, 1, 4.0),
        (16.0 * 10 + 9.0, "exhale", 0.25, 10, 3.0),
    ],
)
def test_box_timeline(t, phase, progress, cycle, time_to_next) -> None:
    state = state_at(BOX, t)
    assert (state.phase, state.cycle) == (phase, cycle)
    assert state.progress == pytest.approx(progress)
    assert state.time_to_next == pytest.approx(time_to_next)
    assert state.elapsed == t


@pytest.mark.parametrize(
    ("t", "phase", "next_phase", "cycle"),
    [
        (0.0, "inhale", "hold_in", 0),
        (3.99, "inhale", "hold_in", 0),
        (4.0, "hold_in", "exhale", 0),
        (10.99, "hold_in", "exhale", 0),
        (11.0, "exhale", "inhale", 0),  # no hold_out: exhale leads straight to inhale
        (18.99, "exhale", "inhale", 0),
        (19.0, "inhale", "hold_in", 1),
        (38.0 + 11.0, "exhale", "inhale", 2),
    ],
)
def test_four_seven_eight_timeline(t, phase, next_phase, cycle) -> None:
    state = state_at(RELAX, t)
    assert (state.phase, state.next_phase, state.cycle) == (phase, next_phase, cycle)


def test_four_seven_eight_phase_changes_over_two_breaths() -> None:
    changes = list(phase_changes(RELAX, None, 38.0))
    assert [(c.at, c.phase, c.cycle) for c in changes] == [
        (0.0, "inhale", 0), (4.0, "hold_in", 0), (11.0, "exhale", 0),
        (19.0, "inhale", 1), (23.0, "hold_in", 1), (30.0, "exhale", 1),
        (38.0, "inhale", 2),
    ]  # fmt: skip


@pytest.mark.parametrize("pattern_id", ["mindfulness", "energising", "coherent", "relaxation"])
def test_zero_length_phases_never_show(pattern_id: str) -> None:
    pattern = builtin(pattern_id)
    zero = {name for name, seconds in pattern.phases if seconds == 0}
    assert zero  # the point of this test
    seen = {state_at(pattern, i * 0.05).phase for i in range(int(pattern.cycle_s * 3 / 0.05))}
    assert seen.isdisjoint(zero)
    assert {c.phase for c in phase_changes(pattern, None, pattern.cycle_s * 3)}.isdisjoint(zero)


def test_pattern_with_only_holds_zero_at_the_end() -> None:
    pattern = Pattern(name="in-hold-out", inhale=2, hold_in=1, exhale=2, hold_out=0)
    assert state_at(pattern, 4.9).phase == "exhale"
    assert state_at(pattern, 5.0).phase == "inhale"
    assert state_at(pattern, 5.0).cycle == 1


def test_guide_level_shape() -> None:
    assert state_at(BOX, 0.0).level == 0.0
    assert state_at(BOX, 2.0).level == pytest.approx(0.5)
    assert state_at(BOX, 5.0).level == 1.0  # hold_in: full
    assert state_at(BOX, 10.0).level == pytest.approx(0.5)
    assert state_at(BOX, 13.0).level == 0.0  # hold_out: empty
    # eased: slow at the ends, fastest in the middle of the inhale
    assert state_at(BOX, 0.4).level < 0.1 * 0.5
    inhale = [state_at(BOX, i * 0.1).level for i in range(41)]
    assert all(b >= a for a, b in zip(inhale, inhale[1:], strict=False))
    assert guide_level("exhale", 1.0) == pytest.approx(0.0)


@pytest.mark.parametrize("pattern_id", list(BUILT_INS))
def test_guide_level_is_continuous(pattern_id: str) -> None:
    """No jumps at phase boundaries: the steepest step is the cosine ease's, never more."""
    pattern = builtin(pattern_id)
    dt = 0.01
    shortest = min(s for _, s in pattern.phases if s > 0 and _ in ("inhale", "exhale"))
    max_step = math.pi / (2 * shortest) * dt * 1.001
    levels = [state_at(pattern, i * dt).level for i in range(int(2 * pattern.cycle_s / dt) + 1)]
    steps = [abs(b - a) for a, b in zip(levels, levels[1:], strict=False)]
    assert max(steps) <= max_step
    assert min(levels) == 0.0 and max(levels) == pytest.approx(1.0)


def test_clock_sums_do_not_flicker_at_boundaries() -> None:
    clock = FakeClock()
    engine = PacingEngine(BOX, clock)
    engine.start()
    seen = []
    for _ in range(160):
        clock.advance(0.1)  # sums drift: 80 × 0.1 is 7.999999999999988, not 8
        seen.append(engine.state())
    at_boundaries = [seen[n - 1] for n in (40, 80, 120, 160)]
    assert [s.phase for s in at_boundaries] == ["hold_in", "exhale", "hold_out", "inhale"]
    assert [s.cycle for s in at_boundaries] == [0, 0, 0, 1]
    assert all(s.progress == pytest.approx(0.0, abs=1e-6) for s in at_boundaries)


def test_pause_resume_timeline() -> None:
    clock = FakeClock(start=1000.0)
    engine = PacingEngine(BOX, clock)
    assert engine.status == "idle" and engine.elapsed() == 0.0
    engine.start()
    clock.advance(3.0)
    assert engine.state().phase == "inhale"
    engine.pause()
    assert engine.status == "paused"
    frozen = engine.state()
    clock.advance(120.0)  # a long pause changes nothing
    assert engine.state() == frozen
    engine.pause()  # pausing twice is harmless
    engine.resume()
    clock.advance(1.5)
    state = engine.state()
    assert (state.phase, state.elapsed) == ("hold_in", 4.5)
    engine.pause()
    clock.advance(7.0)
    engine.resume()
    engine.resume()  # resuming twice is harmless
    clock.advance(4.0)
    assert engine.state().phase == "exhale" and engine.elapsed() == 8.5
    engine.stop()
    clock.advance(50.0)
    assert engine.status == "stopped" and engine.elapsed() == 8.5
    with pytest.raises(RuntimeError, match="stopped"):
        engine.start()


def test_polled_changes_match_the_pure_schedule_across_pauses() -> None:
    clock = FakeClock()
    engine = PacingEngine(RELAX, clock)
    assert engine.poll_changes() == []  # not started
    engine.start()
    polled: list[PhaseChange] = []
    for step in range(600):  # 60 s of active time in 0.1 s ticks, with pauses in between
        polled += engine.poll_changes()
        if polled:
            assert engine.state().phase == polled[-1].phase  # cue and state agree
        if step in (50, 230):
            engine.pause()
            clock.advance(30.0)
            engine.resume()
        clock.advance(0.1)
    polled += engine.poll_changes()
    expected = list(phase_changes(RELAX, None, engine.elapsed()))
    assert [(c.phase, c.cycle) for c in polled] == [(c.phase, c.cycle) for c in expected]
    assert [c.at for c in polled] == pytest.approx([c.at for c in expected])
    assert len(polled) == 10  # 0, 4, 11, 19, 23, 30, 38, 42, 49, 57


def test_duration_finishes_and_clamps() -> None:
    clock = FakeClock()
    engine = PacingEngine(BOX, clock, duration_s=32.0)
    engine.start()
    clock.advance(31.9)
    assert not engine.finished and not engine.state().finished
    changes = engine.poll_changes()
    clock.advance(10.0)
    changes += engine.poll_changes()
    state = engine.state()
    assert engine.finished and state.finished
    assert state.elapsed == 32.0 and engine.elapsed() == 32.0
    assert [c.at for c in changes] == [0, 4, 8, 12, 16, 20, 24, 28]  # no cue at the very end
    assert state_at(BOX, 100.0, duration_s=32.0).elapsed == 32.0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="elapsed"):
        state_at(BOX, -0.1)
    with pytest.raises(BadInput, match="duration_s"):
        PacingEngine(BOX, FakeClock(), duration_s=0)
    engine = PacingEngine(BOX, FakeClock())
    engine.start()
    with pytest.raises(RuntimeError, match="running"):
        engine.start()


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.floats(min_value=0.0, max_value=200.0), max_size=12),
    pattern_id=st.sampled_from(list(BUILT_INS)),
)
def test_consecutive_windows_neither_repeat_nor_miss(cuts: list[float], pattern_id: str) -> None:
    pattern = builtin(pattern_id)
    whole = list(phase_changes(pattern, None, 200.0))
    pieces: list[PhaseChange] = []
    start: float | None = None
    for cut in sorted(cuts) + [200.0]:
        pieces += phase_changes(pattern, start, cut)
        start = cut
    assert pieces == whole


@settings(max_examples=100, deadline=None)
@given(t=st.floats(min_value=0.0, max_value=1e5), pattern_id=st.sampled_from(list(BUILT_INS)))
def test_state_is_always_consistent(t: float, pattern_id: str) -> None:
    pattern = builtin(pattern_id)
    s = state_at(pattern, t)
    assert 0.0 <= s.progress <= 1.0 and 0.0 <= s.level <= 1.0
    assert s.phase_duration == getattr(pattern, s.phase) > 0
    assert s.time_to_next == pytest.approx(s.phase_duration - s.phase_elapsed)
    offset = dict(zip(("inhale", "hold_in", "exhale", "hold_out"), (0, 1, 2, 3), strict=True))
    start_of_phase = sum(sec for name, sec in pattern.phases if offset[name] < offset[s.phase])
    rebuilt = s.cycle * pattern.cycle_s + start_of_phase + s.phase_elapsed
    assert rebuilt == pytest.approx(t, abs=1e-6)
