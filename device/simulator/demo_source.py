"""The demo source: a synthetic person breathing live, in real time on a clock.

It powers ``breathe run --demo`` and the tests. The person breathes freely, or follows a pacing
pattern (inhale, hold_in, exhale, hold_out seconds) the way people do: a little behind the guide
and never exactly on time. The ground truth of every delivered frame is available from
``truth()`` (for the last ``truth_s`` seconds of frames: the source may run for months, so what
is older is forgotten); with a ``FakeClock`` the source runs as fast as it can render.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np

from common.errors import BadInput
from device.camera.base import Frame, SourceStats
from device.camera.convert import lores_image
from device.clock import Clock, MonotonicClock
from device.simulator.synth import PersonSpec, Scenario, ScenarioSpec
from device.simulator.timeline import Nuisances
from device.simulator.waveform import BreathingSpec, BreathPlan, FreeBreathing, PacedBreathing

log = logging.getLogger(__name__)
_FOREVER = 1e9
TRUTH_S = 600.0  # the truth of this many seconds of the latest frames is kept


def _pattern_block(pattern: Sequence[float] | None, rate_bpm: float, origin: float
                   ) -> FreeBreathing | PacedBreathing:
    if pattern is None:
        return FreeBreathing(duration=_FOREVER, rate_bpm=rate_bpm)
    phases = tuple(float(p) for p in pattern)
    if len(phases) != 4 or min(phases) < 0 or phases[0] <= 0 or phases[2] <= 0:
        raise BadInput(f"demo pattern {list(pattern)!r}: need four phase seconds "
                       "(inhale > 0, hold_in >= 0, exhale > 0, hold_out >= 0)")
    return PacedBreathing(duration=_FOREVER, pattern=phases, origin=origin)


class DemoSource:
    """A FrameSource that renders the synthetic person live."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, *,
                 clock: Clock | None = None, pattern: Sequence[float] | None = None,
                 rate_bpm: float = 12.0, photo: str = "astronaut", seed: int = 0,
                 lores: tuple[int, int] | None = None, duration: float | None = None,
                 nuisances: Nuisances | None = None, amplitude_px: float = 3.5,
                 truth_s: float = TRUTH_S):
        self.name = "demo"
        self.width, self.height = int(width), int(height)
        self.clock = clock or MonotonicClock()
        self.lores = lores
        self.duration = duration
        self.stats = SourceStats(fps=float(fps))
        block = _pattern_block(pattern, rate_bpm, origin=0.0)
        spec = ScenarioSpec(
            name="demo", duration=duration or _FOREVER, fps=fps, width=self.width,
            height=self.height, seed=seed,
            person=PersonSpec(photo=photo, amplitude_px=amplitude_px),
            breathing=BreathingSpec(blocks=[block]),
            nuisances=nuisances or Nuisances(noise=1.5),
        )
        self.scenario = Scenario(spec)
        self._lock = threading.Lock()  # set_pattern may come from another thread
        self._times: deque[float] = deque(maxlen=max(1, round(truth_s * float(fps))))
        self._t = 0.0
        self._closed = False
        log.info("demo source: %dx%d at %.0f fps, %s", self.width, self.height, fps,
                 f"following pattern {list(pattern)}" if pattern else f"free at {rate_bpm} bpm")

    def set_pattern(self, pattern: Sequence[float] | None, rate_bpm: float = 12.0) -> None:
        """Follow a new pattern (None: breathe freely) from the next breath; its guide starts
        now."""
        block = _pattern_block(pattern, rate_bpm, self._t)
        with self._lock:
            self.scenario.plan.restart_from(self._t, block)

    def frames(self) -> Iterator[Frame]:
        fps = self.stats.fps
        start = self.clock.now()
        index = 0
        while not self._closed:
            t = index / fps
            if self.duration is not None and t >= self.duration:
                return
            lateness = self.clock.now() - start - t
            if lateness < 0:
                self.clock.sleep(-lateness)
            elif lateness > 1.0 / fps:  # the consumer fell behind: skip, as a camera would
                skipped = int(lateness * fps)
                self.stats.dropped += skipped
                index += skipped
                continue
            self._t = t
            with self._lock:
                image = self.scenario.render(t, index)
            meta = {"lores": lores_image(image, self.lores)} if self.lores else {}
            self._times.append(t)
            if index % self._times.maxlen == 0:  # type: ignore[operator]
                self._forget()
            self.stats.frames += 1
            yield Frame(t=t, image=image, index=index, meta=meta)
            index += 1

    def _forget(self) -> None:
        """Breaths older than the oldest frame kept are not needed any more."""
        plan = self.scenario.plan
        if isinstance(plan, BreathPlan) and self._times:
            with self._lock:
                plan.forget_before(self._times[0])

    def truth(self) -> dict:
        """Ground truth (truth-JSON shape) for the frames delivered in the last ``truth_s``
        seconds (every frame, in a shorter run)."""
        with self._lock:
            return self.scenario.truth(np.array(self._times))

    def close(self) -> None:
        self._closed = True
