"""The live session engine: one session at a time, pacing + breath + outputs + store.

The appliance's loop calls :meth:`SessionEngine.step` (or :meth:`run_forever`) at ``STEP_HZ``;
each step reads the pacing state and the camera's latest reading, drives the LED and motor,
adds a metrics sample, checkpoints, and ends the session when its time is up. Commands
(``start`` / ``pause`` / ``resume`` / ``stop``) may come from other threads (web requests, the
button inside ``outputs.tick``): everything runs under one re-entrant lock.

States: idle → running ⇄ paused → completed | stopped | interrupted; a finished engine may
start the next session. Illegal commands raise :class:`SessionConflict` (a ``BadInput``)
saying what state the engine is in and what is allowed.

Cadence (the session loop owns time, through a :class:`device.clock.Clock`):
- steps at ``STEP_HZ`` = 50 Hz, what the LED fades need;
- live state is published on a ``1 / publish_hz`` grid of clock time (10 Hz default: every 5th
  step at 50 Hz, every step at 10 Hz), plus immediately on every status change;
- checkpoints every ``CHECKPOINT_S`` = 4.5 s of clock time while running, and on pause, so a
  kill -9 loses under 5 s. What is written, and how, lives in :mod:`device.session.persist`.

Breath events carry camera time; they are moved onto the session's active time by their age
relative to the latest reading (``elapsed - (reading.t - event.t)``). Events that arrive while
paused are dropped.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from dataclasses import replace
from pathlib import Path

from common.config.models import PrivacySettings
from common.errors import BadInput
from device.breath.types import BreathReading
from device.clock import Clock
from device.pacing.engine import PacingEngine, PacingState
from device.session import persist
from device.session.live_state import (
    ACTIVE,
    BreathSource,
    LiveState,
    Mode,
    Outputs,
    SessionStatus,
    events_on_session_time,
    pop_events,
    read_breath,
)
from device.session.metrics import MetricsAccumulator, Sample
from device.session.persist import SCHEMA_VERSION as SCHEMA_VERSION
from device.session.persist import LiveSession as _Live
from wire.patterns import Pattern

log = logging.getLogger(__name__)

STEP_HZ = 50.0
PUBLISH_HZ = 10.0
CHECKPOINT_S = 4.5
MAX_MINUTES = 240.0
SUBSCRIBER_QUEUE = 64  # states kept for a slow subscriber; the oldest are dropped first
TIME_EPS = 1e-6  # clock sums such as 5 × 0.02 land a hair either side of 0.1


class SessionConflict(BadInput):
    """A command that does not fit the session's current state (e.g. pause while idle)."""


def _check_minutes(minutes: object) -> float:
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or not math.isfinite(minutes)
        or not 0 < minutes <= MAX_MINUTES
    ):
        raise BadInput(
            f"minutes: must be a number of minutes above 0 and at most {MAX_MINUTES:g} "
            f"(got {minutes!r})"
        )
    return float(minutes)


