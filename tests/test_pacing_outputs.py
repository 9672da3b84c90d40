"""Pacing outputs on mock pins: every value the LED and motor pins saw over a session, and the
button gestures, all driven by a fake clock."""

from __future__ import annotations

import threading

import pytest
from gpiozero import PWMLED

from common.config import PacingSettings
from common.errors import BadInput
from device.clock import FakeClock
from device.pacing.curves import clamped, gamma_corrected, led_duty, scaled
from device.pacing.engine import PacingEngine, phase_changes, state_at
from device.pacing.outputs import (
    CUES,
    Cue,
    PacingOutputs,
    PinInUse,
    PressTracker,
    run_loop,
)
from wire.patterns import BUILT_INS

BOX = BUILT_INS["box"]
HZ = 50
LED, LED2, MOTOR, BUTTON = 18, 23, 13, 17




def settings(**overrides) -> PacingSettings:
    base = dict(led_pins=[LED], haptic_pin=MOTOR, button_pin=BUTTON, gamma=2.2,
                haptic_strength=0.6, led_update_hz=HZ)
    return PacingSettings(**(base | overrides))


@pytest.fixture
def outputs(factory):
    out = PacingOutputs(settings())
    yield out
    out.close()


def values(factory, pin: int) -> list[float]:
    return [s.state for s in factory.pin(pin).states]


def dedupe(seq: list[float]) -> list[float]:
    out: list[float] = []
    for v in seq:
        if not out or v != out[-1]:
            out.append(v)
    return out


def run_one_cycle(out: PacingOutputs, pattern=BOX, hz=HZ) -> tuple[list[float], list[float]]:
    """Run exactly one cycle through run_loop; return the tick times and motor duty per tick."""
    clock = FakeClock()
    engine = PacingEngine(pattern, clock, duration_s=pattern.cycle_s)
    engine.start()
    times, duties = [], []
    real_tick = out.tick

    def spy(state, changes, now):
        real_tick(state, changes, now)
        times.append(now)
        duties.append(out._haptic_value)

    out.tick = spy
    ticks = run_loop(out, engine, clock, threading.Event())
    assert ticks == len(times) == round(pattern.cycle_s * hz) + 1  # 0 .. end inclusive
    return times, duties


# --- curves -------------------------------------------------------------------------------


def test_curve_pieces_compose():
    assert clamped(-0.5) == 0.0 and clamped(1.5) == 1.0 and clamped(float("nan")) == 0.0
    assert gamma_corrected(0.5, 2.0) == 0.25
    assert scaled(0.5, 0.2, 0.4) == pytest.approx(0.3)
    assert led_duty(0.5, gamma=2.2, lo=0.02, hi=0.04) == pytest.approx(0.02 + 0.02 * 0.5**2.2)
    with pytest.raises(ValueError):
        gamma_corrected(0.5, 0)


# --- LED ----------------------------------------------------------------------------------


def test_led_follows_the_gamma_corrected_guide_for_a_whole_box_cycle(factory):
    with PacingOutputs(settings(led_pins=[LED, LED2])) as out:
        times, _ = run_one_cycle(out)
    expected = [0.0]  # the pin's state before the first tick
    for k in range(len(times)):
        assert times[k] == pytest.approx(k / HZ, abs=1e-9)
        level = state_at(BOX, k / HZ, duration_s=BOX.cycle_s).level
        expected.append(level**2.2)
    expected.append(0.0)  # off() at the end
    expected = dedupe(expected)
    # The full list, not assert_states (which zips and passes on a shorter list).
    for pin in (LED, LED2):
        got = values(factory, pin)
        assert len(got) == len(expected)
        assert got == pytest.approx(expected, abs=1e-9)
    got = values(factory, LED)
    # Smooth: no step between ticks bigger than the curve allows at 50 Hz (≈ 2.7 % here).
    assert max(abs(b - a) for a, b in zip(got[1:-2], got[2:-1], strict=True)) < 0.03
    assert max(got) == 1.0 and 1.0 in got  # full on through hold_in


def test_eyes_closed_keeps_the_led_a_dim_glow(factory):
    with PacingOutputs(settings(eyes_closed=True)) as out:
        _, duties = run_one_cycle(out)
    led = values(factory, LED)[1:-1]  # between the initial 0 and the final off
    assert led and max(led) <= 0.05 and min(led) >= 0.02
    assert max(duties) > 0  # the motor still guides


