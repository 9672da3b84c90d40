"""Find the person in a still photo: 33 pose landmarks and a soft segmentation mask.

The demo scene needs this once per photo. It runs MediaPipe's bundled pose models on our own
LiteRT pipeline rather than importing mediapipe, whose graph runner adds ~130 MB of resident
memory to ``breathe run --demo`` for a single call. The mask is the landmark model's
segmentation output for the person's ROI, mapped back onto the photo the way MediaPipe's
static-image pose graph does (sigmoid of the logits, inverse ROI warp, zero outside the ROI).
"""

from __future__ import annotations

import cv2
import numpy as np

from common.errors import SourceError
from device.vision.geometry import crop, crop_matrix, to_range
from device.vision.litert_backend import LiteRTPoseBackend
from device.vision.runner import release_memory


def find_person(image_bgr: np.ndarray, what: str = "photo") -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (33, 2) in pixels and the person's probability mask (H, W) float32 0..1.

    Raises SourceError naming ``what`` when no person is found.
    """
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    backend = LiteRTPoseBackend(tracking=False)
    landmarks = backend.detect(rgb)
    roi = backend.last_roi
    if landmarks is None or roi is None:
        raise SourceError(f"demo person: no person found in the {what}")
    runner = backend.landmarker
    seg_index = runner.output_by_shape(lambda s: len(s) == 4 and s[-1] == 1, "segmentation")
    size_h, size_w = runner.input_shape[1:3]
    logits = runner.run(to_range(crop(rgb, roi, size_w, size_h), 0.0, 1.0))[seg_index][0, :, :, 0]
    h, w = image_bgr.shape[:2]
    with np.errstate(over="ignore"):  # exp(-logit) overflows to inf for confident background: 0
        probability = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    mask = cv2.warpAffine(
        probability,
        crop_matrix(roi, size_w, size_h),
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    points = landmarks.points[:, :2].copy()
    del backend, runner  # the models are not needed again: hand their ~80 MB back
    release_memory()
    return points, mask
