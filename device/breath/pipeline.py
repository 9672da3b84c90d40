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

from device.breath.estimator import BreathEstimator, EstimatorSettings
from device.breath.filters import LowPass
from device.breath.motion import MotionSample, RoiMotion
from device.breath.types import BreathEvent, BreathReading
from device.vision.roi import Roi, background_roi, place_roi, roi_moved
from device.vision.types import LandmarkBackend, Landmarks

log = logging.getLogger(__name__)

# Thresholds on the motion measure (normalised px: shoulders 200 px apart).
SIDEWAYS_SPEED = 12.0  # px/s of horizontal motion: breathing has almost none
MISFIT = 0.45  # residual above this: the region no longer looks like the key (turned, left)
SIDEWAYS_SHIFT = 6.0  # px of horizontal drift against the key: re-place the region
MIN_TEXTURE = 2.0  # grey levels² per px: less, and the background cannot show camera shake
BACKGROUND_MISFIT = 0.3  # above this the background changed (someone walked by): ignore it
DX_SMOOTHING_S = 0.3  # horizontal motion is judged on this time scale (shake is faster)
# Shake the background cannot show (a plain wall): breathing has no sideways jitter, so jitter
# in dx reveals it; then the vertical signal is low-passed below the shake, above any breath.
SHAKE_ON, SHAKE_OFF = 0.5, 0.3  # px RMS of sideways jitter (normalised) to engage / release
SHAKE_CUTOFF_HZ = 0.8  # 40 breaths/min is 0.67 Hz; hand and table shake is 2 Hz and up
CALM_MAX = 4  # landmarks every refresh_s, stretched up to this factor while nothing moves


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
        # The motion measure is chained across keys and re-placements, so it cannot jump:
        # the estimator need not look for steps (it would mistake shake for them).
        self.estimator = estimator or BreathEstimator(
            fps=fps, settings=EstimatorSettings(remove_steps=False))
        self.motion = RoiMotion()
        self.background = RoiMotion(work_width=64, key_max_shift=3.0)
        self._shake = (0.0, 0.0)  # last trusted background (dy, dx), held when untrusted
        self._dx_slow = 0.0
        self._jitter_ms = 0.0  # running mean square of the sideways jitter
        self.shaky = False  # uncompensated camera shake: the signal is low-passed
        self._deshake = LowPass(SHAKE_CUTOFF_HZ, fps) if SHAKE_CUTOFF_HZ < 0.4 * fps else None
        self.stats = PipelineStats()
        self.landmarks: Landmarks | None = None
        self._next_landmarks = 0.0
        self._unsettled_until = -1.0
        self._calm = 0  # landmark refreshes in a row that left the region where it was

    @classmethod
    def from_settings(cls, settings, fps: float, backend: LandmarkBackend | None = None,
                      *, whole_file: bool = False) -> BreathPipeline:
        """The pipeline the config describes (``[vision]`` and ``[breath]``).

        ``whole_file``: the estimator's summary keeps every breath and hold (a video file);
        otherwise the last ``EstimatorSettings.history`` (a camera that runs for months).
        """
        from device.vision.factory import backend_from_settings

        b = settings.breath
        estimator = BreathEstimator(fps=fps, settings=EstimatorSettings(
            min_bpm=b.min_rate_bpm, max_bpm=b.max_rate_bpm, min_quality=b.min_quality,
            max_silence_s=b.max_hold_s, remove_steps=False,
            history=None if whole_file else EstimatorSettings.history))
        if backend is None:
            backend = backend_from_settings(settings.vision)
        return cls(backend, fps, refresh_s=settings.vision.landmark_refresh_s,
                   estimator=estimator)

    def process(self, t: float, image_bgr: np.ndarray) -> PipelineOutput:
        self.stats.frames += 1
        if t >= self._next_landmarks:
            self._refresh_landmarks(t, image_bgr)

        started = time.perf_counter()
        sample = self._compensate(t, self.motion.update(t, image_bgr), image_bgr)
        self.stats.motion_s += time.perf_counter() - started

        alpha = min(1.0, 1.0 / (self.fps * DX_SMOOTHING_S))
        self._dx_slow += alpha * (sample.dx - self._dx_slow)
        sample = self._deshaken(sample)
        moving = sample.valid and (abs(self._dx_slow) > SIDEWAYS_SHIFT
                                   or sample.residual > MISFIT)
        if moving:
            # The person moved (or turned): distrust the next moments and re-place soon.
            self._unsettled_until = t + 0.5
            self._next_landmarks = min(self._next_landmarks, t + 0.3)
        if self.motion.roi is not None:
            self.stats.person_frames += 1
        valid = sample.valid and not moving and t >= self._unsettled_until
        body_motion = abs(self._dx_slow) / SIDEWAYS_SHIFT + sample.residual / MISFIT

        started = time.perf_counter()
        reading = self.estimator.update(t, sample.displacement if valid else None, valid,
                                        body_motion=body_motion)
        self.stats.estimator_s += time.perf_counter() - started
        return PipelineOutput(reading, sample, self.estimator.pop_events(), self.motion.roi,
                              self.landmarks)

    def _compensate(self, t: float, sample: MotionSample, image_bgr: np.ndarray) -> MotionSample:
        """Subtract camera shake, measured on the background, from the person's motion."""
        background = self.background
        if background.roi is None or not sample.valid:
            return sample
        # A plain wall cannot show shake: it is looked at again only when its key is due.
        if background.texture >= MIN_TEXTURE or background.key_due(t):
            bg = background.update(t, image_bgr)
            if bg.valid and background.texture >= MIN_TEXTURE and bg.residual < BACKGROUND_MISFIT:
                self._shake = (bg.displacement, bg.dx)
        # An untrusted frame keeps the last trusted shake, so the output never steps.
        return MotionSample(sample.displacement - self._shake[0], sample.dx - self._shake[1],
                            sample.speed, sample.residual, sample.valid)

    def _deshaken(self, sample: MotionSample) -> MotionSample:
        """Track sideways jitter; while it shows shake, pass the displacement through a
        low-pass that removes it (its state runs all the time, so switching never steps)."""
        if not sample.valid or sample.displacement is None or self._deshake is None:
            return sample
        jitter = sample.dx - self._dx_slow
        self._jitter_ms += min(1.0, 1.0 / (2.0 * self.fps)) * (jitter * jitter - self._jitter_ms)
        rms = self._jitter_ms ** 0.5
        if rms > SHAKE_ON and not self.shaky:
            log.info("camera shake seen (%.2f px sideways jitter): smoothing the signal", rms)
            self.shaky = True
        elif rms < SHAKE_OFF:
            self.shaky = False
        smooth, _ = self._deshake.step(sample.displacement)
        if not self.shaky:
            return sample
        return MotionSample(smooth, sample.dx, sample.speed, sample.residual, sample.valid)

    def _place(self, roi: Roi | None, landmarks: Landmarks | None, image: np.ndarray) -> None:
        self.motion.reset(roi)
        self.background.reset(
            background_roi(landmarks, image, roi) if roi is not None and landmarks else None)
        self._dx_slow = 0.0
        if roi is not None and self._deshake is not None:
            self._deshake.reset(self.motion.level)  # settle on the level it continues from
        self.stats.roi_resets += 1

    def _refresh_landmarks(self, t: float, image_bgr: np.ndarray) -> None:
        if self.backend is None:
            self._next_landmarks = float("inf")
            return
        started = time.perf_counter()
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        found = self.backend.detect(rgb, timestamp=t)
        self.stats.landmark_calls += 1
        self.stats.landmark_s += time.perf_counter() - started
        self.landmarks = found
        roi = place_roi(found, image_bgr.shape) if found is not None else None
        current = self.motion.roi
        if roi is None:
            if current is not None:
                log.debug("t=%.2f person lost; region cleared", t)
                self._place(None, None, image_bgr)
            self._next_landmarks = t + self.absent_retry_s
            return
        if current is None or roi_moved(current, roi) or t < self._unsettled_until + 0.5:
            self._place(roi, found, image_bgr)
            self._calm = 0
        else:
            self._calm += 1
        # A person who stays put needs the region re-checked less often: the interval doubles
        # with each refresh that found the region where it was, up to CALM_MAX times; any
        # movement (see process) brings the next check within 0.3 s and starts over.
        self._next_landmarks = t + self.refresh_s * min(2 ** self._calm, CALM_MAX)