# --- haptics ------------------------------------------------------------------------------


def pulses(duties: list[float], times: list[float]) -> list[tuple[float, float, float]]:
    """(start, seconds, duty) of each run of equal non-zero duty."""
    out, start = [], None
    for i, d in enumerate(duties):
        if start is not None and d != duties[start]:
            out.append((times[start], times[i] - times[start], duties[start]))
            start = None
        if start is None and d > 0:
            start = i
    return out


def test_haptic_cues_one_tap_inhale_two_taps_exhale_long_buzz_holds(factory):
    with PacingOutputs(settings()) as out:
        times, duties = run_one_cycle(out)
    s = 0.6
    tap, buzz = s * 1.0, s * 0.4
    # The full pin history: inhale tap, hold_in buzz, exhale two taps, hold_out buzz.
    assert values(factory, MOTOR) == pytest.approx(
        [0.0, tap, 0.0, buzz, 0.0, tap, 0.0, tap, 0.0, buzz, 0.0]
    )
    got = pulses(duties, times)
    starts = [round(p[0], 6) for p in got]
    assert starts == [0.0, 4.0, 8.0, 8.2, 12.0]  # each cue on its phase boundary
    assert [round(p[1], 6) for p in got] == [0.08, 0.6, 0.08, 0.08, 0.6]
    assert [p[2] for p in got] == pytest.approx([tap, buzz, tap, tap, buzz])


def test_haptic_strength_scales_every_duty(factory):
    with PacingOutputs(settings(haptic_strength=0.25)) as out:
        run_one_cycle(out)
    assert values(factory, MOTOR) == pytest.approx(
        [0.0, 0.25, 0.0, 0.1, 0.0, 0.25, 0.0, 0.25, 0.0, 0.1, 0.0]
    )


def test_no_hold_cues_when_the_pattern_has_no_holds(factory):
    with PacingOutputs(settings()) as out:
        run_one_cycle(out, pattern=BUILT_INS["mindfulness"])
    assert values(factory, MOTOR) == pytest.approx([0.0, 0.6, 0.0, 0.6, 0.0, 0.6, 0.0])


def test_a_new_cue_cuts_off_the_one_playing(outputs, factory):
    state = state_at(BOX, 0.0)
    changes = list(phase_changes(BOX, None, 8.0))
    outputs.tick(state, changes[:2], 0.0)  # inhale + hold_in at once: only the latest plays
    assert outputs._haptic_value == pytest.approx(0.6 * 0.4)
    outputs.tick(state, changes[2:3], 0.1)  # exhale arrives mid-buzz
    assert outputs._haptic_value == pytest.approx(0.6)


def test_cues_are_validated_data():
    assert CUES["inhale"].duration == pytest.approx(0.08)
    assert CUES["exhale"].duty_at(0.1) == 0.0 and CUES["exhale"].duty_at(0.21) == 1.0
    with pytest.raises(ValueError, match="0..1"):
        Cue("bad", ((1.5, 0.1),))
    with pytest.raises(ValueError, match=">= 0.04"):
        Cue("too short for 50 Hz", ((1.0, 0.01),))


# --- button -------------------------------------------------------------------------------


def drive(out: PacingOutputs, factory, script: dict[float, str], until: float) -> None:
    """Tick at 50 Hz to ``until``, pressing ('low') and releasing ('high') the button."""
    pin = factory.pin(BUTTON)
    for k in range(round(until * HZ) + 1):
        t = k / HZ
        action = script.get(round(t, 6))
        if action == "low":
            pin.drive_low()
        elif action == "high":
            pin.drive_high()
        out.tick(None, [], t)


def test_button_press_toggles_on_release(outputs, factory):
    calls = []
    outputs.on_toggle, outputs.on_stop = lambda: calls.append("toggle"), lambda: calls.append(
        "stop")
    drive(outputs, factory, {1.0: "low", 1.3: "high", 3.0: "low", 4.9: "high"}, until=6.0)
    assert calls == ["toggle", "toggle"]  # 1.9 s is still a press


def test_button_hold_2s_stops_once_and_does_not_toggle(outputs, factory):
    calls = []
    outputs.on_toggle = lambda: calls.append(("toggle", round(t[0], 2)))
    outputs.on_stop = lambda: calls.append(("stop", round(t[0], 2)))
    t = [0.0]
    pin = factory.pin(BUTTON)
    for k in range(6 * HZ):
        t[0] = k / HZ
        if k == 1 * HZ:
            pin.drive_low()
        if k == 5 * HZ:
            pin.drive_high()
        outputs.tick(None, [], t[0])
    assert calls == [("stop", 3.0)]  # at the moment it became a hold, not on release


