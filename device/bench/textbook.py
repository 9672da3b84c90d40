"""The textbook method, for comparison: dense optical flow over the chest, band-passed.

What a first implementation from the literature does (e.g. camera respiration monitoring with
Farnebäck flow over a chest box): place a chest box from the pose landmarks (re-placed every
``refresh_s``, as ours is), compute dense Farnebäck flow between consecutive frames inside it
at a small working size, take the mean vertical flow, integrate it to a displacement,
band-pass it causally (0.1–0.8 Hz Butterworth), call a peak every local maximum that clears a
hysteresis of a quarter of the recent swing, show the rate of the last four peak intervals,
and say "inhale" while the filtered signal rises, "exhale" while it falls. No quality gate: it
always shows a number once it has one.

It exists only so ``scripts/bench`` can put speed and accuracy beside ours in the same run.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import numpy as np

from device.breath.analyze import Analysis, prefetch
from device.camera.base import FrameSource
from device.vision.roi import place_roi

WORK_WIDTH = 64  # the chest box is resized to this width before the flow


class TextbookFlow:
    """Streaming textbook estimator; ``process(t, image)`` returns (phase, rate or None)."""

    def __init__(self, backend, fps: float, refresh_s: float = 2.0) -> None:
        from scipy import signal

        self.backend, self.fps, self.refresh_s = backend, fps, refresh_s
        self.sos = signal.butter(2, [0.1, 0.8], "bandpass", fs=fps, output="sos")
        self.zi = np.zeros((self.sos.shape[0], 2))
        self._signal = signal
        self.box: tuple[int, int, int, int] | None = None
        self._next = 0.0
        self._prev: np.ndarray | None = None
        self.level = 0.0
        self._y_prev = 0.0
        self._ext = (0.0, 0.0)  # value, time of the running extremum
        self._dir = 0
        self._swings: deque[float] = deque(maxlen=4)
        self.peaks: deque[float] = deque(maxlen=5)
        self.troughs: list[float] = []

    def process(self, t: float, image: np.ndarray) -> tuple[str | None, float | None]:
        if t >= self._next:
            found = self.backend.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), timestamp=t)
            roi = place_roi(found, image.shape) if found is not None else None
            self.box = None if roi is None else (roi.x0, roi.y0, roi.x1, roi.y1)
            self._prev = None
            self._next = t + self.refresh_s
        if self.box is None:
            return None, None
        x0, y0, x1, y1 = self.box
        grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        scale = WORK_WIDTH / max(grey.shape[1], 1)
        grey = cv2.resize(grey, (WORK_WIDTH, max(8, int(grey.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
        if self._prev is not None and self._prev.shape == grey.shape:
            flow = cv2.calcOpticalFlowFarneback(self._prev, grey, None, 0.5, 2, 9, 2, 5, 1.1, 0)
            self.level -= float(np.mean(flow[..., 1])) / scale  # up = inhale
        self._prev = grey
        y, self.zi = self._signal.sosfilt(self.sos, [self.level], zi=self.zi)
        return self._track(t, float(y[0]))

    def _track(self, t: float, y: float) -> tuple[str | None, float | None]:
        rising = y > self._y_prev
        self._y_prev = y
        h = 0.25 * (float(np.median(self._swings)) if self._swings else 0.0)
        value, when = self._ext
        if self._dir >= 0 and y > value or self._dir < 0 and y < value:
            self._ext = (y, t)
        elif abs(y - value) > h:
            if self._dir >= 0:
                self.peaks.append(when)
            else:
                self.troughs.append(when)
            self._swings.append(abs(y - value))
            self._dir = -1 if self._dir >= 0 else 1
            self._ext = (y, t)
        rate = None
        if len(self.peaks) >= 2:
            rate = 60.0 * (len(self.peaks) - 1) / (self.peaks[-1] - self.peaks[0])
        return ("inhale" if rising else "exhale"), rate


def analyze_textbook(source: FrameSource, backend, path: str = "") -> Analysis:
    """The textbook method over a whole file, in the ``breathe analyze`` output shape."""
    method = TextbookFlow(backend, source.stats.fps)
    frames = []
    started = time.perf_counter()
    for frame in prefetch(source.frames()):
        phase, rate = method.process(frame.t, frame.image)
        frames.append({"t": round(frame.t, 4), "phase": phase,
                       "rate_bpm": None if rate is None else round(rate, 2)})
    wall = time.perf_counter() - started
    breaths = [{"inhale_start": t, "exhale_start": None, "end": None} for t in method.troughs]
    video = {"path": path, "fps": source.stats.fps, "frames": len(frames),
             "width": int(source.width), "height": int(source.height)}
    return Analysis(video, frames, breaths, {}, wall_s=wall)
