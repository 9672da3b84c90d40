"""Breathing displacement from image motion inside a region of interest.

Landmarks jitter by about as much as breathing moves the body, so they only *place* the region;
the signal comes from sub-pixel image registration inside it. Each frame's ROI patch is aligned
to a reference patch (the key) by Lucas–Kanade for a 2-D translation with a gain/offset
normalisation (lighting drift and flicker cancel out). Displacement is measured against the key,
not frame to frame, so noise does not random-walk; when the key is renewed, the offset measured at
that moment is carried over, so the output has no steps.

Output units are pixels normalised to a person whose shoulders are ``REFERENCE_WIDTH`` px apart,
so amplitude does not depend on how far the person sits. Up (inhale) is positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.roi import Roi

REFERENCE_WIDTH = 200.0  # shoulder width (px) that displacement is normalised to
WORK_WIDTH = 112.0  # ROI width (px) the registration runs at; bigger ROIs are downscaled


@dataclass
class MotionSample:
    """One frame's measurement inside the ROI."""

    displacement: float | None  # vertical, normalised px, up positive; None when lost
    dx: float  # horizontal shift versus the key (normalised px): body motion, not breath
    speed: float  # frame-to-frame motion (normalised px/s) beyond what breathing does
    residual: float  # 0..1, misfit after alignment; high = appearance changed (turned, left)
    valid: bool