def test_bounce_shorter_than_min_press_is_ignored():
    tracker = PressTracker()
    assert tracker.update(True, 0.0) is None
    assert tracker.update(False, 0.02) is None
    assert tracker.update(True, 1.0) is None
    assert tracker.update(False, 1.2) == "toggle"


def test_run_loop_button_starts_pauses_and_stops_a_session(factory):
    clock = FakeClock()
    engine = PacingEngine(BOX, clock)
    pin_actions = {0.5: "low", 0.7: "high", 2.5: "low", 2.7: "high", 4.5: "low",
                   4.7: "high", 6.0: "low"}
    pin = factory.pin(BUTTON)

    class Scripted(FakeClock):
        def sleep(self, seconds):
            clock.sleep(seconds)
            for at, action in list(pin_actions.items()):
                if clock.now() >= at - 1e-9:
                    (pin.drive_low if action == "low" else pin.drive_high)()
                    del pin_actions[at]

        def now(self):
            return clock.now()

    def toggle():
        {"idle": engine.start, "running": engine.pause, "paused": engine.resume}[engine.status]()

    with PacingOutputs(settings(), on_toggle=toggle, on_stop=engine.stop) as out:
        ticks = run_loop(out, engine, Scripted(), threading.Event())
        assert engine.status == "stopped"
        # started at 0.7, paused at 2.7, resumed at 4.7, stopped at 8.0 (6.0 + 2 s hold)
        assert clock.now() == pytest.approx(8.0)
        assert engine.elapsed() == pytest.approx(2.0 + 3.3)
        assert ticks == round(8.0 * HZ) + 1
        assert values(factory, LED)[-1] == 0.0 and values(factory, MOTOR)[-1] == 0.0


def test_run_loop_ends_when_the_stop_event_is_set(outputs):
    clock = FakeClock()
    engine = PacingEngine(BOX, clock)
    engine.start()
    stop = threading.Event()

    class Stopping(FakeClock):
        def now(self):
            return clock.now()

        def sleep(self, seconds):
            clock.sleep(seconds)
            if clock.now() >= 1.0 - 1e-9:
                stop.set()

    assert run_loop(outputs, engine, Stopping(), stop) == HZ + 0
    assert engine.status == "running"


def test_run_loop_skips_ticks_it_was_too_late_for(outputs):
    clock = FakeClock()
    engine = PacingEngine(BOX, clock, duration_s=1.0)
    engine.start()
    seen = []
    real = outputs.tick

    def slow_tick(state, changes, now):
        real(state, changes, now)
        seen.append(now)
        if len(seen) == 3:
            clock.advance(0.05)  # this tick took 2.5 periods

    outputs.tick = slow_tick
    run_loop(outputs, engine, clock, threading.Event())
    gaps = [round(b - a, 6) for a, b in zip(seen[:-1], seen[1:], strict=True)]
    assert gaps[:3] == [0.02, 0.02, 0.06] and set(gaps[3:]) == {0.02}


# --- errors and cleanup -------------------------------------------------------------------


def test_pin_in_use_names_the_pin_and_the_config_key(factory):
    holder = PWMLED(MOTOR)
    try:
        with pytest.raises(PinInUse) as info:
            PacingOutputs(settings())
        assert isinstance(info.value, BadInput)
        message = str(info.value)
        assert "pacing.haptic_pin" in message and f"GPIO {MOTOR}" in message
        # the LED opened before the failure was released again
        PWMLED(LED).close()
    finally:
        holder.close()


def test_close_releases_every_pin(factory):
    out = PacingOutputs(settings(led_pins=[LED, LED2]))
    out.close()
    out.close()  # twice is fine
    again = PacingOutputs(settings(led_pins=[LED, LED2]))  # would raise if any were held
    assert len(again.leds) == 2 and again.haptic is not None and again.button is not None
    again.close()


def test_optional_motor_and_button(factory):
    with PacingOutputs(settings(haptic_pin=None, button_pin=None)) as out:
        out.tick(state_at(BOX, 2.0), [], 0.0)
        assert out.haptic is None and out.button is None
        assert out.leds[0].value == pytest.approx(0.5**2.2)
