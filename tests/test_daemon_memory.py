"""The always-on daemon's memory stays flat: 24 h of simulated time, sessions and idle hours.

The daemon's two loops run as in ``breathe run``: the measurement loop
(:class:`device.breath.live.LiveBreath`, its own reader thread taking frames from a camera)
and the pacing loop (:meth:`SessionEngine.step` on the fixed grid ``run_forever`` keeps, with
the mock-pin LED, motor and button, checkpoints and sync messages in a real SQLite file), plus
what the daemon does around them: a subscriber reading every live state, the achievements of
each finished session, the watchdog's liveness check. A :class:`FakeClock` carries the day.

To keep the day deterministic and fast, the camera drives it: before each frame it moves the
clock to the frame's time and makes the pacing steps due by then, so both loops take turns in
one thread. Rates are lowered (2 frames/s, one pacing step per second) and the camera's front
end and estimator are replaced by a person whose breath readings and events are known (the
estimator's own lists are bounded and tested in ``device/breath``).

The person breathes in front of the device all day (as the demo person does); sessions run in
the morning and at noon, and the evening and night are idle. After a warm-up (the first
session and the idle time after it) tracemalloc traces every allocation; what is still held
at the end is what the day made the heap grow by.
"""

from __future__ import annotations

import gc
import math
import queue
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from types import SimpleNamespace

from gpiozero.pins.mock import MockFactory, MockPWMPin

from common.config import Settings
from device.breath.live import LiveBreath
from device.breath.types import BreathEvent, BreathReading
from device.camera.base import Frame, SourceStats
from device.clock import FakeClock
from device.pacing.outputs import PacingOutputs
from device.session.appliance import session_outcome
from device.session.engine import SessionEngine
from device.session.live_state import ACTIVE
from device.status import DeviceStatus
from device.watchdog import Watchdog

DAY_S = 24 * 3600.0
FPS = 1.0
STEP_HZ = 1.0  # pacing-loop steps per second of simulated time (the daemon: 50)
SESSION_HOURS = (0, 3, 6, 9, 12)  # sessions start then; the evening and night are idle
SESSION_MINUTES = 5.0
WARM_UP_S = 2 * 3600.0  # the first session and the idle time after it
SESSION_STARTS = {hour * 3600.0 for hour in SESSION_HOURS}
WATCHDOG_EVERY_S = 10.0
MAX_GROWTH_BYTES = 1_000_000


def breath_angle(t: float) -> float:
    """Where in its breath a person is at ``t`` (radians; 0 = mid-inhale), breathing at
    12 ± 2 breaths/min, the rate drifting over 90 minutes."""
    drift = 5400.0 / (2 * math.pi)
    return 2 * math.pi * (12.0 * t - 2.0 * drift * math.cos(t / drift)) / 60.0


def breath_rate(t: float) -> float:
    return 12.0 + 2.0 * math.sin(t / (5400.0 / (2 * math.pi)))


class PersonCamera:
    """A FrameSource of the person; ``before_frame(t)`` runs before each frame is yielded.

    Each frame's image is the chest displacement its ROI motion would measure (what the front
    end makes of a frame): the landmark models are not what this test is about.
    """

    name = "person"
    width = height = 1

    def __init__(self, fps: float, duration_s: float,
                 before_frame: Callable[[float], None]) -> None:
        self.stats = SourceStats(fps=fps)
        self.duration_s = duration_s
        self.before_frame = before_frame
        self._closed = False

    def frames(self) -> Iterator[Frame]:
        for index in range(round(self.duration_s * self.stats.fps) + 1):
            if self._closed:
                return
            t = index / self.stats.fps
            self.before_frame(t)
            self.stats.frames += 1
            yield Frame(t=t, image=3.0 * math.sin(breath_angle(t)),  # type: ignore[arg-type]
                        index=index)

    def close(self) -> None:
        self._closed = True


class PersonPipeline:
    """Readings and breath events of the person (the estimator's output, known exactly)."""

    def __init__(self) -> None:
        self._rising: bool | None = None

    def process(self, t: float, displacement: float) -> SimpleNamespace:
        rising = math.cos(breath_angle(t)) > 0
        events = []
        if self._rising is not None and rising != self._rising:
            events.append(BreathEvent("inhale_start" if rising else "exhale_start", t, t))
        self._rising = rising
        reading = BreathReading(t, "inhale" if rising else "exhale", round(breath_rate(t), 1),
                                0.9, displacement, present=True, still=True)
        return SimpleNamespace(reading=reading, events=events)


class Notifier:
    def __init__(self) -> None:
        self.last = ""

    def notify(self, state: str) -> None:
        self.last = state


