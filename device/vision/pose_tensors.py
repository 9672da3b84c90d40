"""Decode ``pose_landmark_full.tflite`` outputs into crop-normalized landmarks.

Follows MediaPipe's TensorsToLandmarks and RefineLandmarksFromHeatmap calculators: 39 points
(33 body + 6 auxiliary, of which 33 and 34 place the next frame's ROI) with x, y in crop pixels
and logits for visibility and presence; the 64x64 heatmap then sharpens x, y where it is sure.
"""

from __future__ import annotations

import numpy as np

NUM_POINTS = 39
BODY_POINTS = 33
AUX_CENTER = 33  # auxiliary landmark: body centre (mid-hip)
AUX_SCALE = 34  # auxiliary landmark: encodes size and rotation of the body
# The public pbtxt says kernel_size 7, but the graph compiled into mediapipe 0.10.18 behaves as 9:
# with 9 every one of the 33 landmarks matches its output to < 0.35 px, with 7 some move 4-80 px.
HEATMAP_KERNEL = 9
HEATMAP_MIN_CONFIDENCE = 0.5


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def decode_landmarks(raw: np.ndarray, input_size: int) -> np.ndarray:
    """Flat (195,) tensor -> (39, 4): u, v in 0..1 of the crop, visibility, presence."""
    pts = np.asarray(raw, dtype=np.float64).reshape(NUM_POINTS, 5)
    out = np.empty((NUM_POINTS, 4))
    out[:, 0] = pts[:, 0] / input_size
    out[:, 1] = pts[:, 1] / input_size
    out[:, 2] = sigmoid(pts[:, 3])
    out[:, 3] = sigmoid(pts[:, 4])
    return out


def refine_with_heatmap(
    points: np.ndarray,
    heatmap: np.ndarray,
    kernel: int = HEATMAP_KERNEL,
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
) -> np.ndarray:
    """Replace u, v by the sigmoid-weighted mean of the heatmap around each point.

    ``heatmap`` is (H, W, 39) of logits. A point moves only when the window's peak confidence
    reaches ``min_confidence``; points outside the heatmap stay as they are.
    """
    hm_h, hm_w, channels = heatmap.shape
    if channels != len(points):
        raise ValueError(f"heatmap has {channels} channels for {len(points)} landmarks")
    half = (kernel - 1) // 2
    cols = np.trunc(points[:, 0] * hm_w).astype(int)
    rows = np.trunc(points[:, 1] * hm_h).astype(int)
    # MediaPipe checks the column twice and never the bottom edge, so points just below the
    # heatmap are still refined from the rows they reach; do the same to stay comparable.
    inside = (cols >= 0) & (cols < hm_w) & (rows >= 0)
    offsets = np.arange(-half, half + 1)
    rr = rows[:, None] + offsets  # (N, k) window rows per landmark
    cc = cols[:, None] + offsets
    mask = ((rr >= 0) & (rr < hm_h))[:, :, None] & ((cc >= 0) & (cc < hm_w))[:, None, :]
    logits = heatmap[
        np.clip(rr, 0, hm_h - 1)[:, :, None],
        np.clip(cc, 0, hm_w - 1)[:, None, :],
        np.arange(channels)[:, None, None],
    ]
    conf = sigmoid(logits) * mask  # windows are cut at the heatmap edge (zero border)
    total = conf.sum(axis=(1, 2))
    peak = conf.max(axis=(1, 2))
    move = inside & (total > 0) & (peak >= min_confidence)
    safe = np.where(total > 0, total, 1.0)
    out = points.copy()
    out[move, 0] = ((conf * cc[:, None, :]).sum(axis=(1, 2)) / safe / hm_w)[move]
    out[move, 1] = ((conf * rr[:, :, None]).sum(axis=(1, 2)) / safe / hm_h)[move]
    return out
