"""Pose landmarks from MediaPipe's models run directly on a LiteRT interpreter.

Why not just the mediapipe package: on a Pi its graph runner costs memory and start-up time,
it drags in a GUI OpenCV, and later releases drop the bundled models. This backend needs only
the two ``.tflite`` files and reproduces MediaPipe's pose pipeline around them:

  detector (224x224, letterboxed, [-1, 1]) -> SSD decode -> weighted NMS -> ROI from the
  mid-hip and scale keypoints -> rotated 256x256 crop ([0, 1]) -> landmark model -> heatmap
  refinement -> projection back to the frame.

Like MediaPipe it tracks: after a good landmark pass the next ROI comes from the auxiliary
landmarks, so the detector only runs when the person is lost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import BadInput
from device.vision import anchors as ssd
from device.vision.geometry import (
    Roi,
    alignment_roi,
    crop,
    letterbox_roi,
    project,
    to_range,
    unletterbox,
)
from device.vision.models import model_path
from device.vision.pose_tensors import (
    AUX_CENTER,
    AUX_SCALE,
    BODY_POINTS,
    decode_landmarks,
    refine_with_heatmap,
)
from device.vision.runner import ModelRunner
from device.vision.smoothing import OneEuroFilter
from device.vision.types import LandmarkBackend, Landmarks

# Detection keypoints (pose_detection_cpu graph): 0 mid-hip centre, 1 full-body scale/rotation.
_DET_CENTER = 0
_DET_SCALE = 1
_ROI_SCALE = 1.25
log = logging.getLogger(__name__)
_FRAME_INTERVAL = 1 / 30  # assumed time between calls that pass no timestamp (as mediapipe)
# The detector (~27 MB resident) only runs to find a person who is not tracked: after this long
# tracking it is released, and loaded again only when they are lost (about 0.3 s, once).
DETECTOR_IDLE_S = 60.0


@dataclass
class StageTimes:
    """Milliseconds spent per stage in the last ``detect()`` call (for scripts/bench-vision)."""

    preprocess: float = 0.0
    detect_invoke: float = 0.0
    landmark_invoke: float = 0.0
    postprocess: float = 0.0
    ran_detection: bool = False

    @property
    def total(self) -> float:
        return self.preprocess + self.detect_invoke + self.landmark_invoke + self.postprocess


@dataclass
class _Timer:
    times: StageTimes = field(default_factory=StageTimes)
    _t: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        setattr(self.times, stage, getattr(self.times, stage) + (now - self._t) * 1000.0)
        self._t = now


def check_image(image: np.ndarray) -> np.ndarray:
    """Accept only HxWx3 uint8 RGB: anything else is a caller bug we name precisely."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise BadInput(f"landmark backends take an HxWx3 RGB image, got shape {shape}")
    if image.dtype != np.uint8:
        raise BadInput(f"landmark backends take uint8 RGB images, got dtype {image.dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise BadInput(f"image of {image.shape[1]}x{image.shape[0]} px is too small")
    return np.ascontiguousarray(image)


class LiteRTPoseBackend(LandmarkBackend):
    """MediaPipe pose (full model) with our own pre/post-processing on LiteRT."""

    name = "litert"

    def __init__(
        self,
        threads: int = 1,
        *,
        detector_path: Path | None = None,
        landmark_path: Path | None = None,
        tracking: bool = True,
        min_detection_score: float = 0.5,
        min_presence: float = 0.5,
        detector_idle_s: float = DETECTOR_IDLE_S,
    ) -> None:
        if threads < 1:
            raise BadInput(f"threads must be >= 1, got {threads}")
        if not detector_idle_s >= 0:
            raise BadInput(f"detector_idle_s must be >= 0 seconds, got {detector_idle_s}")
        # The detector runs first; the landmark model is built at its first use, so with
        # detector_idle_s = 0 the two are only held together while a person is being re-found.
        self.detector = ModelRunner(detector_path or model_path("pose_detection"), threads)
        self._detector_used = 0.0  # self._t when the detector last ran
        self.landmarker = ModelRunner(landmark_path or model_path("pose_landmark_full"), threads,
                                      load=False)
        self.tracking = tracking
        self.min_presence = min_presence
        self._decode = ssd.DecodeOptions(min_score=min_detection_score)
        self._det_size = self.detector.input_shape[1:3]
        self._lm_size = self.landmarker.input_shape[1:3]
        self._anchors = ssd.ssd_anchors(ssd.AnchorOptions(input_size=self._det_size[0]))
        self._det_boxes = self.detector.output_by_shape(
            lambda s: len(s) == 3 and s[-1] > 4, "box regressor"
        )
        self._det_scores = self.detector.output_by_shape(
            lambda s: len(s) == 3 and s[-1] == 1, "score"
        )
        self._lm_points = self.landmarker.output_by_shape(
            lambda s: len(s) == 2 and s[-1] == 5 * 39, "landmark"
        )
        self._lm_flag = self.landmarker.output_by_shape(
            lambda s: int(np.prod(s)) == 1, "presence flag"
        )
        self._lm_heatmap = self.landmarker.output_by_shape(
            lambda s: len(s) == 4 and s[-1] == 39, "heatmap"
        )
        self.detector_idle_s = detector_idle_s
        self._roi: Roi | None = None
        self._aux_filter = OneEuroFilter()
        self._t = 0.0
        self.last_times = StageTimes()
        self.last_roi: Roi | None = None

    # -- public API -----------------------------------------------------------------------

    def detect(
        self,
        image_rgb: np.ndarray,
        *,
        timestamp: float | None = None,
        force_detection: bool = False,
    ) -> Landmarks | None:
        """Landmarks in pixels of ``image_rgb``, or None when nobody is found.

        Reuses the ROI tracked from the previous call unless ``force_detection`` is set or
        tracking was lost; when the tracked ROI no longer holds a person, the detector runs on
        this same frame (MediaPipe would skip a frame instead). ``timestamp`` (seconds) paces
        the ROI smoothing; without it calls are taken to be 1/30 s apart.
        """
        image = check_image(image_rgb)
        self._t = self._t + _FRAME_INTERVAL if timestamp is None else float(timestamp)
        timer = _Timer()
        if force_detection or not self.tracking:
            self.reset()
        roi = self._roi
        tracked = roi is not None
        if roi is None:
            roi = self._find_person(image, timer)
        found = self._landmarks_in(image, roi, timer) if roi is not None else None
        if found is None and tracked:
            self.reset()
            roi = self._find_person(image, timer)
            found = self._landmarks_in(image, roi, timer) if roi is not None else None
        self.last_times = timer.times
        self.last_roi = roi
        if found is None:
            self.reset()
            return None
        points, presence = found
        if self.tracking:
            self._roi = self._next_roi(points)
            self._release_idle_detector()
        body = points[:BODY_POINTS, :3].copy()
        return Landmarks(points=body, presence=presence, backend=self.name)

    def _release_idle_detector(self) -> None:
        """A person tracked while the detector sat unused ``detector_idle_s`` needs no
        detector: free its memory until they are lost (with 0, as soon as it found them,
        before the landmark model needs its memory)."""
        if not (self.detector.loaded and self._t - self._detector_used >= self.detector_idle_s):
            return
        self.detector.release()
        log.debug("pose detector released after %.0f s unused", self.detector_idle_s)

    def reset(self) -> None:
        """Forget the tracked ROI and its smoothing: the next ``detect()`` runs the detector."""
        self._roi = None
        self._aux_filter.reset()

    def _next_roi(self, points: np.ndarray) -> Roi:
        """Next frame's ROI from the smoothed auxiliary landmarks (speed in body sizes/s)."""
        aux = points[[AUX_CENTER, AUX_SCALE], :2]
        size = 2.0 * float(np.hypot(*(aux[1] - aux[0])))
        smooth = self._aux_filter(self._t, aux, 1.0 / max(size, 1e-6))
        return alignment_roi(smooth[0], smooth[1], scale=_ROI_SCALE)

    # -- stages ---------------------------------------------------------------------------

    def find_person(self, image_rgb: np.ndarray) -> Roi | None:
        """Run only the detector: the landmark ROI of the best-scoring person, or None."""
        return self._find_person(check_image(image_rgb), _Timer())

    def _find_person(self, image: np.ndarray, timer: _Timer) -> Roi | None:
        timer.times.ran_detection = True
        height, width = image.shape[:2]
        det_h, det_w = self._det_size
        letterbox, pad = letterbox_roi(width, height, det_h / det_w)
        tensor = to_range(crop(image, letterbox, det_w, det_h, border_zero=True), -1.0, 1.0)
        timer.lap("preprocess")
        self._detector_used = self._t
        outputs = self.detector.run(tensor)
        timer.lap("detect_invoke")
        scores, boxes, keypoints = ssd.decode_detections(
            outputs[self._det_boxes][0], outputs[self._det_scores][0], self._anchors, self._decode
        )
        detections = ssd.weighted_nms(scores, boxes, keypoints, self._decode.nms_iou)
        roi = None
        if detections:
            kps = unletterbox(detections[0].keypoints, pad, width, height)
            roi = alignment_roi(kps[_DET_CENTER], kps[_DET_SCALE], scale=_ROI_SCALE)
            if not roi.width > 1.0:  # degenerate keypoints: no usable crop
                roi = None
        if roi is not None and self.tracking:
            self._release_idle_detector()
        timer.lap("postprocess")
        return roi

    def _landmarks_in(
        self, image: np.ndarray, roi: Roi, timer: _Timer
    ) -> tuple[np.ndarray, float] | None:
        lm_h, lm_w = self._lm_size
        tensor = to_range(crop(image, roi, lm_w, lm_h), 0.0, 1.0)
        timer.lap("preprocess")
        outputs = self.landmarker.run(tensor)
        timer.lap("landmark_invoke")
        presence = float(outputs[self._lm_flag].reshape(-1)[0])
        if not presence >= self.min_presence:
            timer.lap("postprocess")
            return None
        points = decode_landmarks(outputs[self._lm_points][0], lm_w)
        points = refine_with_heatmap(points, outputs[self._lm_heatmap][0])
        frame = np.empty((len(points), 4))
        frame[:, :2] = project(points[:, :2], roi)
        frame[:, 2:] = points[:, 2:]
        timer.lap("postprocess")
        return frame, presence