class SessionEngine:
    """One live session at a time over the database at ``db_path``, on ``clock``.

    ``outputs``: LED/motor/button (``PacingOutputs``) or None (headless). ``breath``: the live
    measurement (``LiveBreath``) or None (no camera: pacing-only). On construction any session
    a crash left ``running`` is marked ``interrupted`` (``recovered`` says how many).
    """

    def __init__(
        self,
        db_path: str | Path,
        clock: Clock,
        *,
        outputs: Outputs | None = None,
        breath: BreathSource | None = None,
        device_id: str = "breathe-local",
        privacy: PrivacySettings | None = None,
        publish_hz: float = PUBLISH_HZ,
        checkpoint_s: float = CHECKPOINT_S,
    ) -> None:
        if not publish_hz > 0 or not checkpoint_s > 0:
            raise BadInput(
                f"publish_hz and checkpoint_s must be above 0 (got {publish_hz!r}, "
                f"{checkpoint_s!r})"
            )
        self.db_path = Path(db_path)
        self.clock = clock
        self.outputs = outputs
        self.breath = breath
        self.device_id = device_id
        self.privacy = privacy  # the config's [privacy] defaults: does a session leave?
        self.publish_interval = 1.0 / publish_hz
        self.checkpoint_s = checkpoint_s
        self.recovered = persist.recover(self.db_path, device_id=device_id,
                                         privacy=privacy)  # also migrates a fresh file, once
        if self.recovered:
            log.warning("marked %d session(s) left running as interrupted", self.recovered)
        self._lock = threading.RLock()
        self._status: SessionStatus = "idle"
        self._live: _Live | None = None
        self._state = LiveState(status="idle", t=clock.now())
        self._final: LiveState | None = None  # the last session's closing state
        self._subscribers: list[queue.Queue[LiveState]] = []
        self._next_publish: float | None = None
        self.last_step_at: float | None = None  # clock seconds of the last step (watchdog)

    # -- reading the state ------------------------------------------------------------------

    @property
    def status(self) -> SessionStatus:
        return self._status

    @property
    def state(self) -> LiveState:
        """The state made by the latest step or command."""
        return self._state

    @property
    def session_id(self) -> str | None:
        """The session in progress, or the last one finished."""
        with self._lock:
            if self._live is not None:
                return self._live.id
            return self._final.session_id if self._final is not None else None

    @property
    def checkpoints(self) -> int:
        """Checkpoints written for the session in progress."""
        with self._lock:
            return self._live.checkpoints if self._live else 0

    # -- subscribers --------------------------------------------------------------------------

    def subscribe(self, maxsize: int = SUBSCRIBER_QUEUE) -> queue.Queue[LiveState]:
        """A queue that receives every published :class:`LiveState` (oldest dropped if full)."""
        q: queue.Queue[LiveState] = queue.Queue(maxsize=maxsize)
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[LiveState]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def _publish(self, state: LiveState, *, force: bool = False) -> None:
        now = state.t
        if not force and self._next_publish is not None and now < self._next_publish - TIME_EPS:
            return
        # keep to a fixed grid so the rate does not drift; rejoin it after a stall
        base = now if self._next_publish is None else self._next_publish
        self._next_publish = base + self.publish_interval
        if self._next_publish <= now:
            self._next_publish = now + self.publish_interval
        for q in list(self._subscribers):
            while True:
                try:
                    q.put_nowait(state)
                    break
                except queue.Full:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    # -- commands -----------------------------------------------------------------------------

    def _conflict(self, command: str, allowed: str) -> SessionConflict:
        where = f" (session {self._live.id})" if self._live else ""
        return SessionConflict(
            f"{command}: not possible while the session engine is {self._status}{where}; "
            f"allowed {allowed}"
        )

    def start(
        self, pattern: str | Pattern, minutes: float, *, profile: str | None = None
    ) -> LiveState:
        """Start a session on a stored pattern (id, or a Pattern equal to a stored one)."""
        duration_s = _check_minutes(minutes) * 60.0
        with self._lock:
            if self._status in ACTIVE:
                raise self._conflict("start", "when no session is running or paused; stop it "
                                              "first")
            pattern_id, resolved, record = persist.create(self.db_path, pattern, profile)
            pacing = PacingEngine(resolved, self.clock, duration_s=duration_s)
            pacing.start()
            self._live = _Live(
                id=record.id,
                pattern_id=pattern_id,
                pattern=resolved,
                profile=profile,
                started=record.started,
                pacing=pacing,
                metrics=MetricsAccumulator(resolved),
                last_checkpoint=self.clock.now(),
            )
            self._final = None
            self._status = "running"
            pop_events(self.breath)  # events from before the session are not its own
            log.info("session %s started: %s for %g min", record.id, pattern_id, minutes)
            return self._announce()

    def pause(self) -> LiveState:
        """Freeze the guide and the clock of the session; saves a checkpoint."""
        with self._lock:
            if self._status != "running" or self._live is None:
                raise self._conflict("pause", "only while a session is running")
            self._live.pacing.pause()
            self._status = "paused"
            self._checkpoint(self._live, self.clock.now())
            return self._announce()

    def resume(self) -> LiveState:
        with self._lock:
            if self._status != "paused" or self._live is None:
                raise self._conflict("resume", "only while a session is paused")
            self._live.pacing.resume()
            self._status = "running"
            return self._announce()

    def toggle(self) -> LiveState:
        """The button's short press: pause a running session, resume a paused one."""
        with self._lock:
            if self._status == "running":
                return self.pause()
            if self._status == "paused":
                return self.resume()
            raise self._conflict("toggle", "only while a session is running or paused")

    def stop(self) -> LiveState:
        """End the session early; it is kept, with its metrics, as ``stopped``."""
        with self._lock:
            if self._status not in ACTIVE or self._live is None:
                raise self._conflict("stop", "only while a session is running or paused")
            return self._finish("stopped")

    def close(self) -> None:
        """Shut down: a session still in progress is kept as ``interrupted``, outputs off."""
        with self._lock:
            if self._live is not None:
                self._finish("interrupted")
            if self.outputs is not None:
                self.outputs.off()

    def __enter__(self) -> SessionEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------------------------

    def step(self) -> LiveState:
        """One loop iteration; returns the state it made (published when due)."""
        with self._lock:
            now = self.clock.now()
            self.last_step_at = now
            live = self._live
            reading, mode, reason = self._read_breath()
            if live is None:
                if self.outputs is not None:
                    self.outputs.tick(None, [], now)  # LED off; the button still works
                if self._live is not None:
                    return self._state  # the button started a session inside tick
                base = self._final or LiveState(status="idle", t=now)
                self._state = replace(base, t=now, mode=mode, reason=reason)
                self._publish(self._state)
                return self._state
            pstate = live.pacing.state()
            changes = live.pacing.poll_changes()
            if self._status == "running":
                events = events_on_session_time(pop_events(self.breath), pstate.elapsed, reading)
                live.rate.add_events(events)  # the session's rate: its own breaths only
                live.rate.observe(reading if mode == "measuring" else None, pstate.elapsed)
                measured = live.rate.shown(reading) if mode == "measuring" else None
                live.metrics.add(Sample.from_parts(pstate, measured))
                live.metrics.add_events(events)
            if self.outputs is not None:
                self.outputs.tick(pstate, changes, now)  # may pause or stop via the button
            if self._live is not live:
                return self._state  # stopped inside tick: _finish made and published it
            if self._status == "running":
                if pstate.finished:
                    return self._finish("completed")
                if now - live.last_checkpoint >= self.checkpoint_s - TIME_EPS:
                    self._checkpoint(live, now)
            self._state = self._build(now, live, pstate, reading, mode, reason)
            self._publish(self._state)
            return self._state

    def run_forever(self, stop_event: threading.Event, hz: float = STEP_HZ) -> int:
        """Step at ``hz`` on a fixed grid of clock time until ``stop_event``; returns steps.

        Steps missed while late are skipped, not bunched. The session (if any) is left as it
        is: call :meth:`close` to shut down.
        """
        if not hz > 0:
            raise BadInput(f"hz: must be above 0 (got {hz!r})")
        period = 1.0 / hz
        start = self.clock.now()
        steps = k = 0
        while not stop_event.is_set():
            self.step()
            steps += 1
            k += 1
            now = self.clock.now()
            if start + k * period < now:
                k = math.ceil((now - start) / period)
            self.clock.sleep(start + k * period - now)
        return steps

    # -- internals ----------------------------------------------------------------------------

    def _read_breath(self) -> tuple[BreathReading | None, Mode, str | None]:
        return read_breath(self.breath)

    def _build(
        self,
        now: float,
        live: _Live,
        pstate: PacingState,
        reading: BreathReading | None,
        mode: Mode,
        reason: str | None,
    ) -> LiveState:
        adherence, coverage = live.metrics.live()
        measured = live.rate.shown(reading) if mode == "measuring" else None
        duration = live.pacing.duration_s or 0.0
        return LiveState(
            status=self._status,
            t=now,
            session_id=live.id,
            pattern_id=live.pattern_id,
            target_phase=pstate.phase,
            next_phase=pstate.next_phase,
            progress=round(pstate.progress, 4),
            level=round(pstate.level, 4),
            cycle=pstate.cycle,
            elapsed=round(pstate.elapsed, 3),
            remaining=round(max(0.0, duration - pstate.elapsed), 3),
            measured_phase=measured.phase if measured else None,
            rate=measured.rate_bpm if measured else None,
            quality=measured.quality if measured else None,
            displacement=(round(measured.displacement, 4)
                          if measured and measured.displacement is not None else None),
            mode=mode,
            reason=reason,
            adherence=adherence,
            coverage=coverage,
        )

    def _announce(self) -> LiveState:
        """Make and publish the state right after a command (status changes are never held)."""
        assert self._live is not None
        reading, mode, reason = self._read_breath()
        self._state = self._build(
            self.clock.now(), self._live, self._live.pacing.state(), reading, mode, reason
        )
        self._publish(self._state, force=True)
        return self._state

    def _checkpoint(self, live: _Live, now: float) -> None:
        persist.checkpoint(self.db_path, live, now)

    def _finish(self, status: SessionStatus) -> LiveState:
        """Close the session with its metrics and its sync message, in one transaction."""
        live = self._live
        assert live is not None
        live.pacing.stop()
        now = self.clock.now()
        duration_s = persist.finish(self.db_path, live, status, self.device_id,
                                    privacy=self.privacy)
        if self.outputs is not None:
            self.outputs.off()
        reading, mode, reason = self._read_breath()
        self._status = status
        self._final = self._build(now, live, live.pacing.state(), reading, mode, reason)
        self._live = None
        self._state = self._final
        self._publish(self._state, force=True)
        log.info("session %s %s after %.1f s", live.id, status, duration_s)
        return self._state
