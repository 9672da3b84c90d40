"""Frames in, breath readings out: the one streaming path used live and by ``breathe analyze``.

camera frame → (every few seconds, or after the person moved) landmarks → ROI → sub-pixel
ROI motion → causal estimator. Landmarks run at a low rate because they are the expensive part
and because they only place the region; the breath comes from the motion inside it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from device.breath.estimator import BreathEstimator
from device.breath.motion import MotionSample, Roi, RoiMotion
from device.breath.types import BreathEvent, BreathReading
from device.vision.roi import place_roi, roi_moved
from device.vision.types import LandmarkBackend, Landmarks

log = logging.getLogger(__name__)

# Thresholds on the motion measure (normalised px: shoulders 200 px apart).
SIDEWAYS_SPEED = 12.0  # px/s of horizontal motion: breathing has almost none
MISFIT = 0.45  # residual above this: the region no longer looks like the key (turned, left)
SIDEWAYS_SHIFT = 6.0  # px of horizontal drift against the key: re-place the region


@dataclass
class PipelineStats:
    """Where the time goes (seconds, summed) and how often landmarks ran."""

    frames: int = 0
    landmark_calls: int = 0
    landmark_s: float = 0.0
    motion_s: float = 0.0
    estimator_s: float = 0.0
    roi_resets: int = 0
    person_frames: int = 0  # frames with a placed region (someone there)


@dataclass
class PipelineOutput:
    """One frame's result: the reading plus what the front end measured."""

    reading: BreathReading
    motion: MotionSample
    events: list[BreathEvent] = field(default_factory=list)
    roi: Roi | None = None
    landmarks: Landmarks | None = None


class BreathPipeline:
    """Streaming breath measurement. Call :meth:`process` once per frame, in time order."""

    def __init__(self, backend: LandmarkBackend | None, fps: float,
                 refresh_s: float = 2.0, absent_retry_s: float = 0.5,
                 estimator: BreathEstimator | None = None) -> None:
        self.backend = backend
        self.fps = fps
        self.refresh_s = refresh_s
        self.absent_retry_s = absent_retry_s
        self.estimator = estimator or BreathEstimator(fps=fps)
        self.motion = RoiMotion()
        self.stats = PipelineStats()
        self.landmarks: Landmarks | None = None
        self._next_landmarks = 0.0
        self._unsettled_until = -1.0

    def process(self, t: float, image_bgr: np.ndarray) -> PipelineOutput:
        self.stats.frames += 1
        if t >= self._next_landmarks:
            self._refresh_landmarks(t, image_bgr)

        started = time.perf_counter()
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        sample = self.motion.update(t, gray)
        self.stats.motion_s += time.perf_counter() - started

        moving = sample.valid and (abs(sample.dx) > SIDEWAYS_SHIFT
                                   or sample.residual > MISFIT)
        if moving:
            # The person moved (or turned): distrust the next moments and re-place soon.
            self._unsettled_until = t + 0.5
            self._next_landmarks = min(self._next_landmarks, t + 0.3)
        if self.motion.roi is not None:
            self.stats.person_frames += 1
        valid = sample.valid and not moving and t >= self._unsettled_until
        body_motion = abs(sample.dx) / SIDEWAYS_SHIFT + sample.residual / MISFIT

        started = time.perf_counter()
        reading = self.estimator.update(t, sample.displacement if valid else None, valid,
                                        body_motion=body_motion)
        self.stats.estimator_s += time.perf_counter() - started
        return PipelineOutput(reading, sample, self.estimator.pop_events(), self.motion.roi,
                              self.landmarks)

    def _refresh_landmarks(self, t: float, image_bgr: np.ndarray) -> None:
        if self.backend is None:
            self._next_landmarks = float("inf")
            return
        started = time.perf_counter()
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        found = self.backend.detect(rgb)
        self.stats.landmark_calls += 1
        self.stats.landmark_s += time.perf_counter() - started
        self.landmarks = found
        roi = place_roi(found, image_bgr.shape) if found is not None else None
        current = self.motion.roi
        if roi is None:
            if current is not None:
                log.debug("t=%.2f person lost; region cleared", t)
                self.motion.reset(None)
                self.stats.roi_resets += 1
            self._next_landmarks = t + self.absent_retry_s
            return
        if current is None or roi_moved(current, roi) or t < self._unsettled_until + 0.5:
            self.motion.reset(roi)
            self.stats.roi_resets += 1
        self._next_landmarks = t + self.refresh_s
