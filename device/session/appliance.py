"""Wiring the appliance together, and running one session on it to the end.

:func:`build_appliance` is the one place that picks the camera (demo person, config source, or
none), the breath pipeline, the GPIO outputs (real pins, else gpiozero's mock pins, said
clearly) and makes the :class:`SessionEngine` with the button wired to it. ``breathe run`` and
``breathe session start`` use it today; the web app (a later issue) takes the same
``Appliance.engine`` and drives it through start / pause / resume / stop and ``subscribe``.

:func:`run_session` steps the engine on its clock until the session ends (time up, button
hold, ``stop`` event or Ctrl-C) and returns the :class:`SessionOutcome`: the stored record,
its metrics, the insights and the achievements it newly earned (stored once each).
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from device.clock import Clock, MonotonicClock
from device.pacing.outputs import GPIOUnavailable, PacingOutputs
from device.session.engine import STEP_HZ, SessionEngine
from device.session.history import HistoryEntry, new_achievements
from device.session.insights import Insights, build_insights
from device.session.live_state import ACTIVE, LiveState
from device.store.achievements_repo import (
    DEVICE_PROFILE_ID,
    AchievementRecord,
    NewAchievement,
    held_kinds,
    owner_of,
    store_achievements,
)
from device.store.db import open_db
from device.store.sessions_repo import FINAL_STATUSES, SessionRecord, get_session, list_sessions
from wire.metrics import SessionMetrics
from wire.patterns import Pattern

log = logging.getLogger(__name__)

HISTORY_PAGE = 500
DEFAULT_PATTERN = "coherent"


@dataclass
class Appliance:
    """The running parts; ``notes`` say what was chosen and why (shown at start)."""

    engine: SessionEngine
    breath: Any | None = None  # LiveBreath, or None: pacing only
    outputs: PacingOutputs | None = None
    notes: list[str] = field(default_factory=list)

    def follow(self, pattern: Pattern) -> None:
        """The demo person starts following ``pattern`` now, as a person follows the light."""
        source = getattr(self.breath, "source", None)
        if getattr(source, "name", None) == "demo" and hasattr(source, "set_pattern"):
            source.set_pattern(tuple(seconds for _, seconds in pattern.phases))

    def close(self) -> None:
        """Keep any session still running (as interrupted), outputs off, camera closed."""
        try:
            self.engine.close()
        finally:
            if self.breath is not None:
                self.breath.stop()
            if self.outputs is not None:
                self.outputs.close()


def open_outputs(settings: Any, notes: list[str], **callbacks: Any) -> PacingOutputs:
    """Real GPIO when gpiozero finds a pin factory; else mock pins, and a note saying so.

    A pin already in use raises :class:`PinInUse` (bad input, exit 2) naming the pin.
    """
    from gpiozero.exc import PinFactoryFallback

    try:
        with warnings.catch_warnings():  # gpiozero warns per factory tried; the note says it
            warnings.simplefilter("ignore", PinFactoryFallback)
            outputs = PacingOutputs(settings, **callbacks)
    except GPIOUnavailable as exc:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        notes.append(f"GPIO: no Pi hardware found ({exc}); using mock GPIO pins, "
                     "the LED, motor and button are simulated")
        outputs = PacingOutputs(settings, pin_factory=MockFactory(pin_class=MockPWMPin),
                                **callbacks)
    if outputs.on_mock_pins():  # GPIOZERO_PIN_FACTORY=mock, or no Pi hardware found
        outputs.forget_mock_history_s = 60.0  # nobody reads the simulated pins' history
    return outputs


def open_breath(settings: Any, demo: bool, pattern: Pattern | None, notes: list[str]) -> Any:
    """Camera + landmarks + breath pipeline in a thread; None (pacing only) if it cannot."""
    from device.breath.live import LiveBreath
    from device.breath.pipeline import BreathPipeline
    from device.session.sources import open_source
    from device.vision.factory import backend_from_settings

    cam = settings.camera
    spec = "demo" if demo else cam.source
    phases = tuple(seconds for _, seconds in pattern.phases) if pattern else None
    try:
        source = open_source(spec, width=cam.width, height=cam.height, fps=cam.fps,
                             demo_pattern=phases, realtime=True, loop=True)
        backend = backend_from_settings(settings.vision)
    except Exception as exc:  # noqa: BLE001 - pacing goes on without a camera, and says why
        log.warning("camera unavailable, pacing only: %s", exc)
        notes.append(f"camera: unavailable ({exc}); pacing only, no measurement")
        return None
    if source.name == "demo":
        notes.append("camera: the demo person, a synthetic breathing person (--demo or "
                     "camera.source = \"demo\")")
    else:
        notes.append(f"camera: {source.name}")
    pipeline = BreathPipeline.from_settings(settings, source.stats.fps or cam.fps, backend)

    def reopen() -> tuple[Any, BreathPipeline]:
        """A frozen or failed camera is closed and opened again (LiveBreath backs off)."""
        fresh = open_source(spec, width=cam.width, height=cam.height, fps=cam.fps,
                            demo_pattern=phases, realtime=True, loop=True)
        return fresh, BreathPipeline.from_settings(settings, fresh.stats.fps or cam.fps, backend)

    return LiveBreath(source, pipeline, reopen=reopen).start()


def button_actions(
    engine: SessionEngine, pattern_id: str, minutes: float,
    on_start: Callable[[], None] | None = None,
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(on_toggle, on_stop): a press starts a session when none runs, else pauses / resumes;
    a hold stops. Never raises inside the engine's step."""

    def toggle() -> None:
        if engine.status in ACTIVE:
            engine.toggle()
        else:
            engine.start(pattern_id, minutes)
            if on_start is not None:
                on_start()

    def stop() -> None:
        if engine.status in ACTIVE:
            engine.stop()

    return toggle, stop


