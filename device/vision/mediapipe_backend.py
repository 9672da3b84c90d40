"""Pose landmarks from the mediapipe solutions API (the reference the LiteRT backend matches).

Only ``model_complexity=1`` works offline in mediapipe 0.10.18: the lite and heavy models are
not bundled and would be downloaded. mediapipe is imported lazily so that the rest of the
package (and the LiteRT backend) loads without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.errors import BadInput, SourceError, require_extra
from device.vision.litert_backend import check_image
from device.vision.types import LandmarkBackend, Landmarks


class MediaPipePoseBackend(LandmarkBackend):
    """``mp.solutions.pose.Pose`` with its landmarks converted to frame pixels."""

    name = "mediapipe"

    def __init__(
        self,
        *,
        static_image_mode: bool = False,
        smooth_landmarks: bool = True,
        model_complexity: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        if model_complexity != 1:
            raise BadInput(
                f"model_complexity={model_complexity} is not available offline: mediapipe "
                "0.10.18 bundles only the full pose model (model_complexity=1)"
            )
        require_extra("mediapipe", "mediapipe", "the mediapipe landmark backend "
                      "([vision] backend = \"mediapipe\"; Python 3.11 only)")
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as exc:
            raise SourceError(
                f"the mediapipe backend needs mediapipe==0.10.18 with solutions: {exc}"
            ) from exc
        self.static_image_mode = static_image_mode
        self._settings: dict[str, Any] = dict(
            static_image_mode=static_image_mode,
            smooth_landmarks=smooth_landmarks,
            model_complexity=model_complexity,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._factory = mp_pose.Pose
        self._pose = self._factory(**self._settings)

    def detect(
        self,
        image_rgb: np.ndarray,
        *,
        timestamp: float | None = None,
        force_detection: bool = False,
    ) -> Landmarks | None:
        """Same call as the LiteRT backend. ``timestamp`` is ignored (the solutions API assumes
        30 fps); ``force_detection`` rebuilds the graph, which costs ~0.1 s, so prefer
        ``static_image_mode=True`` when every frame should be detected afresh."""
        image = check_image(image_rgb)
        if force_detection and not self.static_image_mode:
            self.reset()
        result = self._pose.process(image)
        if result.pose_landmarks is None:
            return None
        height, width = image.shape[:2]
        points = np.array(
            [(lm.x * width, lm.y * height, lm.visibility) for lm in result.pose_landmarks.landmark],
            dtype=np.float64,
        )
        # The solutions API does not expose the pose presence score; landmarks only come out
        # when it passed min_tracking_confidence, so a result means "present".
        presence = 1.0
        return Landmarks(points=points, presence=float(presence), backend=self.name)

    def reset(self) -> None:
        """Drop tracking and smoothing state (a new graph; mediapipe has no reset call)."""
        self._pose.close()
        self._pose = self._factory(**self._settings)

    def close(self) -> None:
        self._pose.close()
