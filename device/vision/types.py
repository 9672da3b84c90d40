"""The landmark type every backend returns (pixel coordinates in the frame given)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MediaPipe pose landmark indices we use.
NOSE = 0
LEFT_EYE = 2
RIGHT_EYE = 5
LEFT_EAR = 7
RIGHT_EAR = 8
LEFT_SHOULDER = 11
RIGHT_SHOULDER = 12
LEFT_HIP = 23
RIGHT_HIP = 24


@dataclass
class Landmarks:
    """33 pose landmarks as pixel (x, y) plus visibility 0..1, with the presence score.

    ``points`` has shape (33, 3): x, y in pixels of the frame passed in, and visibility.
    ``presence`` is the model's confidence that a person is in the crop.
    """

    points: np.ndarray
    presence: float
    backend: str = ""

    def xy(self, index: int) -> np.ndarray:
        return self.points[index, :2]

    def visible(self, index: int, threshold: float = 0.5) -> bool:
        return bool(self.points[index, 2] >= threshold)


class LandmarkBackend:
    """Seam: ``detect(image_rgb) -> Landmarks | None`` (None when no person is found)."""

    name = "base"

    def detect(self, image_rgb: np.ndarray) -> Landmarks | None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass
