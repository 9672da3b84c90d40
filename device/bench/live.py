"""How fast a live session reacts, how steady its LED loop is, and what ``breathe run`` weighs.

Three numbers from issue 4, measured on the real clock:

- latency: for every live state the session engine publishes, the age of the newest camera
  frame it reflects (frame handed over by the source → state received by a subscriber). The
  estimator's own delay (filters, confirming extrema) is not in it by construction: we follow
  the frame, not the breath. Split into pipeline time, wait for the next engine step, delivery.
- LED loop jitter: the intervals between ``PacingOutputs.tick`` calls made by
  ``SessionEngine.run_forever`` on mock PWM pins, while the camera thread runs beside it.
- peak RSS of ``breathe run --demo`` as a child process (its VmHWM: that child's own peak).

Everything is observed through thin wrappers around the source, the pipeline, the breath
source and the outputs, so no production module carries benchmark hooks.
"""

from __future__ import annotations

import bisect
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.bench.procmem import status_mb
from device.breath.live import LiveBreath
from device.breath.pipeline import BreathPipeline, PipelineOutput
from device.breath.types import BreathReading
from device.camera.base import Frame, FrameSource
from device.clock import MonotonicClock
from device.pacing.engine import PacingState, PhaseChange
from device.session.engine import STEP_HZ, SessionEngine
from device.session.live_state import LiveState

WARMUP_S = 2.0  # states from the first seconds are left out: first landmarks, filters filling
READY_MARK = "Ctrl-C"  # 'breathe run' says "...; Ctrl-C to stop" once it is pacing
READY_TIMEOUT_S = 60.0
LATE_FACTOR = 1.5  # an LED interval this many times the nominal one counts as a visible hitch


class StampedSource:
    """A FrameSource that notes when each frame was handed over (``time.monotonic``)."""

    def __init__(self, inner: FrameSource) -> None:
        self.inner = inner
        self.name, self.width, self.height = inner.name, inner.width, inner.height
        self.stats = inner.stats
        self.handed_over: dict[float, float] = {}  # frame.t → monotonic seconds

    def frames(self) -> Iterator[Frame]:
        for frame in self.inner.frames():
            self.handed_over[frame.t] = time.monotonic()
            yield frame

    def close(self) -> None:
        self.inner.close()


class TimedPipeline:
    """Wraps a BreathPipeline: per-frame processing time and when each reading was ready."""

    def __init__(self, inner: BreathPipeline) -> None:
        self.inner = inner
        self.process_s: list[float] = []
        self.ready: dict[float, float] = {}  # frame.t → monotonic seconds

    def process(self, t: float, image: np.ndarray) -> PipelineOutput:
        started = time.perf_counter()
        out = self.inner.process(t, image)
        self.process_s.append(time.perf_counter() - started)
        self.ready[t] = time.monotonic()
        return out


class ReadingTap:
    """The engine's breath source: passes LiveBreath through, noting which reading it handed
    out when (the engine reads it right after taking the step's time)."""

    def __init__(self, live: LiveBreath) -> None:
        self.live = live
        self.calls: list[tuple[float, float | None]] = []  # (monotonic, reading.t)

    def latest(self) -> BreathReading | None:
        reading = self.live.latest()
        self.calls.append((time.monotonic(), None if reading is None else reading.t))
        return reading

    def status(self):
        return self.live.status()

    def pop_events(self):
        return self.live.pop_events()


class TickTap:
    """The engine's outputs: passes ticks through to PacingOutputs, noting when each came."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.ticks: list[float] = []

    def tick(self, state: PacingState | None, changes: Sequence[PhaseChange],
             now: float) -> None:
        self.ticks.append(time.monotonic())
        self.inner.tick(state, changes, now)

    def off(self) -> None:
        self.inner.off()


@dataclass
class LiveRun:
    """Raw series from one live run (seconds)."""

    seconds: float
    hz: float
    fps: float
    frames: int
    dropped: int
    states: int
    landmark_calls: int
    process_s: list[float] = field(default_factory=list)
    capture_to_ready: list[float] = field(default_factory=list)
    ready_to_step: list[float] = field(default_factory=list)
    step_to_received: list[float] = field(default_factory=list)
    capture_to_received: list[float] = field(default_factory=list)
    tick_intervals: list[float] = field(default_factory=list)


def _subscriber(q: queue.Queue, got: list, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            state = q.get(timeout=0.1)
        except queue.Empty:
            continue
        got.append((time.monotonic(), state))


def measure_live(settings, pattern_id: str = "box", seconds: float = 40.0,
                 hz: float = STEP_HZ) -> LiveRun:
    """A real-time session on the demo person with mock GPIO, in this process."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from device.pacing.outputs import PacingOutputs
    from device.session.sources import open_source
    from device.store import open_db
    from device.store.patterns_repo import get_pattern
    from device.vision.factory import backend_from_settings

    cam = settings.camera
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        with open_db(db_path) as db:
            pattern = get_pattern(db, pattern_id).pattern
        phases = tuple(s for _, s in pattern.phases)
        source = StampedSource(open_source("demo", width=cam.width, height=cam.height,
                                           fps=cam.fps, demo_pattern=phases))
        fps = source.stats.fps or cam.fps
        pipeline = TimedPipeline(BreathPipeline.from_settings(
            settings, fps, backend_from_settings(settings.vision)))
        factory = MockFactory(pin_class=MockPWMPin)
        clock = MonotonicClock()
        with PacingOutputs(settings.pacing, pin_factory=factory) as outputs:
            ticks = TickTap(outputs)
            live = LiveBreath(source, pipeline)  # type: ignore[arg-type]
            tap = ReadingTap(live)
            engine = SessionEngine(db_path, clock, outputs=ticks, breath=tap)
            received: list[tuple[float, LiveState]] = []
            stop = threading.Event()
            listener = threading.Thread(target=_subscriber,
                                        args=(engine.subscribe(), received, stop), daemon=True)
            listener.start()
            live.start()
            engine.start(pattern_id, seconds / 60.0 + 1.0)
            started = time.monotonic()
            threading.Timer(seconds, stop.set).start()
            engine.run_forever(stop, hz)
            engine.close()
            live.stop()
            listener.join(1.0)
        factory.reset()
    run = LiveRun(seconds=seconds, hz=hz, fps=fps, frames=source.stats.frames,
                  dropped=source.stats.dropped, states=len(received),
                  landmark_calls=pipeline.inner.stats.landmark_calls,
                  process_s=pipeline.process_s)
    call_times = [c for c, _ in tap.calls]
    for got_at, state in received:
        if state.status != "running" or state.t < started + WARMUP_S:
            continue
        i = bisect.bisect_left(call_times, state.t)  # the step read the camera right after t
        if i == len(call_times):
            continue
        called_at, frame_t = tap.calls[i]
        if frame_t is None or frame_t not in source.handed_over:
            continue
        captured, ready = source.handed_over[frame_t], pipeline.ready[frame_t]
        run.capture_to_ready.append(ready - captured)
        run.ready_to_step.append(called_at - ready)
        run.step_to_received.append(got_at - state.t)
        run.capture_to_received.append(got_at - captured)
    ticks_in = [t for t in ticks.ticks if t >= started]
    run.tick_intervals = list(np.diff(ticks_in))
    return run


def demo_peak_rss(seconds: float = 20.0, pattern_id: str = "box",
                  grace_s: float = 15.0) -> dict:
    """``breathe run --demo`` in a child, ``seconds`` after it starts pacing, then Ctrl-C: its
    peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, BREATHE_DATA_DIR=tmp)
        err_path = Path(tmp) / "stderr.txt"
        with err_path.open("wb") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "device", "run", "--demo", "--pattern", pattern_id],
                stdout=subprocess.DEVNULL, stderr=err, env=env)
            launched = time.monotonic()
            while (time.monotonic() - launched < READY_TIMEOUT_S and child.poll() is None
                   and READY_MARK not in err_path.read_text(errors="replace")):
                time.sleep(0.1)  # measure the running appliance, not only its start-up
            ready_s = time.monotonic() - launched
            time.sleep(seconds)
            exited_early = child.poll() is not None
            peak = float("nan")
            if not exited_early:
                [peak] = status_mb(child.pid, "VmHWM")  # its own peak so far (see procmem)
                child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        stderr = err_path.read_text(errors="replace")
    return {"seconds": seconds, "ready_s": ready_s, "exit_code": child.returncode,
            "exited_early": exited_early, "peak_rss_mb": peak,
            "stderr_tail": stderr[-600:]}


def percentiles(values: Sequence[float], scale: float = 1e3) -> tuple[float, float, float]:
    """p50, p95, max of ``values`` × ``scale`` (NaN when empty)."""
    if not len(values):
        return (float("nan"),) * 3
    a = np.asarray(values, dtype=float) * scale
    return float(np.median(a)), float(np.percentile(a, 95)), float(a.max())


def format_live(run: LiveRun) -> str:
    """The latency and jitter table, in milliseconds."""
    rows = [
        ("frame → state received (total)", run.capture_to_received),
        ("  frame → reading ready", run.capture_to_ready),
        ("  reading ready → publishing step", run.ready_to_step),
        ("  engine step → subscriber", run.step_to_received),
        ("pipeline processing per frame", run.process_s),
    ]
    lines = [f"live session: {run.seconds:.0f} s real time, camera {run.fps:.0f} fps "
             f"({run.frames} frames, {run.dropped} dropped, {run.landmark_calls} landmark "
             f"calls), engine {run.hz:.0f} Hz, {run.states} states published "
             f"(first {WARMUP_S:.0f} s left out)",
             f"{'latency (ms)':<34}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}"]
    for name, values in rows:
        p50, p95, top = percentiles(values)
        lines.append(f"{name:<34}{len(values):>6}{p50:9.1f}{p95:9.1f}{top:9.1f}")
    nominal = 1.0 / run.hz
    iv = np.asarray(run.tick_intervals, dtype=float)
    p50, p95, top = percentiles(iv)
    late = float(np.mean(iv > LATE_FACTOR * nominal)) if iv.size else float("nan")
    lines += ["",
              f"{'LED tick interval (ms)':<34}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}"
              f"{'>' + format(LATE_FACTOR, 'g') + '×':>9}",
              f"{f'nominal {1e3 * nominal:.1f} ms ({run.hz:.0f} Hz)':<34}{iv.size:>6}"
              f"{p50:9.2f}{p95:9.2f}{top:9.2f}{100 * late:8.2f}%"]
    return "\n".join(lines)


def format_rss(result: dict) -> str:
    line = (f"breathe run --demo, started in {result['ready_s']:.1f} s, ran "
            f"{result['seconds']:.0f} s more, then Ctrl-C: peak RSS "
            f"{result['peak_rss_mb']:.0f} MB (exit {result['exit_code']})")
    if result["exit_code"] != 0 or result["exited_early"]:
        line += "\n  it did not run as expected; its stderr ends:\n" + result["stderr_tail"]
    return line
