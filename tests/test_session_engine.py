"""The live session engine, driven by FakeClock and synthetic people (no sleeps, no camera)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from common.config import PacingSettings
from common.errors import BadInput
from device.breath.types import BreathEvent, BreathReading
from device.clock import FakeClock
from device.pacing.engine import state_at
from device.pacing.outputs import PacingOutputs
from device.session.engine import CHECKPOINT_S, SessionConflict, SessionEngine
from device.store.db import open_db
from device.store.outbox_repo import pending
from device.store.sessions_repo import get_session, session_timeline
from wire.patterns import builtin

HZ = 50
MEASURED = {"inhale": "inhale", "exhale": "exhale", "hold_in": "hold", "hold_out": "hold"}
CAMERA_OFFSET = 1000.0  # camera timestamps on their own scale, as a real source's may be


class Person:
    """A synthetic person in front of the camera, breathing by ``phase_at(seconds since t0)``."""

    def __init__(self, clock: FakeClock, phase_at, *, rate: float = 6.0) -> None:
        self.clock, self.phase_at, self.rate = clock, phase_at, rate
        self.t0 = clock.now()
        self.present = True
        self.error: str | None = None
        self._last_phase: str | None = None
        self._events: list[BreathEvent] = []

    def latest(self) -> BreathReading:
        t = self.clock.now()
        phase = self.phase_at(t - self.t0) if self.present else None
        if self._last_phase and phase != self._last_phase and phase in ("inhale", "exhale"):
            cam_t = t + CAMERA_OFFSET
            self._events.append(BreathEvent(f"{phase}_start", cam_t, cam_t))
        self._last_phase = phase
        return BreathReading(t=t + CAMERA_OFFSET, phase=phase,
                             rate_bpm=self.rate if phase else None,
                             quality=0.9 if phase else 0.0, displacement=0.0,
                             present=self.present, still=True)

    def status(self) -> SimpleNamespace:
        return SimpleNamespace(error=self.error)

    def pop_events(self) -> list[BreathEvent]:
        events, self._events = self._events, []
        return events


def follower(clock: FakeClock, pattern_id: str = "box", lag: float = 0.3) -> Person:
    """Follows the guide, ``lag`` seconds behind."""
    pattern = builtin(pattern_id)
    return Person(clock, lambda s: MEASURED[state_at(pattern, max(0.0, s - lag)).phase],
                  rate=pattern.breaths_per_minute)


def own_pace(clock: FakeClock, bpm: float = 11.0) -> Person:
    """Breathes evenly at its own rate, never holding."""
    period = 60.0 / bpm
    return Person(clock, lambda s: "inhale" if s % period < period / 2 else "exhale", rate=bpm)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


@pytest.fixture
def db_path(tmp_path):
    """A store whose owner shares session metrics (without consent nothing is enqueued)."""
    from common.config.models import PrivacySettings
    from device.privacy import save_privacy
    from device.store import open_db

    path = tmp_path / "breathe.db"
    db = open_db(path)
    try:
        save_privacy(db, PrivacySettings(share_metrics=True))
    finally:
        db.close()
    return path


def run(engine: SessionEngine, clock: FakeClock, seconds: float, hz: float = HZ) -> list:
    """Advance the clock and step, ``hz`` times per second; returns the states made."""
    states = []
    for _ in range(round(seconds * hz)):
        clock.advance(1.0 / hz)
        states.append(engine.step())
    return states


def stored(db_path, session_id):
    db = open_db(db_path)
    try:
        return get_session(db, session_id), session_timeline(db, session_id), pending(db)
    finally:
        db.close()


def test_state_transitions_and_illegal_commands(db_path, clock):
    engine = SessionEngine(db_path, clock)
    assert engine.status == "idle"
    for command in (engine.pause, engine.resume, engine.stop, engine.toggle):
        with pytest.raises(SessionConflict, match=r"while the session engine is idle.*allowed"):
            command()
    engine.start("box", 1)
    assert engine.status == "running"
    with pytest.raises(SessionConflict, match=r"start: .* running \(session .*stop it first"):
        engine.start("box", 1)
    with pytest.raises(SessionConflict, match="resume"):
        engine.resume()
    run(engine, clock, 3)
    assert engine.pause().status == "paused"
    with pytest.raises(SessionConflict, match="pause"):
        engine.pause()
    frozen = engine.step().elapsed
    run(engine, clock, 10)  # paused time does not count
    assert engine.step().elapsed == frozen == pytest.approx(3.0)
    assert engine.toggle().status == "running"
    run(engine, clock, 1)
    assert engine.state.elapsed == pytest.approx(4.0)
    final = engine.stop()
    assert final.status == engine.status == "stopped"
    with pytest.raises(SessionConflict, match="stopped"):
        engine.stop()
    record, timeline, outbox = stored(db_path, final.session_id)
    assert record.status == "stopped" and record.duration_s == pytest.approx(4.0)
    assert [p.second for p in timeline][:4] == [0, 1, 2, 3] and len(timeline) <= 5
    assert [m.id for m in outbox] == [final.session_id]
    assert engine.start("coherent", 0.5).status == "running"  # the next session may start


def test_unknown_pattern_or_duration_is_refused_listing_what_is_allowed(db_path, clock):
    engine = SessionEngine(db_path, clock)
    with pytest.raises(BadInput, match=r"no pattern with id 'squarebreath'.*box.*coherent"):
        engine.start("squarebreath", 1)
    for minutes in (0, -1, float("nan"), 10_000, True):
        with pytest.raises(BadInput, match=r"minutes: .*at most 240"):
            engine.start("box", minutes)
    assert engine.status == "idle"


def test_start_accepts_a_pattern_equal_to_a_stored_one(db_path, clock):
    engine = SessionEngine(db_path, clock)
    assert engine.start(builtin("relaxation"), 1).pattern_id == "relaxation"
    engine.stop()
    unsaved = builtin("box").model_copy(update={"name": "odd", "inhale": 7.25})
    with pytest.raises(BadInput, match=r"'odd' \(7.25-4-4-4\) is not stored.*known: box"):
        engine.start(unsaved, 1)


def test_a_person_following_the_guide_scores_high_adherence(db_path, clock):
    engine = SessionEngine(db_path, clock, breath=follower(clock))
    engine.start("box", 1)
    states = run(engine, clock, 61)
    final = engine.state
    assert final.status == "completed" and engine.session_id == final.session_id
    assert final.elapsed == 60.0 and final.remaining == 0.0
    assert max(s.cycle for s in states) == 3  # 4 box cycles of 16 s, 0-based, cut at 60 s
    assert {s.mode for s in states if s.status == "running"} == {"measuring"}
    assert final.adherence > 0.95 and final.coverage > 0.95
    record, timeline, outbox = stored(db_path, final.session_id)
    assert record.status == "completed" and record.duration_s == 60.0
    metrics = record.metrics
    assert metrics["adherence"] > 0.95 and metrics["cycles_completed"] == 3
    assert metrics["rate"]["median"] == pytest.approx(3.75)
    # events came on camera time and were moved to session time: onsets ≈ the 0.3 s lag
    assert metrics["onset"]["inhale_count"] == 3  # at 16.3, 32.3 and 48.3 s
    assert metrics["onset"]["inhale_mean_s"] == pytest.approx(0.3, abs=0.03)
    assert [p.second for p in timeline] == list(range(61))
    assert timeline[5].target_phase == "hold_in" and timeline[5].measured_phase == "hold"
    (message,) = outbox
    assert message.topic == "breathe/v1/breathe-local/sessions"
    assert message.payload["id"] == final.session_id
    assert message.payload["status"] == "completed"
    assert message.payload["metrics"] == metrics


def test_a_person_breathing_at_their_own_pace_scores_low_adherence(db_path, clock):
    engine = SessionEngine(db_path, clock, breath=own_pace(clock), device_id="pi-7")
    engine.start("box", 1)
    run(engine, clock, 61)
    assert engine.state.status == "completed"
    assert engine.state.adherence < 0.4
    record, _, outbox = stored(db_path, engine.session_id)
    assert record.metrics["adherence"] < 0.4 and record.metrics["coverage"] > 0.95
    assert outbox[0].topic == "breathe/v1/pi-7/sessions"


def test_without_a_camera_it_paces_on_and_says_so(db_path, clock):
    engine = SessionEngine(db_path, clock, breath=None)
    engine.start("box", 0.5)
    states = run(engine, clock, 31)
    running = [s for s in states if s.status == "running"]
    assert running and {(s.mode, s.reason) for s in running} == {("pacing-only", "no camera")}
    assert {s.target_phase for s in running} == {"inhale", "hold_in", "exhale", "hold_out"}
    assert engine.state.status == "completed"
    record, timeline, _ = stored(db_path, engine.session_id)
    assert record.metrics["coverage"] == 0.0 and record.metrics["adherence"] is None
    assert len(timeline) == 31 and all(p.measured_phase is None for p in timeline)


def test_person_leaving_and_camera_lost_switch_to_pacing_only_and_keep_the_session(
    db_path, clock
):
    person = follower(clock)
    engine = SessionEngine(db_path, clock, breath=person)
    engine.start("box", 1)
    assert run(engine, clock, 10)[-1].mode == "measuring"
    person.present = False
    state = run(engine, clock, 10)[-1]
    assert (state.mode, state.reason, state.measured_phase) == (
        "pacing-only", "no person in view", None)
    person.present = True
    assert run(engine, clock, 10)[-1].mode == "measuring"
    person.error = "demo: the camera stopped delivering frames"
    state = run(engine, clock, 5)[-1]
    assert state.status == "running" and state.mode == "pacing-only"
    assert state.reason == "camera lost: demo: the camera stopped delivering frames"
    run(engine, clock, 30)
    assert engine.state.status == "completed"
    record, _, _ = stored(db_path, engine.session_id)
    # the camera read 20 of the 60 s: coverage says so; adherence counts only read time
    assert record.metrics["coverage"] == pytest.approx(20 / 60, abs=0.02)
    assert record.metrics["adherence"] > 0.95


def test_checkpoints_keep_the_store_within_5_s_of_the_session(db_path, clock):
    engine = SessionEngine(db_path, clock, breath=follower(clock))
    engine.start("box", 1)
    session_id = engine.session_id
    gaps = []
    for _ in range(110):  # 55 s, looking at the store every 0.5 s
        state = run(engine, clock, 0.5)[-1]
        record, timeline, _ = stored(db_path, session_id)
        assert record.status == "running"
        gaps.append(state.elapsed - record.duration_s)
        if record.duration_s:
            assert timeline[-1].second >= int(record.duration_s) - 1
            assert all(p.measured_phase for p in timeline[:-1])
    assert max(gaps) <= 5.0
    assert engine.checkpoints == int(55 / CHECKPOINT_S)


def test_a_killed_session_is_interrupted_with_everything_up_to_its_last_checkpoint(
    db_path, clock
):
    engine = SessionEngine(db_path, clock, breath=follower(clock))
    engine.start("box", 5)
    run(engine, clock, 12)  # checkpoints at 4.5 and 9.0 s; the last 3 s are never saved
    session_id = engine.session_id
    del engine  # kill -9: no stop, no close
    record, timeline, outbox = stored(db_path, session_id)
    assert record.status == "running" and record.duration_s == pytest.approx(9.0)

    again = SessionEngine(db_path, FakeClock())
    assert again.recovered == 1
    record, timeline, outbox = stored(db_path, session_id)
    assert record.status == "interrupted" and record.ended is not None
    assert record.duration_s == pytest.approx(9.0)
    # seconds 0..8 whole, and second 9 if its first sample came before the checkpoint
    assert [p.second for p in timeline][:9] == list(range(9)) and len(timeline) <= 10
    assert record.metrics["adherence"] > 0.95
    # the owner shares metrics, so the kept part still reaches the relay
    assert [(m.id, m.payload["status"]) for m in outbox] == [(session_id, "interrupted")]
    assert again.status == "idle"
    assert SessionEngine(db_path, FakeClock()).recovered == 0


def test_close_keeps_a_session_in_progress_as_interrupted(db_path, clock):
    engine = SessionEngine(db_path, clock)
    engine.start("box", 1)
    run(engine, clock, 7)
    engine.close()
    assert engine.status == "interrupted"
    record, timeline, outbox = stored(db_path, engine.session_id)
    assert record.status == "interrupted" and record.duration_s == pytest.approx(7.0)
    assert [p.second for p in timeline][:7] == list(range(7)) and len(timeline) <= 8
    assert outbox[0].payload["status"] == "interrupted"


def test_subscribers_get_the_live_state_at_10_hz_and_every_status_change(db_path, clock):
    engine = SessionEngine(db_path, clock, breath=follower(clock))
    q = engine.subscribe(maxsize=10_000)
    engine.start("box", 1)
    run(engine, clock, 10)
    engine.pause()
    got = [q.get_nowait() for _ in range(q.qsize())]
    assert got[0].status == "running" and got[0].elapsed == 0.0 and got[-1].status == "paused"
    times = [s.t for s in got]
    assert len(got) >= 10 * 10 + 2
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) <= 0.1 + 1e-6
    assert got[50].to_dict()["measured_phase"] in ("inhale", "hold", "exhale")
    engine.unsubscribe(q)
    engine.resume()
    run(engine, clock, 1)
    assert q.empty()


def test_stepping_at_10_hz_still_publishes_every_step(db_path, clock):
    engine = SessionEngine(db_path, clock)
    q = engine.subscribe(maxsize=10_000)
    engine.start("box", 1)
    run(engine, clock, 5, hz=10)
    assert q.qsize() == 1 + 50


def test_a_slow_subscriber_keeps_the_newest_states(db_path, clock):
    engine = SessionEngine(db_path, clock)
    q = engine.subscribe(maxsize=3)
    engine.start("box", 1)
    run(engine, clock, 5)
    got = [q.get_nowait() for _ in range(3)]
    assert got[-1] == engine.state and q.empty()


def test_run_forever_steps_at_50_hz_until_told_to_stop(db_path, clock):
    stop = threading.Event()
    person = follower(clock)
    inner = person.latest

    def latest():  # the test's way to set the event at 15 s of clock time
        if clock.now() >= 115.0:
            stop.set()
        return inner()

    person.latest = latest
    engine = SessionEngine(db_path, clock, breath=person)
    engine.start("box", 0.2)
    steps = engine.run_forever(stop)
    assert steps == 15 * HZ + 1
    assert engine.state.status == "completed" and engine.state.elapsed == 12.0




def test_outputs_follow_the_session_and_the_button_controls_it(db_path, clock, factory):
    settings = PacingSettings(led_pins=[18], haptic_pin=13, button_pin=17, led_update_hz=50)
    with PacingOutputs(settings) as out:
        engine = SessionEngine(db_path, clock, outputs=out)
        out.on_toggle, out.on_stop = engine.toggle, engine.stop
        engine.start("box", 1)
        run(engine, clock, 8)
        led = [s.state for s in factory.pin(18).states]
        assert max(led) == pytest.approx(1.0) and led[-1] == pytest.approx(1.0)  # hold_in
        assert any(s.state > 0 for s in factory.pin(13).states)  # inhale and hold cues
        button = factory.pin(17)
        button.drive_low()
        run(engine, clock, 0.2)
        button.drive_high()
        run(engine, clock, 0.2)
        assert engine.status == "paused"
        button.drive_low()
        run(engine, clock, 2.1)  # held 2 s: stop
        assert engine.status == "stopped"
        button.drive_high()
        run(engine, clock, 1)
        assert factory.pin(18).state == 0 and factory.pin(13).state == 0
        assert stored(db_path, engine.session_id)[0].status == "stopped"


KILLED_CHILD = """
import os, signal, sys
from device.clock import FakeClock
from device.session.engine import SessionEngine
clock = FakeClock()
engine = SessionEngine(sys.argv[1], clock)
engine.start("box", 5)
print(engine.session_id, flush=True)
for _ in range(12 * 50):
    clock.advance(0.02)
    engine.step()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_real_kill_9_loses_only_what_came_after_the_last_checkpoint(db_path):
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(db_path)],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    session_id = child.stdout.strip()
    SessionEngine(db_path, FakeClock())
    record, timeline, _ = stored(db_path, session_id)
    assert record.status == "interrupted" and record.duration_s == pytest.approx(9.0)
    assert [p.second for p in timeline][:9] == list(range(9))


def test_commands_from_another_thread_while_the_loop_runs(db_path):
    clock = FakeClock()
    engine = SessionEngine(db_path, clock)
    q = engine.subscribe(maxsize=100_000)
    engine.start("box", 240)  # long: this thread may be slow to get its turn
    stop = threading.Event()
    loop = threading.Thread(target=engine.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        while q.get(timeout=10).elapsed < 6.0:
            pass
        final = engine.stop()  # this thread, its own database connection
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive() and final.status == "stopped"
    record, _, outbox = stored(db_path, final.session_id)
    assert record.status == "stopped" and record.duration_s >= 6.0 and len(outbox) == 1