def build_appliance(
    settings: Any,
    db_path: str | Path,
    *,
    pattern: Pattern | None,
    pattern_id: str = DEFAULT_PATTERN,
    minutes: float = 10.0,
    camera: bool = True,
    demo: bool = False,
    gpio: bool = True,
    clock: Clock | None = None,
) -> Appliance:
    """Everything ``breathe run`` needs, in one object the web app can reuse later.

    ``pattern`` is what the demo person follows; ``pattern_id`` / ``minutes`` are what a
    button press starts when no session runs.
    """
    notes: list[str] = []
    breath = open_breath(settings, demo, pattern, notes) if camera else None
    if not camera:
        notes.append("camera: off (--no-camera); pacing only")
    outputs = None
    # the button's callbacks need the engine, and the engine needs the outputs
    actions: dict[str, Callable[[], None]] = {}
    try:
        if gpio:
            outputs = open_outputs(settings.pacing, notes,
                                   on_toggle=lambda: actions["toggle"](),
                                   on_stop=lambda: actions["stop"]())
        engine = SessionEngine(db_path, clock or MonotonicClock(), outputs=outputs,
                               breath=breath, device_id=settings.device.id,
                               privacy=settings.privacy)
    except BaseException:
        if breath is not None:
            breath.stop()
        if outputs is not None:
            outputs.close()
        raise
    app = Appliance(engine, breath, outputs, notes)
    follow = (lambda: app.follow(pattern)) if pattern is not None else None
    actions["toggle"], actions["stop"] = button_actions(engine, pattern_id, minutes, follow)
    if engine.recovered:
        notes.append(f"store: {engine.recovered} session(s) left running by a crash were kept "
                     "as interrupted")
    return app


@dataclass(frozen=True)
class SessionOutcome:
    record: SessionRecord
    metrics: SessionMetrics
    insights: Insights
    achievements: list[AchievementRecord]

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "id": r.id,
            "pattern_id": r.pattern_id,
            "pattern": r.pattern.model_dump(mode="json") if r.pattern else None,
            "started": r.started,
            "ended": r.ended,
            "status": r.status,
            "duration_s": r.duration_s,
            "metrics": self.metrics.to_dict(),
            "insights": self.insights.to_dict(),
            "new_achievements": [
                {"kind": a.kind, "earned_at": a.earned_at, "mintable": a.mintable}
                for a in self.achievements
            ],
        }


def run_session(
    engine: SessionEngine,
    pattern_id: str,
    minutes: float,
    *,
    on_state: Callable[[LiveState], None] | None = None,
    on_start: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    hz: float = STEP_HZ,
) -> SessionOutcome:
    """Start a session and step ``engine`` on its clock until it ends; then its outcome.

    Ctrl-C (KeyboardInterrupt) or ``stop`` end it early as ``stopped``; the time running out
    ends it as ``completed``. Steps keep to a fixed grid of clock time; late steps are skipped.
    """
    clock = engine.clock
    state = engine.start(pattern_id, minutes)
    if on_start is not None:
        on_start()
    session_id = state.session_id
    assert session_id is not None
    period = 1.0 / hz
    start, k = clock.now(), 0
    try:
        while engine.status in ACTIVE and engine.session_id == session_id:
            if stop is not None and stop.is_set():
                engine.stop()
                break
            state = engine.step()
            if on_state is not None:
                on_state(state)
            k += 1
            now = clock.now()
            if start + k * period < now:
                k = math.ceil((now - start) / period)
            clock.sleep(start + k * period - now)
    except KeyboardInterrupt:
        if engine.status in ACTIVE and engine.session_id == session_id:
            engine.stop()
    return session_outcome(engine.db_path, session_id)


def session_outcome(db_path: str | Path, session_id: str, *, award: bool = True
                    ) -> SessionOutcome:
    """Read a session back and build its insights; with ``award``, store the achievements
    a finished session newly earned (and list them)."""
    db = open_db(db_path)
    try:
        record = get_session(db, session_id)
        metrics = SessionMetrics.from_dict(record.metrics)
        finished = award and record.status in FINAL_STATUSES
        earned = award_achievements(db, record.profile) if finished else []
    finally:
        db.close()
    pattern = record.pattern
    if pattern is None:  # the pattern row was deleted and no snapshot exists
        from wire.patterns import builtin

        pattern = builtin(DEFAULT_PATTERN)
    return SessionOutcome(record, metrics, build_insights(metrics, pattern, record.pattern_id),
                          earned)


def history_of(db: Any, profile: str | None) -> list[HistoryEntry]:
    """Every finished session of ``profile`` (None: the device's own), as history entries."""
    tz = datetime.now().astimezone().tzinfo
    entries: list[HistoryEntry] = []
    offset = 0
    while True:
        page = list_sessions(db, profile=profile, limit=HISTORY_PAGE, offset=offset)
        entries += [HistoryEntry.from_record(r, tz) for r in page
                    if r.profile == profile and r.status in FINAL_STATUSES]
        if len(page) < HISTORY_PAGE:
            return entries
        offset += HISTORY_PAGE


def award_achievements(db: Any, profile: str | None) -> list[AchievementRecord]:
    """Store the achievements the history has earned and the profile does not hold yet."""
    entries = history_of(db, profile)
    fresh = new_achievements(entries, held_kinds(db, profile or DEVICE_PROFILE_ID))
    if not fresh:
        return []
    rows = [NewAchievement(a.kind, a.earned_at, a.session_id, a.mintable) for a in fresh]
    return store_achievements(db, owner_of(db, profile), rows)
