"""One-euro filter for the tracking ROI, with MediaPipe's settings for pose auxiliary points.

MediaPipe smooths the two auxiliary landmarks that place the next frame's crop heavily when
the body is still (alpha ~0.002) and lightly when it moves fast: a steady crop keeps the
landmark model's output steady too, which matters when the landmarks place a breathing region.
Speeds are measured in object sizes per second, so the filter behaves the same for a person
near or far.
"""

from __future__ import annotations

import math

import numpy as np

# LandmarksSmoothingCalculator options for auxiliary pose landmarks (pose_landmark_filtering).
AUX_MIN_CUTOFF = 0.01
AUX_BETA = 10.0
AUX_DERIVATE_CUTOFF = 1.0
DEFAULT_FREQUENCY = 30.0


def _alpha(cutoff: float | np.ndarray, frequency: float) -> float | np.ndarray:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * frequency)


class OneEuroFilter:
    """Filter an array of values (e.g. (N, 2) pixel points) sample by sample."""

    def __init__(
        self,
        min_cutoff: float = AUX_MIN_CUTOFF,
        beta: float = AUX_BETA,
        derivate_cutoff: float = AUX_DERIVATE_CUTOFF,
        frequency: float = DEFAULT_FREQUENCY,
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivate_cutoff = derivate_cutoff
        self._initial_frequency = frequency
        self.reset()

    def reset(self) -> None:
        self._frequency = self._initial_frequency
        self._last_t: float | None = None
        self._last_raw: np.ndarray | None = None
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def __call__(self, t: float, value: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        """Filtered ``value`` at time ``t`` (seconds); ``value_scale`` divides out object size."""
        value = np.asarray(value, dtype=np.float64)
        if self._last_t is not None and t <= self._last_t:
            return value  # out-of-order or repeated time: pass through, keep the state
        if self._last_t is not None:
            self._frequency = 1.0 / (t - self._last_t)
        self._last_t = t
        if self._last_raw is None or self._value is None:
            speed = np.zeros_like(value)
        else:
            speed = (value - self._last_raw) * value_scale * self._frequency
        a_d = _alpha(self.derivate_cutoff, self._frequency)
        self._speed = speed if self._speed is None else a_d * speed + (1 - a_d) * self._speed
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        a = _alpha(cutoff, self._frequency)
        self._value = value if self._value is None else a * value + (1 - a) * self._value
        self._last_raw = value
        return self._value.copy()
