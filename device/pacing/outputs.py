"""Pacing outputs: the guide LED, the haptic motor and the button, through gpiozero.

Everything here is driven by one clock-driven ``tick`` (no background threads of ours, no
sleeps): the loop that calls it owns time, so tests drive a whole session with ``FakeClock`` and
compare every value the mock pins saw.

- LED(s): ``PWMLED`` per ``pacing.led_pins``, all set together to
  :func:`device.pacing.curves.led_duty` of the guide level, at ``led_update_hz`` (≥ 50 Hz) —
  not ``PWMLED.pulse()``'s linear 25 fps ramp. Eyes-closed mode keeps a steady dim glow
  (``EYES_CLOSED_LO..EYES_CLOSED_HI``, at most 4 %) and leaves the guiding to the motor.
- Motor: ``PWMOutputDevice`` on ``pacing.haptic_pin``; each phase change plays a :class:`Cue`
  (steps of duty and seconds, as data) scaled by ``haptic_strength``.
- Button: on ``pacing.button_pin`` (to ground, internal pull-up), polled each tick;
  :class:`PressTracker` turns the samples into gestures: a press released before ``HOLD_S``
  toggles (start / pause / resume), a press held ``HOLD_S`` stops — once, at the moment it
  becomes a hold, and its release does not toggle (``Button``'s ``when_held`` /
  ``when_released`` semantics). The pin is a ``DigitalInputDevice`` (what ``Button`` is built
  on) rather than a ``Button``: ``Button``'s hold thread runs on real time, would call the
  (single-threaded) pacing engine from another thread, and makes ``close()`` wait up to
  ``hold_time`` while the button is still down — e.g. right after a hold-to-stop.

Pin factory: gpiozero chooses it, we never hard-code one. Its default order tries ``lgpio``
first, which is what a Raspberry Pi 5 needs (RPi.GPIO cannot drive the Pi 5's RP1 chip): install
``python3-lgpio`` from apt (venv with ``--system-site-packages``). Force one with the environment
variable ``GPIOZERO_PIN_FACTORY`` (``lgpio``, ``mock``, ...) or pass ``pin_factory=``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gpiozero import PWMLED, DigitalInputDevice, PWMOutputDevice
from gpiozero.exc import BadPinFactory, GPIOPinInUse

from common.config import PacingSettings
from common.errors import BadInput, BreatheError
from device.clock import Clock
from device.pacing.curves import clamped, led_duty
from device.pacing.engine import PacingEngine, PacingState, PhaseChange
from wire.patterns import PhaseName

EYES_CLOSED_LO, EYES_CLOSED_HI = 0.02, 0.04  # a glow that says "on", too dim to follow
HOLD_S = 2.0  # button held this long = stop
MIN_PRESS_S = 0.05  # shorter presses are contact bounce, not a person
MIN_STEP_S = 0.04  # a cue step must outlast two ticks at the slowest allowed rate (50 Hz)
TIME_EPS = 1e-9  # tick times are sums of floats: 8.2 - 8.0 must count as 0.2 s
PWM_HZ = 1000  # above flicker for the LED; lgpio times PWM in software, 1 % duty steps

Gesture = Literal["toggle", "stop"]


class PinInUse(BadInput):
    """A configured GPIO pin is already claimed (by this program or another one)."""


class GPIOUnavailable(BreatheError, OSError):
    """No usable GPIO: no pin factory found, or a pin could not be opened."""


@dataclass(frozen=True)
class Cue:
    """A haptic pattern: ``steps`` of (duty 0..1 before ``haptic_strength``, seconds)."""

    name: str
    steps: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"cue {self.name!r}: needs at least one step")
        for duty, seconds in self.steps:
            if not 0.0 <= duty <= 1.0:
                raise ValueError(f"cue {self.name!r}: duty must be 0..1, got {duty!r}")
            if not seconds >= MIN_STEP_S:
                raise ValueError(
                    f"cue {self.name!r}: steps must last >= {MIN_STEP_S} s, got {seconds!r}"
                )

    @property
    def duration(self) -> float:
        return sum(seconds for _, seconds in self.steps)

    def duty_at(self, t: float) -> float:
        """Duty ``t`` seconds after the cue started (0 before and after it)."""
        if t < 0:
            return 0.0
        end = 0.0
        for duty, seconds in self.steps:
            end += seconds
            if t < end - TIME_EPS:
                return duty
        return 0.0


TAP = (1.0, 0.08)
GAP = (0.0, 0.12)
SOFT_BUZZ = (0.4, 0.6)
ONE_TAP = Cue("one tap", (TAP,))
TWO_TAPS = Cue("two taps", (TAP, GAP, TAP))
LONG_BUZZ = Cue("soft long buzz", (SOFT_BUZZ,))
CUES: Mapping[PhaseName, Cue] = {
    "inhale": ONE_TAP,
    "exhale": TWO_TAPS,
    "hold_in": LONG_BUZZ,
    "hold_out": LONG_BUZZ,
}


class CuePlayer:
    """Plays one cue at a time on clock time; a new cue cuts off the one playing."""

    def __init__(self) -> None:
        self._cue: Cue | None = None
        self._started = 0.0

    def play(self, cue: Cue, now: float) -> None:
        self._cue, self._started = cue, now

    def duty(self, now: float) -> float:
        if self._cue is None:
            return 0.0
        t = now - self._started
        if t >= self._cue.duration - TIME_EPS:
            self._cue = None
            return 0.0
        return self._cue.duty_at(t)

    def stop(self) -> None:
        self._cue = None


class PressTracker:
    """Button samples → gestures: release before ``hold_s`` = toggle, held ``hold_s`` = stop."""

    def __init__(self, hold_s: float = HOLD_S, min_press_s: float = MIN_PRESS_S) -> None:
        self.hold_s, self.min_press_s = hold_s, min_press_s
        self._down_since: float | None = None
        self._held = False

    def update(self, pressed: bool, now: float) -> Gesture | None:
        if pressed:
            if self._down_since is None:
                self._down_since, self._held = now, False
            elif not self._held and now - self._down_since >= self.hold_s:
                self._held = True
                return "stop"
            return None
        if self._down_since is None:
            return None
        duration, held = now - self._down_since, self._held
        self._down_since, self._held = None, False
        if held or duration < self.min_press_s:
            return None
        return "toggle"


class PacingOutputs:
    """The LED(s), motor and button of ``settings``, updated by :meth:`tick`.

    ``on_toggle`` and ``on_stop`` are called from inside ``tick`` (the caller's thread).
    ``eyes_closed`` and ``haptic_strength`` may be changed while running. Close with
    :meth:`close` (or use as a context manager) before resetting the pin factory.
    """

    def __init__(
        self,
        settings: PacingSettings,
        *,
        on_toggle: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
        cues: Mapping[PhaseName, Cue] = CUES,
        pin_factory: Any = None,
    ) -> None:
        self.settings = settings
        self.gamma = settings.gamma
        self.eyes_closed = settings.eyes_closed
        self.haptic_strength = settings.haptic_strength
        self.on_toggle, self.on_stop = on_toggle, on_stop
        self.cues = dict(cues)
        self._player = CuePlayer()
        self._presses = PressTracker()
        self._led_value: float | None = None
        self._haptic_value: float | None = None
        self._devices: list[Any] = []
        self.leds: list[PWMLED] = []
        self.haptic: PWMOutputDevice | None = None
        self.button: DigitalInputDevice | None = None
        try:
            for i, pin in enumerate(settings.led_pins):
                self.leds.append(self._open(f"led_pins[{i}]", pin, lambda p: PWMLED(
                    p, frequency=PWM_HZ, pin_factory=pin_factory)))
            if settings.haptic_pin is not None:
                self.haptic = self._open("haptic_pin", settings.haptic_pin, lambda p:
                                         PWMOutputDevice(p, frequency=PWM_HZ,
                                                         pin_factory=pin_factory))
            if settings.button_pin is not None:
                self.button = self._open("button_pin", settings.button_pin, lambda p:
                                         DigitalInputDevice(p, pull_up=True,
                                                            pin_factory=pin_factory))
        except BaseException:
            self.close()
            raise

    def _open(self, key: str, pin: int, make: Callable[[int], Any]) -> Any:
        """Open one device; turn gpiozero's errors into ones that name the config key."""
        where = f"pacing.{key}"
        try:
            device = make(pin)
        except GPIOPinInUse as exc:
            raise PinInUse(
                f"{where}: GPIO {pin} is already in use by another device in this program "
                f"(got {pin}; allowed: a pin nothing else uses — change {where} in the config)"
            ) from exc
        except BadPinFactory as exc:
            raise GPIOUnavailable(
                f"{where}: no GPIO pin factory for GPIO {pin} ({exc}). On a Raspberry Pi "
                "install python3-lgpio; elsewhere set GPIOZERO_PIN_FACTORY=mock"
            ) from exc
        except Exception as exc:  # lgpio reports a pin claimed elsewhere as 'GPIO busy'
            if "busy" in str(exc).lower():
                raise PinInUse(
                    f"{where}: GPIO {pin} is busy: another program holds it (got {pin}; "
                    f"allowed: a free pin — stop that program or change {where})"
                ) from exc
            raise GPIOUnavailable(f"{where}: could not open GPIO {pin}: {exc}") from exc
        self._devices.append(device)
        return device

    def led_duty(self, level: float) -> float:
        """The LED duty for a guide level in the current mode."""
        if self.eyes_closed:
            return led_duty(level, gamma=self.gamma, lo=EYES_CLOSED_LO, hi=EYES_CLOSED_HI)
        return led_duty(level, gamma=self.gamma)

    def tick(
        self, state: PacingState | None, changes: Sequence[PhaseChange], now: float
    ) -> None:
        """One update: poll the button, set the LED from ``state``, start and play cues.

        ``state`` None means idle (LED off). Of several ``changes`` only the latest gets a cue:
        cues for moments already past would mislead.
        """
        if self.button is not None:
            gesture = self._presses.update(self.button.is_active, now)
            callback = {"toggle": self.on_toggle, "stop": self.on_stop}.get(gesture or "")
            if callback is not None:
                callback()
        self._set_leds(0.0 if state is None else self.led_duty(state.level))
        if changes and changes[-1].phase in self.cues:
            self._player.play(self.cues[changes[-1].phase], now)
        if self.haptic is not None:
            self._set_haptic(self._player.duty(now) * clamped(self.haptic_strength))
        if self.forget_mock_history_s is not None:
            self._forget_mock_history(now)

    def on_mock_pins(self) -> bool:
        """Whether the devices run on gpiozero's mock pins (which record every change)."""
        from gpiozero.pins.mock import MockFactory

        return any(isinstance(getattr(device, "pin_factory", None), MockFactory)
                   for device in self._devices)

    # gpiozero's mock pins record every change (its test seam); a long-running demo on mock
    # pins would keep them all, about 0.5 MB a minute. None: keep everything (tests read it).
    forget_mock_history_s: float | None = None
    _history_cleared_at: float | None = None

    def _forget_mock_history(self, now: float) -> None:
        if self._history_cleared_at is None:
            self._history_cleared_at = now
        if now - self._history_cleared_at < (self.forget_mock_history_s or 0.0):
            return
        self._history_cleared_at = now
        for device in (*self.leds, self.haptic, self.button):
            clear = getattr(getattr(device, "pin", None), "clear_states", None)
            if clear is not None:
                clear()

    def _set_leds(self, value: float) -> None:
        if value != self._led_value:  # skip writes that change nothing
            for led in self.leds:
                led.value = value
            self._led_value = value

    def _set_haptic(self, value: float) -> None:
        if self.haptic is not None and value != self._haptic_value:
            self.haptic.value = value
            self._haptic_value = value

    def off(self) -> None:
        """LED and motor off, any cue cut short (devices stay open)."""
        self._player.stop()
        self._set_leds(0.0)
        self._set_haptic(0.0)

    def close(self) -> None:
        """Release every device, in reverse order of opening; safe to call twice."""
        while self._devices:
            device = self._devices.pop()
            try:
                device.close()
            except Exception:  # noqa: BLE001 - closing the rest matters more
                pass
        self._led_value = self._haptic_value = None

    def __enter__(self) -> PacingOutputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_loop(
    outputs: PacingOutputs,
    engine: PacingEngine,
    clock: Clock,
    stop_event: threading.Event,
    *,
    hz: float | None = None,
) -> int:
    """Tick ``outputs`` from ``engine`` at ``hz`` (default ``led_update_hz``) until stopped.

    Ends when ``stop_event`` is set, the engine is stopped (e.g. by a button hold) or its
    duration is over; then turns the outputs off. Ticks keep to a fixed grid
    (``start + k / hz``) so timing does not drift; ticks missed while late are skipped, not
    bunched. Returns the number of ticks.
    """
    period = 1.0 / (hz or outputs.settings.led_update_hz)
    start = clock.now()
    ticks = k = 0
    try:
        while not stop_event.is_set():
            now = clock.now()
            state = None if engine.status == "idle" else engine.state()
            outputs.tick(state, engine.poll_changes(), now)
            ticks += 1
            if engine.status == "stopped" or engine.finished:
                break
            k += 1
            now = clock.now()
            if start + k * period < now:  # fell behind: rejoin the grid at the next slot
                k = math.ceil((now - start) / period)
            clock.sleep(start + k * period - now)
    finally:
        outputs.off()
    return ticks
