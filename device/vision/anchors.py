"""SSD anchors, detection decoding and weighted NMS for MediaPipe's pose detector.

The numbers are MediaPipe's own settings for ``pose_detection.tflite`` (its
``pose_detection_cpu`` graph: SsdAnchorsCalculator, TensorsToDetectionsCalculator and
NonMaxSuppressionCalculator options); the model was trained against exactly these anchors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class AnchorOptions:
    """SsdAnchorsCalculator options (fixed-size anchors: only centres matter)."""

    input_size: int = 224
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    strides: tuple[int, ...] = (8, 16, 32, 32, 32)
    offset: float = 0.5
    # One anchor per aspect ratio (1.0) plus one interpolated-scale anchor per layer.
    anchors_per_layer: int = 2


@dataclass(frozen=True)
class DecodeOptions:
    """TensorsToDetectionsCalculator options for pose detection."""

    scale: float = 224.0  # x_scale = y_scale = w_scale = h_scale
    num_keypoints: int = 4
    score_clip: float = 100.0
    min_score: float = 0.5
    nms_iou: float = 0.3


POSE_ANCHORS = AnchorOptions()
POSE_DECODE = DecodeOptions()


def ssd_anchors(opts: AnchorOptions = POSE_ANCHORS) -> np.ndarray:
    """Anchor centres (N, 2) as x, y in 0..1, in the model's output order.

    Consecutive layers with the same stride share one feature map; each cell gets
    ``anchors_per_layer`` anchors per layer in that group.
    """
    centres = []
    layer = 0
    while layer < len(opts.strides):
        stride = opts.strides[layer]
        group = 0
        while layer < len(opts.strides) and opts.strides[layer] == stride:
            group += 1
            layer += 1
        size = int(np.ceil(opts.input_size / stride))
        coords = (np.arange(size, dtype=np.float64) + opts.offset) / size
        ys, xs = np.meshgrid(coords, coords, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, group * opts.anchors_per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass
class Detection:
    """One decoded detection, normalized to the detector input (0..1)."""

    score: float
    box: np.ndarray  # xmin, ymin, xmax, ymax
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))


def decode_detections(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    opts: DecodeOptions = POSE_DECODE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode regressors (N, 4 + 2K) and logits (N,) against anchors.

    Returns (scores, boxes (M, 4) xmin/ymin/xmax/ymax, keypoints (M, K, 2)) for the M anchors
    whose sigmoid score reaches ``min_score``. Boxes are x, y, w, h order in the tensor
    (``reverse_output_order``), offsets in input pixels relative to the anchor centre.
    """
    logits = np.clip(raw_scores.reshape(-1), -opts.score_clip, opts.score_clip)
    scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    keep = np.flatnonzero(scores >= opts.min_score)
    raw = raw_boxes.reshape(len(anchors), -1)[keep] / opts.scale
    anc = anchors[keep]
    cx = raw[:, 0] + anc[:, 0]
    cy = raw[:, 1] + anc[:, 1]
    half_w = raw[:, 2] / 2
    half_h = raw[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    kp = raw[:, 4 : 4 + 2 * opts.num_keypoints].reshape(len(keep), opts.num_keypoints, 2)
    kp = kp + anc[:, None, :]
    return scores[keep], boxes, kp


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each of ``boxes`` (xmin, ymin, xmax, ymax)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, threshold: float
) -> list[Detection]:
    """MediaPipe's WEIGHTED non-max suppression, best first.

    The best remaining box absorbs every box overlapping it by more than ``threshold`` IoU;
    the merged box and keypoints are the score-weighted mean of the group, the score is the
    best one's. Averaging steadies the ROI that the landmark model then sees.
    """
    order = np.argsort(-scores, kind="stable")
    result: list[Detection] = []
    while order.size:
        top = order[0]
        in_group = iou(boxes[top], boxes[order]) > threshold
        in_group[0] = True  # a degenerate (zero-area) box still forms its own group
        group = order[in_group]
        order = order[~in_group]
        weights = scores[group][:, None]
        total = float(weights.sum())
        box = (boxes[group] * weights).sum(axis=0) / total
        kps = (keypoints[group] * weights[:, :, None]).sum(axis=0) / total
        result.append(Detection(float(scores[top]), box.astype(np.float32), kps.astype(np.float32)))
    return result
