"""``breathe run`` / ``breathe session``: the appliance wiring, one session to its end, and the
achievements it earns. Sessions run on FakeClock; the end-to-end ones use the real demo person,
the real landmark backend and breath pipeline, stepped in the same fake time as the engine."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from gpiozero import PWMLED, Device

from common.config import load_config
from device.breath.live import LiveBreath
from device.breath.pipeline import BreathPipeline
from device.camera.base import Frame, SourceStats
from device.cli import main
from device.cli.session_cmd import status_line
from device.clock import FakeClock
from device.pacing.outputs import GPIOUnavailable
from device.session import appliance as appliance_mod
from device.session.appliance import build_appliance, run_session, session_outcome
from device.session.engine import SessionEngine
from device.simulator.demo_source import DemoSource
from device.store.achievements_repo import DEVICE_PROFILE_ID, list_achievements
from device.store.db import db_path_for, open_db
from device.store.sessions_repo import get_session
from wire.patterns import builtin

FPS = 15
KNOWN = ("box", "coherent", "energising", "energy", "mindfulness", "relaxation", "sleep")


class PulledBreath:
    """The breath side of the appliance, stepped in the engine's fake time.

    ``LiveBreath`` runs the camera on its own thread in real time; here each engine step first
    renders and measures every demo frame due by the clock's now, so camera and session share
    one FakeClock and a minute of session takes seconds.
    """

    def __init__(self, source: DemoSource, pipeline: BreathPipeline, clock: FakeClock) -> None:
        self.source, self.pipeline, self.clock = source, pipeline, clock
        self.frames = 0
        self._iter = None
        self._t0 = 0.0
        self._reading = None
        self._events: list = []

    def _pump(self) -> None:
        now = self.clock.now()
        if self._iter is None:
            self._t0, self._iter = now, self.source.frames()
        while self.frames / self.source.stats.fps <= now - self._t0 + 1e-9:
            frame = next(self._iter)
            self.frames += 1
            out = self.pipeline.process(frame.t, frame.image)
            self._reading = out.reading
            self._events += out.events

    def latest(self):
        self._pump()
        return self._reading

    def pop_events(self) -> list:
        events, self._events = self._events, []
        return events

    def status(self) -> SimpleNamespace:
        return SimpleNamespace(error=None)


@pytest.fixture
def settings():
    return load_config(None)


@pytest.fixture
def db_file(data_dir):
    return db_path_for(data_dir)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


def _demo_session(settings, db_file, clock, *, follows: bool) -> tuple[object, PulledBreath]:
    pattern = builtin("box")
    phases = tuple(seconds for _, seconds in pattern.phases)
    source = DemoSource(320, 240, FPS, clock=clock, pattern=phases if follows else None,
                        rate_bpm=14.0)
    breath = PulledBreath(source, BreathPipeline.from_settings(settings, FPS), clock)
    engine = SessionEngine(db_file, clock, breath=breath)
    try:
        return run_session(engine, "box", 1.0), breath
    finally:
        engine.close()


# -- end to end: the demo person, the real pipeline, the engine, the store -----------------------

def test_demo_person_following_the_guide_scores_high_and_earns_first_session(
        settings, db_file, clock):
    outcome, breath = _demo_session(settings, db_file, clock, follows=True)
    assert breath.frames >= 60 * FPS
    assert outcome.record.status == "completed"
    assert outcome.record.duration_s >= 60.0
    assert outcome.metrics.coverage > 0.9
    assert outcome.metrics.adherence is not None and outcome.metrics.adherence >= 0.65
    assert outcome.metrics.rate.median == pytest.approx(3.75, abs=0.5)  # box: 16 s a breath
    assert any(s.rule_id == "adherence" for s in outcome.insights.sentences)
    assert [a.kind for a in outcome.achievements] == ["first_session"]
    with open_db(db_file) as db:
        rows = list_achievements(db)
    assert [(r.kind, r.profile, r.session_id, r.mintable) for r in rows] == [
        ("first_session", DEVICE_PROFILE_ID, outcome.record.id, True)]


def test_demo_person_breathing_at_its_own_pace_scores_low(settings, db_file, clock):
    outcome, _ = _demo_session(settings, db_file, clock, follows=False)
    assert outcome.metrics.coverage > 0.9
    assert outcome.metrics.rate.median == pytest.approx(14.0, abs=1.5)
    assert outcome.metrics.adherence is not None and outcome.metrics.adherence <= 0.45
    adherence = next(s for s in outcome.insights.sentences if s.rule_id == "adherence")
    assert "only" in adherence.text


# -- run_session on FakeClock, pacing only ------------------------------------------------------

def test_first_session_is_stored_once_over_many_sessions(db_file, clock):
    engine = SessionEngine(db_file, clock)
    first = run_session(engine, "coherent", 1.05)
    second = run_session(engine, "coherent", 1.05)
    engine.close()
    assert first.record.status == second.record.status == "completed"
    assert [a.kind for a in first.achievements] == ["first_session"]
    assert second.achievements == []
    with open_db(db_file) as db:
        rows = list(db.query("SELECT kind, session_id, mintable FROM achievements"))
    assert rows == [{"kind": "first_session", "session_id": first.record.id, "mintable": 1}]


def test_sessions_under_a_minute_earn_nothing(db_file, clock):
    engine = SessionEngine(db_file, clock)
    outcome = run_session(engine, "box", 0.5)
    engine.close()
    assert outcome.record.duration_s == pytest.approx(30.0, abs=0.05)
    assert outcome.achievements == []
    with open_db(db_file) as db:
        assert list_achievements(db) == []


def test_ctrl_c_stops_the_session_and_keeps_it(db_file, clock):
    seen = []

    def interrupt_after_10s(state):
        seen.append(state)
        if state.elapsed >= 10.0:
            raise KeyboardInterrupt

    engine = SessionEngine(db_file, clock)
    outcome = run_session(engine, "box", 5.0, on_state=interrupt_after_10s)
    engine.close()
    assert outcome.record.status == "stopped"
    assert outcome.record.duration_s == pytest.approx(10.0, abs=0.05)
    assert seen[0].target_phase == "inhale" and seen[0].mode == "pacing-only"
    assert seen[0].reason == "no camera"


def test_stop_event_ends_the_session_as_stopped(db_file, clock):
    import threading

    stop = threading.Event()
    engine = SessionEngine(db_file, clock)
    outcome = run_session(engine, "box", 5.0, stop=stop,
                          on_state=lambda s: stop.set() if s.elapsed >= 3.0 else None)
    engine.close()
    assert outcome.record.status == "stopped"
    assert 3.0 <= outcome.record.duration_s < 3.1


class _Broken:
    """A camera that gives a few frames, then fails as an unplugged USB camera does."""

    name = "usb"

    def __init__(self) -> None:
        self.stats = SourceStats(fps=FPS)

    def frames(self):
        for i in range(3):
            yield Frame(t=i / FPS, image=np.zeros((48, 64, 3), np.uint8), index=i)
        raise OSError("device unplugged")

    def close(self) -> None:
        pass


def test_camera_lost_mid_session_paces_on_says_why_and_keeps_the_session(db_file, clock):
    live = LiveBreath(_Broken(), BreathPipeline(None, FPS)).start()
    deadline = time.monotonic() + 5
    while live.status().running and time.monotonic() < deadline:
        time.sleep(0.01)
    states = []
    engine = SessionEngine(db_file, clock, breath=live)
    outcome = run_session(engine, "box", 0.2, on_state=states.append)
    engine.close()
    live.stop()
    assert outcome.record.status == "completed"
    assert states and all(s.mode == "pacing-only" for s in states)
    assert states[-1].reason == "camera lost: usb: device unplugged"
    assert "camera lost: usb: device unplugged" in status_line(states[-1])
    with open_db(db_file) as db:
        assert get_session(db, outcome.record.id).status == "completed"


# -- the appliance wiring -------------------------------------------------------------------------

def test_button_starts_pauses_and_stops_sessions(settings, db_file, clock):
    app = build_appliance(settings, db_file, pattern=builtin("box"), pattern_id="box",
                          minutes=2.0, camera=False, clock=clock)
    button = app.outputs.button.pin

    def hold(seconds: float) -> None:
        button.drive_low()
        for _ in range(int(round(seconds / 0.02))):
            app.engine.step()
            clock.advance(0.02)
        button.drive_high()
        app.engine.step()
        clock.advance(0.02)

    try:
        assert "camera: off (--no-camera); pacing only" in app.notes
        assert app.engine.status == "idle"
        hold(0.2)
        assert app.engine.status == "running"
        assert app.engine.step().pattern_id == "box"
        hold(0.2)
        assert app.engine.status == "paused"
        hold(0.2)
        assert app.engine.status == "running"
        hold(2.1)
        assert app.engine.status == "stopped"
        session_id = app.engine.session_id
    finally:
        app.close()
    with open_db(db_file) as db:
        assert get_session(db, session_id).status == "stopped"


def test_without_a_gpio_pin_factory_mock_pins_are_used_and_said(settings, db_file, clock,
                                                                 monkeypatch):
    real = appliance_mod.PacingOutputs

    def no_hardware(pacing, *, pin_factory=None, **callbacks):
        if pin_factory is None:
            raise GPIOUnavailable("pacing.led_pins[0]: no GPIO pin factory for GPIO 18")
        return real(pacing, pin_factory=pin_factory, **callbacks)

    monkeypatch.setattr(appliance_mod, "PacingOutputs", no_hardware)
    app = build_appliance(settings, db_file, pattern=builtin("box"), camera=False, clock=clock)
    try:
        assert type(app.outputs.leds[0].pin_factory).__name__ == "MockFactory"
        assert any(n.startswith("GPIO: no Pi hardware found") and "mock GPIO" in n
                   for n in app.notes)
    finally:
        app.close()


# -- the CLI: bad input and help ------------------------------------------------------------------

@pytest.fixture
def cli(data_dir):
    return CliRunner()


@pytest.mark.parametrize("args", [["session", "start", "nope", "--no-camera"],
                                  ["run", "--pattern", "nope", "--no-camera"]])
def test_unknown_pattern_exits_2_listing_the_valid_ids(cli, args):
    result = cli.invoke(main, args)
    assert result.exit_code == 2
    assert "'nope'" in result.output
    for known in KNOWN:
        assert known in result.output


@pytest.mark.parametrize("minutes", ["0", "0.1", "-1", "241", "soon", "nan"])
@pytest.mark.parametrize("command", [["session", "start", "box"], ["run"]])
def test_bad_minutes_exit_2(cli, command, minutes):
    result = cli.invoke(main, [*command, "--no-camera", "--minutes", minutes])
    assert result.exit_code == 2
    assert "--minutes" in result.output


def test_a_gpio_pin_in_use_exits_2_naming_the_pin(cli):
    led = PWMLED(18, pin_factory=Device.pin_factory)  # something else holds the LED pin
    try:
        result = cli.invoke(main, ["session", "start", "box", "--no-camera"])
    finally:
        led.close()
    assert result.exit_code == 2
    assert "GPIO 18" in result.output and "pacing.led_pins[0]" in result.output


@pytest.mark.parametrize("command", [["run"], ["session"], ["session", "start"],
                                     ["session", "list"], ["session", "show"]])
def test_help_describes_each_command(cli, command):
    result = cli.invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "not available yet" not in result.output
    assert len(result.output.splitlines()) > 3


def test_session_list_and_show_read_the_store(cli, db_file, clock):
    engine = SessionEngine(db_file, clock)
    done = run_session(engine, "box", 0.25)
    engine.close()
    listed = cli.invoke(main, ["session", "list", "--json"])
    assert listed.exit_code == 0
    rows = json.loads(listed.output)
    assert [(r["id"], r["pattern_id"], r["status"]) for r in rows] == [
        (done.record.id, "box", "completed")]
    shown = cli.invoke(main, ["session", "show", done.record.id])
    assert shown.exit_code == 0
    assert "You practised Box breathing for 15 seconds" in shown.output
    as_json = json.loads(cli.invoke(main, ["session", "show", done.record.id, "--json"]).output)
    assert as_json["status"] == "completed" and as_json["duration_s"] == pytest.approx(15, 0.01)
    missing = cli.invoke(main, ["session", "show", "nope"])
    assert missing.exit_code == 2 and "'nope'" in missing.output


def test_outcome_of_a_stored_session_matches_what_the_run_returned(db_file, clock):
    engine = SessionEngine(db_file, clock)
    done = run_session(engine, "coherent", 0.5)
    engine.close()
    again = session_outcome(db_file, done.record.id, award=False)
    assert again.metrics == done.metrics
    assert again.insights == done.insights


def test_figures_come_only_from_breaths_after_start(settings, db_file, clock):
    """The demo person breathes freely at 12/min for 40 s, then Start on box (3.75/min): no
    rate from the 12/min breaths may show live or reach the summary (it used to be the first
    rate shown, and the summary's max and trend)."""
    source = DemoSource(320, 240, FPS, clock=clock, rate_bpm=12.0)
    breath = PulledBreath(source, BreathPipeline.from_settings(settings, FPS), clock)
    engine = SessionEngine(db_file, clock, breath=breath)
    try:
        for _ in range(40 * 50):
            engine.step()
            clock.advance(0.02)
        assert breath.latest().rate_bpm == pytest.approx(12.0, abs=1.5)  # before Start
        engine.start("box", 1.0)
        source.set_pattern(tuple(seconds for _, seconds in builtin("box").phases))
        rates = []
        while engine.status == "running":
            rates.append(engine.step().rate)
            clock.advance(0.02)
        shown = [r for r in rates if r is not None]
        assert rates[0] is None and shown  # nothing carried over; a rate of its own later
        assert max(shown) == pytest.approx(3.75, abs=0.5)
        record = get_session(open_db(db_file), engine.session_id)
    finally:
        engine.close()
    rate = record.metrics["rate"]
    assert rate["max"] == pytest.approx(3.75, abs=0.5)
    assert rate["median"] == pytest.approx(3.75, abs=0.3)
    assert abs(rate["trend_bpm_per_min"] or 0.0) < 1.0
