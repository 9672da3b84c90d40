"""The breath pipeline running live on a camera in its own thread.

The camera loop must never wait for the pacing loop (or the other way round), so the latest
reading is simply kept here for whoever asks, along with the source's health.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from device.breath.pipeline import BreathPipeline
from device.breath.types import BreathEvent, BreathReading
from device.camera.base import FrameSource

log = logging.getLogger(__name__)


@dataclass
class LiveStatus:
    """What the live measurement is doing: for status lines, telemetry and the watchdog."""

    running: bool
    frames: int
    fps: float
    last_frame_at: float | None  # monotonic seconds
    error: str | None


class LiveBreath:
    """Feeds frames from ``source`` through ``pipeline``; :meth:`latest` is thread-safe."""

    def __init__(self, source: FrameSource, pipeline: BreathPipeline) -> None:
        self.source = source
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._reading: BreathReading | None = None
        self._events: list[BreathEvent] = []
        self._frames = 0
        self._last_frame_at: float | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="breath-live", daemon=True)
        self._started = 0.0

    def start(self) -> LiveBreath:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.source.close()
        self._thread.join(timeout)

    def latest(self) -> BreathReading | None:
        with self._lock:
            return self._reading

    def pop_events(self) -> list[BreathEvent]:
        with self._lock:
            events, self._events = self._events, []
            return events

    def status(self) -> LiveStatus:
        with self._lock:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            return LiveStatus(self._thread.is_alive(), self._frames, self._frames / elapsed,
                              self._last_frame_at, self._error)

    def _run(self) -> None:
        try:
            for frame in self.source.frames():
                if self._stop.is_set():
                    break
                out = self.pipeline.process(frame.t, frame.image)
                with self._lock:
                    self._reading = out.reading
                    self._events.extend(out.events)
                    self._frames += 1
                    self._last_frame_at = time.monotonic()
            else:
                with self._lock:
                    self._error = f"{self.source.name}: the camera stopped delivering frames"
        except Exception as exc:  # the pacing must go on without the camera
            log.exception("breath measurement stopped")
            with self._lock:
                self._error = f"{self.source.name}: {exc}"