class Day:
    """The day's timetable and the daemon's chores, driven by the camera's frames."""

    def __init__(self, engine: SessionEngine, watchdog: Watchdog, db_path,
                 clock: FakeClock) -> None:
        self.engine, self.watchdog, self.db_path, self.clock = engine, watchdog, db_path, clock
        self.start = clock.now()
        self.updates = engine.subscribe()
        self.steps = 0
        self.sessions = self.finished = 0
        self.session_started = 0.0
        self.awarded: str | None = None
        self.traced_from: float | None = None
        self.done = threading.Event()
        self.error: BaseException | None = None

    def before_frame(self, t: float) -> None:
        """Move the clock to camera time ``t``, making the pacing steps due on the way."""
        try:
            while self.steps / STEP_HZ <= t:
                self.clock.advance(self.start + self.steps / STEP_HZ - self.clock.now())
                self._timetable(self.steps / STEP_HZ)
                self.engine.step()
                self.steps += 1
                self._chores(self.steps / STEP_HZ)
            self.clock.advance(self.start + t - self.clock.now())
            if t >= DAY_S:
                self.done.set()
        except BaseException as exc:
            self.error = exc
            self.done.set()
            raise

    def _chores(self, elapsed: float) -> None:
        self._drain()
        if elapsed % WATCHDOG_EVERY_S == 0:
            self.watchdog.tick()
        if self.traced_from is None and elapsed >= WARM_UP_S:
            gc.collect()
            tracemalloc.start()
            self.traced_from = elapsed

    def _drain(self) -> None:
        """What the daemon's session watcher does: read every state, award finished ones."""
        while True:
            try:
                state = self.updates.get_nowait()
            except queue.Empty:
                return
            if state.status in ("completed", "stopped") and state.session_id != self.awarded:
                self.awarded = state.session_id
                self.finished += 1
                session_outcome(self.db_path, state.session_id, award=True)

    def _timetable(self, elapsed: float) -> None:
        """A session at each of ``SESSION_HOURS``; every second one is paused for a minute,
        every third stopped after four minutes; the rest run their five minutes."""
        if elapsed in SESSION_STARTS:
            self.engine.start("coherent", SESSION_MINUTES)
            self.sessions += 1
            self.session_started = elapsed
        if self.engine.status not in ACTIVE:
            return
        into = elapsed - self.session_started
        if self.sessions % 2 == 0 and into == 120.0:
            self.engine.pause()
        elif self.sessions % 2 == 0 and into == 180.0:
            self.engine.resume()
        elif self.sessions % 3 == 0 and into == 240.0:
            self.engine.stop()


def test_a_day_of_sessions_and_idle_hours_leaves_the_heap_flat(tmp_path):
    clock = FakeClock(start=1000.0)
    db_path = tmp_path / "breathe.db"
    outputs = PacingOutputs(Settings().pacing, pin_factory=MockFactory(pin_class=MockPWMPin))
    outputs.forget_mock_history_s = 60.0  # as the daemon does on mock pins
    engine = SessionEngine(db_path, clock, outputs=outputs)
    notifier = Notifier()
    day = Day(engine, Watchdog(lambda: [], notifier), db_path, clock)
    camera = PersonCamera(FPS, DAY_S, day.before_frame)
    live = LiveBreath(camera, PersonPipeline(), clock=clock)  # type: ignore[arg-type]
    engine.breath = live
    day.watchdog = Watchdog(DeviceStatus(tmp_path, appliance=SimpleNamespace(
        engine=engine, breath=live), version="test"), notifier)
    live.start()
    try:
        assert day.done.wait(600), "the day did not end"
        gc.collect()
        grown, _ = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:5]
    finally:
        tracemalloc.stop()
        live.stop()
        engine.close()
        outputs.close()
    assert day.error is None
    assert camera.stats.frames == round(DAY_S * FPS) + 1, "the camera ran the whole day"
    assert day.sessions == day.finished == len(SESSION_HOURS)
    assert notifier.last == "WATCHDOG=1", "the daemon looked alive to the watchdog"
    hours = (DAY_S - (day.traced_from or 0.0)) / 3600
    where = "\n".join(str(stat) for stat in top)
    print(f"traced heap growth over the last {hours:.0f} h: {grown / 1e6:.3f} MB")
    assert grown < MAX_GROWTH_BYTES, (
        f"the heap grew by {grown / 1e6:.2f} MB over {hours:.0f} h; most of it held at:\n"
        f"{where}")


def test_mock_pins_chosen_by_the_environment_forget_their_history_too(factory):
    """``GPIOZERO_PIN_FACTORY=mock`` (what the GPIO error advises off a Pi) records every LED
    change; the daemon's outputs keep only the last minute of it, as on the fallback pins."""
    from device.pacing.engine import PacingEngine
    from device.session.appliance import open_outputs
    from wire.patterns import builtin

    outputs = open_outputs(Settings().pacing, [])
    clock = FakeClock()
    pacing = PacingEngine(builtin("coherent"), clock)
    pacing.start()
    try:
        for _ in range(50 * 300):  # five minutes at 50 Hz
            clock.advance(0.02)
            outputs.tick(pacing.state(), pacing.poll_changes(), clock.now())
        kept = len(factory.pin(outputs.settings.led_pins[0]).states)
        assert outputs.on_mock_pins()
    finally:
        outputs.close()
    assert 0 < kept <= 50 * 60 + 1  # at most a minute of 50 Hz changes
