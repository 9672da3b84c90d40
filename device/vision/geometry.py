"""Rotated regions of interest: letterboxing, affine crops and projection back to the frame.

Conventions follow MediaPipe's ImageToTensor / LandmarkProjection calculators, so that a
landmark the model puts at crop coordinate (u, v) lands on the same frame pixel here as there:
the crop's corner (0, 0) is the ROI's top-left corner, (size, size) its bottom-right one, and
a positive rotation turns the crop clockwise on screen (y points down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle in frame pixels: centre, size, rotation in radians."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0

    def corners(self) -> np.ndarray:
        """Frame pixels of the ROI's bottom-left, top-left, top-right, bottom-right corners."""
        local = np.array(
            [[-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5], [0.5, 0.5]], dtype=np.float64
        ) * (self.width, self.height)
        return local @ rotation_matrix(self.rotation).T + (self.cx, self.cy)


def rotation_matrix(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def normalize_radians(angle: float) -> float:
    """Wrap to [-pi, pi)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def letterbox_roi(width: int, height: int, aspect: float = 1.0) -> tuple[Roi, tuple[float, float]]:
    """Whole-frame ROI widened to the tensor's ``aspect`` (height / width).

    Returns the ROI and the padding (x, y) as a fraction of the padded size on each side,
    which is what has to be removed from the detector's normalized outputs.
    """
    roi_aspect = height / width
    if aspect > roi_aspect:
        new_w, new_h = float(width), width * aspect
        pad = (0.0, (1.0 - roi_aspect / aspect) / 2)
    else:
        new_w, new_h = height / aspect, float(height)
        pad = ((1.0 - aspect / roi_aspect) / 2, 0.0)
    return Roi(width / 2, height / 2, new_w, new_h, 0.0), pad


def crop_matrix(roi: Roi, out_w: int, out_h: int) -> np.ndarray:
    """2x3 affine matrix taking frame pixels to crop pixels."""
    src = roi.corners()[:3].astype(np.float32)
    dst = np.array([[0, out_h], [0, 0], [out_w, 0]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def crop(
    image: np.ndarray, roi: Roi, out_w: int, out_h: int, border_zero: bool = False
) -> np.ndarray:
    """Cut ``roi`` out of ``image`` into an ``out_w`` x ``out_h`` uint8 crop (bilinear)."""
    return cv2.warpAffine(
        image,
        crop_matrix(roi, out_w, out_h),
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT if border_zero else cv2.BORDER_REPLICATE,
        borderValue=(0, 0, 0),
    )


def to_range(crop_u8: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 HxWx3 -> float32 1xHxWx3 scaled to [low, high]."""
    scale = np.float32((high - low) / 255.0)
    return (crop_u8.astype(np.float32) * scale + np.float32(low))[None]


def project(points: np.ndarray, roi: Roi) -> np.ndarray:
    """Crop-normalized (u, v) in 0..1 -> frame pixels (N, 2)."""
    local = (np.asarray(points, dtype=np.float64)[:, :2] - 0.5) * (roi.width, roi.height)
    return local @ rotation_matrix(roi.rotation).T + (roi.cx, roi.cy)


def alignment_roi(
    center: np.ndarray,
    scale_point: np.ndarray,
    target_angle: float = math.pi / 2,
    scale: float = 1.25,
) -> Roi:
    """Square ROI from two frame-pixel points, as MediaPipe's pose tracking builds it.

    ``center`` (mid-hip) becomes the centre; twice its distance to ``scale_point`` the side,
    enlarged by ``scale``; the rotation turns the centre->scale_point vector to
    ``target_angle`` (90 deg: the body upright in the crop).
    """
    dx = float(scale_point[0] - center[0])
    dy = float(scale_point[1] - center[1])
    side = 2.0 * math.hypot(dx, dy) * scale
    rotation = normalize_radians(target_angle - math.atan2(-dy, dx))
    return Roi(float(center[0]), float(center[1]), side, side, rotation)


def unletterbox(
    points: np.ndarray, pad: tuple[float, float], width: int, height: int
) -> np.ndarray:
    """Detector-normalized points (..., 2) on the padded square -> frame pixels."""
    px, py = pad
    out = np.empty_like(np.asarray(points, dtype=np.float64))
    out[..., 0] = (points[..., 0] - px) / (1.0 - 2 * px) * width
    out[..., 1] = (points[..., 1] - py) / (1.0 - 2 * py) * height
    return out