class RoiMotion:
    """Tracks the displacement of one ROI against a renewable key patch.

    Call :meth:`reset` with a new ROI whenever landmarks re-place it; displacement continues
    from where it was, so a re-placement never shows as a step. Each frame the region (plus a
    margin) is cropped, converted to grey, scaled to ``work_width`` and blurred once; the
    Lucas–Kanade iterations then run on that small image.
    """

    def __init__(self, key_max_shift: float = 1.5, key_max_age_s: float = 6.0,
                 iterations: int = 3, work_width: float = WORK_WIDTH) -> None:
        self.key_max_shift = key_max_shift  # work px before the key is renewed
        self.key_max_age_s = key_max_age_s
        self.iterations = iterations
        self.work_width = work_width
        self.roi: Roi | None = None
        self.texture = 0.0  # weakest gradient energy per pixel of the key (grey levels²)
        self._offset = 0.0  # displacement (normalised px, up positive) at the current key
        self._key: np.ndarray | None = None
        self._key_t = 0.0
        self._p = np.zeros(2)  # current shift (work px) of the patch versus the key
        self._last_t: float | None = None
        self._last_value: float | None = None
        self._scale = 1.0  # work px per frame px
        self._size = (0, 0)

    @property
    def level(self) -> float:
        """The displacement the next measurement continues from (normalised px)."""
        return self._last_value if self._last_value is not None else self._offset

    # -- placement -------------------------------------------------------------------------
    def reset(self, roi: Roi | None) -> None:
        """Use ``roi`` from the next frame on (None: stop measuring)."""
        self.roi = roi
        if self._last_value is not None:
            self._offset = self._last_value
        self._key = None
        self._p = np.zeros(2)
        self._last_t = None

    def key_due(self, t: float) -> bool:
        """True when the next :meth:`update` starts a key (none yet, or the key is old)."""
        return self._key is None or t - self._key_t > self.key_max_age_s

    # -- measuring -------------------------------------------------------------------------
    def update(self, t: float, image: np.ndarray) -> MotionSample:
        """Measure the ROI in ``image`` (the whole frame, BGR or grey)."""
        roi = self.roi
        if roi is None or roi.width < 8 or roi.height < 8:
            return MotionSample(None, 0.0, 0.0, 1.0, False)
        if self._key is None:
            self._start_key(t, image, roi)
            self._last_t, self._last_value = t, self._offset
            return MotionSample(self._offset, 0.0, 0.0, 0.0, True)

        work, center = self._work(image, roi)
        residual = self._align(work, center)
        norm = REFERENCE_WIDTH / (roi.scale_px * self._scale)
        value = self._offset - float(self._p[1]) * norm
        if not np.isfinite(value):
            return MotionSample(None, 0.0, 0.0, 1.0, False)
        speed = 0.0
        if self._last_t is not None and t > self._last_t:
            speed = abs(value - self._last_value) / (t - self._last_t)
        self._last_t, self._last_value = t, value
        sample = MotionSample(value, float(self._p[0]) * norm, speed, residual, True)
        if abs(self._p[1]) > self.key_max_shift or t - self._key_t > self.key_max_age_s:
            self._offset = value
            self._start_key(t, image, roi, work, center)
        return sample

    def _work(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, tuple[float, float]]:
        """The region plus a margin, grey, at work scale, blurred; and the ROI centre in it."""
        s = self._scale
        margin = int(np.ceil((self.key_max_shift + 4.0) / s)) + 2
        height, width = image.shape[:2]
        x0, y0 = max(0, roi.x0 - margin), max(0, roi.y0 - margin)
        x1, y1 = min(width, roi.x1 + margin), min(height, roi.y1 + margin)
        crop = image[y0:y1, x0:x1]
        # Halve with pyrDown (a fixed Gaussian, so a shift stays a shift at every sub-pixel
        # phase; an arbitrary-ratio resize biases sub-pixel motion by ~0.2 px). The green
        # channel stands in for grey (it carries most of the luminance; a monochrome camera
        # has three equal channels) at half the cost of a conversion, and halving in 8 bits
        # is twice as fast as in float; the rounding (< 0.3 grey levels) is far below noise.
        if crop.ndim == 3:
            crop = cv2.extractChannel(crop, 1)
        while s < 1.0 and crop.shape[1] >= 16:
            crop = cv2.pyrDown(crop)
            s *= 2.0
        crop = crop.astype(np.float32)
        crop = cv2.GaussianBlur(crop, (5, 5), 1.0)
        s = self._scale
        cx, cy = roi.center
        # pyrDown maps pixel centre i to (i - 0.5) / 2 + ... : centres stay at i / 2 exactly
        return crop, ((cx - x0) * s, (cy - y0) * s)

    def _patch(self, work: np.ndarray, center: tuple[float, float],
               shift: np.ndarray) -> np.ndarray:
        """The key-sized patch of ``work`` whose centre is moved by ``shift`` work px."""
        return cv2.getRectSubPix(work, self._size, (center[0] + shift[0], center[1] + shift[1]))

    def _start_key(self, t: float, image: np.ndarray, roi: Roi,
                   work: np.ndarray | None = None, center=None) -> None:
        scale = 1.0
        while roi.width * scale > self.work_width:
            scale /= 2.0
        if work is None or scale != self._scale:
            self._scale = scale
            work, center = self._work(image, roi)
        self._size = (max(8, int(round(roi.width * scale))),
                      max(8, int(round(roi.height * scale))))
        key = self._patch(work, center, np.zeros(2))
        weights = np.ones_like(key)
        if roi.mask is not None:
            weights = cv2.resize(roi.mask.astype(np.float32), self._size,
                                 interpolation=cv2.INTER_AREA)
        mean, std = _weighted_stats(key, weights)
        key = (key - mean) / std
        gx = cv2.Sobel(key, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        gy = cv2.Sobel(key, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        hessian = np.array([[np.sum(weights * gx * gx), np.sum(weights * gx * gy)],
                            [np.sum(weights * gx * gy), np.sum(weights * gy * gy)]])
        self._wsum = float(np.sum(weights)) or 1.0
        # weakest gradient direction, in grey levels per pixel (squared): 0 on a plain wall
        self.texture = float(np.linalg.eigvalsh(hessian)[0]) / self._wsum * std * std
        hessian += np.eye(2) * 1e-6 * max(np.trace(hessian), 1e-9)
        self._key, self._gx, self._gy, self._w = key, gx * weights, gy * weights, weights
        self._gxf, self._gyf = self._gx.ravel(), self._gy.ravel()
        self._wn = (weights / self._wsum).ravel()  # weights summing to 1, for the patch stats
        self._hinv = np.linalg.inv(hessian)
        self._keyf = key.ravel()
        self._key_t = t
        self._p = np.zeros(2)

    def _align(self, work: np.ndarray, center: tuple[float, float]) -> float:
        """Inverse-compositional Lucas–Kanade for a translation; returns the residual 0..1."""
        p = self._p.copy()
        error = None
        for _ in range(self.iterations):
            patch = self._patch(work, center, p).ravel()
            mean = float(self._wn @ patch)
            std = max(float(self._wn @ (patch * patch)) - mean * mean, 1e-6) ** 0.5
            error = (patch - mean) * (1.0 / std) - self._keyf
            step = self._hinv @ np.array([self._gxf @ error, self._gyf @ error])
            step = np.clip(step, -2.0, 2.0)
            p -= step
            if abs(step[0]) + abs(step[1]) < 2e-3:
                break
        self._p = p
        if error is None:
            return 1.0
        # normalised patches have unit variance: a misfit of 1 means no resemblance at all
        return float(min(1.0, np.sqrt(max(float(self._wn @ (error * error)), 0.0)) / 2.0))


def _weighted_stats(patch: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    total = float(np.sum(weights)) or 1.0
    mean = float(np.sum(weights * patch)) / total
    var = float(np.sum(weights * (patch - mean) ** 2)) / total
    return mean, max(math.sqrt(var), 1e-3)  # Python floats keep float32 patches float32
