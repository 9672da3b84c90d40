"""The breath pipeline running live on a camera in its own thread, kept alive.

The camera loop must never wait for the pacing loop (or the other way round), so the latest
reading is simply kept here for whoever asks, along with the camera's liveness: when the last
frame came, frames/s over the last few seconds, how long the pipeline takes per frame.

Cameras hang (a loose ribbon cable, a stuck libcamera request, a USB reset): ``frames()`` then
simply stops yielding. Given a ``reopen`` factory, a supervisor notices that no frame came for
``stall_s`` seconds (or that the source ended or failed), closes the source and opens a fresh
source and pipeline, backing off exponentially while the camera stays dead. A reader thread
stuck inside the old source is abandoned: it exits on its next frame, if one ever comes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from device.breath.pipeline import BreathPipeline
from device.breath.types import BreathEvent, BreathReading
from device.camera.base import FrameSource
from device.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

STALL_S = 5.0  # no frame for this long: the camera is frozen (15 fps is 67 ms a frame)
BACKOFF_S = 1.0  # waits between restarts double from this ...
BACKOFF_MAX_S = 60.0  # ... up to this
WINDOW_S = 5.0  # frames/s and inference time are measured over this window
# Breath events wait here for the session engine, which takes them every step while a session
# runs; between sessions nobody does (a session's start drops them), so only the newest are
# kept: minutes of breathing, and the daemon's memory stays flat however long it idles.
MAX_EVENTS = 512

# states (device.status reads them)
STARTING, FLOWING, FROZEN, FAILED, STOPPED = "starting", "flowing", "frozen", "failed", "stopped"

Reopen = Callable[[], tuple[FrameSource, BreathPipeline]]


@dataclass
class LiveStatus:
    """What the live measurement is doing: for status lines, telemetry and the watchdog."""

    running: bool  # a reader thread is taking frames from the current source
    frames: int  # frames processed since start (all sources)
    fps: float  # frames/s over the last WINDOW_S seconds
    last_frame_at: float | None  # clock seconds
    error: str | None  # why frames are not flowing, None while they do
    state: str = STARTING  # starting | flowing | frozen | failed | stopped
    restarts: int = 0  # times the source and pipeline were reopened
    inference_ms: float | None = None  # mean pipeline time per frame over the window
    since_frame_s: float | None = None  # seconds since the last frame (or since (re)start)


class LiveBreath:
    """Feeds frames from ``source`` through ``pipeline``; :meth:`latest` is thread-safe.

    ``reopen`` makes a fresh (source, pipeline) pair; without it a frozen or failed camera
    stays so (reported in :meth:`status`). The first restart comes ``stall_s`` after the last
    frame; while no frame arrives, restart n + 1 waits
    ``max(stall_s, min(backoff_s * 2**(n - 1), backoff_max_s))`` after restart n.
    """

    def __init__(
        self,
        source: FrameSource,
        pipeline: BreathPipeline,
        *,
        reopen: Reopen | None = None,
        stall_s: float = STALL_S,
        backoff_s: float = BACKOFF_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        window_s: float = WINDOW_S,
        clock: Clock | None = None,
        poll_s: float | None = None,
    ) -> None:
        if not stall_s > 0 or not backoff_s > 0 or backoff_max_s < backoff_s:
            raise ValueError(f"stall_s and backoff_s must be above 0 and backoff_max_s at least "
                             f"backoff_s (got {stall_s!r}, {backoff_s!r}, {backoff_max_s!r})")
        self.source = source
        self.pipeline = pipeline
        self.reopen = reopen
        self.stall_s = stall_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.window_s = window_s
        self.clock = clock or MonotonicClock()
        self.poll_s = poll_s if poll_s is not None else min(1.0, stall_s / 4)
        self._lock = threading.Lock()
        self._reading: BreathReading | None = None
        self._events: deque[BreathEvent] = deque(maxlen=MAX_EVENTS)
        self._frames = 0
        self._recent: deque[tuple[float, float]] = deque()  # (clock time, pipeline ms)
        self._last_frame_at: float | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._generation = 0
        self._reader: threading.Thread | None = None
        self._generation_started = 0.0
        self._restarts = 0
        self._failures = 0  # restarts since the last frame: sets the backoff
        self._last_restart_at: float | None = None
        self._restarting = False
        self._supervisor: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> LiveBreath:
        with self._lock:
            self._start_reader()
        if self.reopen is not None:
            self._supervisor = threading.Thread(target=self._supervise, name="breath-watch",
                                                daemon=True)
            self._supervisor.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._lock:
            source, reader = self.source, self._reader
        _close(source)
        for thread in (reader, self._supervisor):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    # -- reading ---------------------------------------------------------------------------------

    def latest(self) -> BreathReading | None:
        with self._lock:
            return self._reading

    def pop_events(self) -> list[BreathEvent]:
        """Events since the last call, oldest first (at most the newest ``MAX_EVENTS``)."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    def status(self) -> LiveStatus:
        now = self.clock.now()
        with self._lock:
            self._trim(now)
            state = self._state(now)
            since = now - self._since_ref()
            span = min(self.window_s, max(now - self._generation_started, 1e-6))
            fps = len(self._recent) / span if self._recent else 0.0
            infer = (sum(ms for _, ms in self._recent) / len(self._recent)
                     if self._recent else None)
            error = self._error
            if error is None and state == FROZEN:
                error = f"{self.source.name}: no frame for {since:.0f} s"
            return LiveStatus(
                running=self._reader is not None and self._reader.is_alive(),
                frames=self._frames, fps=fps, last_frame_at=self._last_frame_at, error=error,
                state=state, restarts=self._restarts, inference_ms=infer, since_frame_s=since,
            )

    # -- supervision -----------------------------------------------------------------------------

    def check(self) -> bool:
        """Restart the source and pipeline when frames stopped and the backoff allows it.

        The supervisor thread calls this every ``poll_s``; tests may call it directly.
        Returns whether a restart was made.
        """
        if self.reopen is None or self._stop.is_set():
            return False
        now = self.clock.now()
        with self._lock:
            state = self._state(now)
            if state not in (FROZEN, FAILED) or now < self._next_restart_at():
                return False
            why = self._error or f"no frame for {now - self._since_ref():.1f} s"
            self._restarting = True  # frozen until the new reader runs, even if reopen hangs
            self._restarts += 1
            self._failures += 1
            self._last_restart_at = now
            self._generation += 1  # the old reader ignores anything it still gets
            old = self.source
            attempt = self._restarts
        log.warning("camera %s stopped (%s): reopening it (restart %d)", old.name, why, attempt)
        _close(old)
        try:
            source, pipeline = self.reopen()
        except Exception as exc:  # noqa: BLE001 - retried after the backoff, reported meanwhile
            log.warning("camera reopen failed: %s", exc)
            with self._lock:
                self._error = f"camera reopen failed: {exc}"
                self._reader = None
                self._generation_started = now
                self._restarting = False
            return True
        with self._lock:
            self._restarting = False
            if self._stop.is_set():
                _close(source)
                return True
            self.source, self.pipeline = source, pipeline
            self._reading = None  # a reading from before the freeze is stale
            self._error = None
            self._start_reader()
        return True

    def _next_restart_at(self) -> float:
        if self._last_restart_at is None or self._failures == 0:
            return float("-inf")  # the first restart after frames flowed comes at once
        wait = min(self.backoff_s * 2 ** (self._failures - 1), self.backoff_max_s)
        return self._last_restart_at + max(self.stall_s, wait)

    def _supervise(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception:  # the supervisor must outlive any one failed restart
                log.exception("camera supervisor: restart failed")

    # -- internals (call with the lock held) -----------------------------------------------------

    def _last_frame_fresh(self) -> float | None:
        """The last frame's time if it came from the current source."""
        last = self._last_frame_at
        return last if last is not None and last >= self._generation_started else None

    def _since_ref(self) -> float:
        """When frames were last known to flow: the last frame, else the (re)start."""
        last = self._last_frame_fresh()
        return self._generation_started if last is None else last

    def _state(self, now: float) -> str:
        if self._stop.is_set():
            return STOPPED
        if self._restarting:
            return FROZEN
        if self._reader is None or not self._reader.is_alive():
            return FAILED
        last = self._last_frame_fresh()
        if last is None:
            return STARTING if now - self._generation_started < self.stall_s else FROZEN
        return FLOWING if now - last <= self.stall_s else FROZEN

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0][0] <= now - self.window_s:
            self._recent.popleft()

    def _start_reader(self) -> None:
        self._generation_started = self.clock.now()
        self._reader = threading.Thread(
            target=self._run, args=(self._generation, self.source, self.pipeline),
            name=f"breath-live-{self._generation}", daemon=True)
        self._reader.start()

    def _run(self, generation: int, source: FrameSource, pipeline: BreathPipeline) -> None:
        try:
            for frame in source.frames():
                if self._stop.is_set() or generation != self._generation:
                    return
                began = time.perf_counter()
                out = pipeline.process(frame.t, frame.image)
                took_ms = (time.perf_counter() - began) * 1000.0
                now = self.clock.now()
                with self._lock:
                    if generation != self._generation:
                        return
                    self._reading = out.reading
                    self._events.extend(out.events)
                    self._frames += 1
                    self._last_frame_at = now
                    self._recent.append((now, took_ms))
                    self._trim(now)
                    self._failures = 0
                    self._error = None
            if not self._stop.is_set():
                self._ended(generation, f"{source.name}: the camera stopped delivering frames")
        except Exception as exc:  # the pacing must go on without the camera
            if self._stop.is_set():
                return
            log.exception("breath measurement stopped")
            self._ended(generation, f"{source.name}: {exc}")

    def _ended(self, generation: int, error: str) -> None:
        with self._lock:
            if generation == self._generation:
                self._error = error


def _close(source: FrameSource) -> None:
    try:
        source.close()
    except Exception:  # noqa: BLE001 - closing a broken camera may fail; it is dropped anyway
        log.warning("closing camera %s failed", getattr(source, "name", "?"), exc_info=True)
