"""Placing the breathing region of interest from pose landmarks.

The region spans both shoulders and the upper chest: the shoulder line against the background
and the chest's texture both move with the breath. The head is masked out, because nodding or
turning it is not breathing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.types import (
    LEFT_EAR,
    LEFT_SHOULDER,
    NOSE,
    RIGHT_EAR,
    RIGHT_SHOULDER,
    Landmarks,
)

MIN_SHOULDER_PX = 24.0  # below this the person is too small to measure
SIDE_MARGIN = 0.12  # of shoulder width, beyond each shoulder
ABOVE = 0.40  # of shoulder width, above the shoulder line (the trapezius contour)
BELOW = 0.45  # of shoulder width, below it (upper chest)


@dataclass
class Roi:
    """Where to look: a box in frame pixels, a weight mask over it, and the person's scale."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale_px: float  # the person's shoulder width in frame pixels
    mask: np.ndarray | None = None  # float32 (y1-y0, x1-x0), 0 where to ignore (the head)

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1 - 1) / 2.0, (self.y0 + self.y1 - 1) / 2.0)


def shoulder_width(lm: Landmarks) -> float:
    return float(np.linalg.norm(lm.xy(LEFT_SHOULDER) - lm.xy(RIGHT_SHOULDER)))


def place_roi(lm: Landmarks, frame_shape: tuple[int, ...],
              min_visibility: float = 0.5) -> Roi | None:
    """The chest/shoulder box for these landmarks, or None when shoulders are not usable."""
    height, width = frame_shape[:2]
    if not (lm.visible(LEFT_SHOULDER, min_visibility) and lm.visible(RIGHT_SHOULDER,
                                                                     min_visibility)):
        return None
    left, right = lm.xy(LEFT_SHOULDER), lm.xy(RIGHT_SHOULDER)
    sw = shoulder_width(lm)
    if sw < MIN_SHOULDER_PX:
        return None
    cy = (left[1] + right[1]) / 2.0
    x0 = int(np.floor(min(left[0], right[0]) - SIDE_MARGIN * sw))
    x1 = int(np.ceil(max(left[0], right[0]) + SIDE_MARGIN * sw))
    y0 = int(np.floor(cy - ABOVE * sw))
    y1 = int(np.ceil(cy + BELOW * sw))
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    if x1 - x0 < 0.6 * sw or y1 - y0 < 0.3 * sw:
        return None  # mostly out of frame
    mask = np.ones((y1 - y0, x1 - x0), np.float32)
    _mask_head(mask, lm, sw, (x0, y0))
    if mask.mean() < 0.3:
        return None
    return Roi(x0, y0, x1, y1, scale_px=sw, mask=mask)


def _mask_head(mask: np.ndarray, lm: Landmarks, sw: float, origin: tuple[int, int]) -> None:
    """Zero the head (an ellipse around the nose, reaching below the chin) in ``mask``."""
    if not lm.visible(NOSE, 0.3):
        return
    nose = lm.xy(NOSE)
    ears = [lm.xy(i) for i in (LEFT_EAR, RIGHT_EAR) if lm.visible(i, 0.3)]
    face = float(np.linalg.norm(ears[0] - ears[1])) if len(ears) == 2 else 0.0
    face = max(face, 0.35 * sw)
    center = (int(round(nose[0] - origin[0])), int(round(nose[1] - origin[1])))
    axes = (int(round(0.65 * face)), int(round(0.95 * face)))
    cv2.ellipse(mask, center, axes, 0.0, 0.0, 360.0, 0.0, thickness=-1)


def roi_moved(old: Roi, new: Roi, tolerance: float = 0.08) -> bool:
    """True when the person moved enough (a fraction of shoulder width) to re-place the ROI."""
    shift = np.hypot(new.center[0] - old.center[0], new.center[1] - old.center[1])
    return bool(shift > tolerance * old.scale_px
                or abs(new.scale_px - old.scale_px) > tolerance * old.scale_px)


BACKGROUND_SIDE = 128  # px: the square of background that measures camera shake ...
BACKGROUND_MIN = 96  # ... or a box as large beside a big person, at least this wide (a
# narrower strip measured shake worse than the low-pass fallback does: synthetic shake scene)


def background_roi(lm: Landmarks, image: np.ndarray, person: Roi,
                   side: int = BACKGROUND_SIDE) -> Roi | None:
    """The most textured patch of background: camera shake moves it, breathing does not.

    The person (from the landmarks' extent, from above the head down) is left out. Among the
    ``side``-px squares that fit beside or above them the one whose weakest gradient direction
    is strongest wins, since it pins a translation down best; a person too big for a square
    beside them leaves a narrower, taller box of the same area. A patch is cheap to follow
    every frame; the whole frame cost more than the person's own region. None when nothing
    at least ``BACKGROUND_MIN`` px wide is left.
    """
    height, width = image.shape[:2]
    sw = person.scale_px
    xs = lm.points[:, 0]
    x0 = int(max(0, min(xs.min(), person.x0) - 0.35 * sw))
    x1 = int(min(width, max(xs.max(), person.x1) + 0.35 * sw))
    top = lm.xy(NOSE)[1] - 1.0 * sw if lm.visible(NOSE, 0.3) else person.y0 - 0.8 * sw
    y0 = int(max(0, top))
    shapes = {(side, side)}
    for gap in (x0, width - x1):  # a strip beside the person
        if BACKGROUND_MIN <= gap < side:
            shapes.add((gap, min(height, side * side // gap)))
    if BACKGROUND_MIN <= y0 < side:  # a band above the head
        shapes.add((min(width, side * side // y0), y0))
    tensor = _structure_integrals(image)
    best: tuple[float, int, int, int, int] | None = None
    for bw, bh in shapes:
        if bw > width or bh > height:
            continue
        # a grid of positions, plus those flush against the person's side and head
        cols = np.append(np.arange(0, width - bw + 1, max(4, bw // 4)), [x0 - bw, x1])
        rows = np.append(np.arange(0, height - bh + 1, max(4, bh // 4)), y0 - bh)
        bx, by = np.meshgrid(np.unique(cols[(cols >= 0) & (cols <= width - bw)]),
                             np.unique(rows[(rows >= 0) & (rows <= height - bh)]))
        bx, by = bx.ravel(), by.ravel()
        free = (bx + bw <= x0) | (bx >= x1) | (by + bh <= y0)
        if not free.any():
            continue
        energy = _weakest_gradient(tensor, bx[free], by[free], bw, bh)
        k = int(np.argmax(energy))
        if best is None or energy[k] > best[0]:
            best = (float(energy[k]), int(bx[free][k]), int(by[free][k]), bw, bh)
    if best is None:
        return None
    _, x, y, bw, bh = best
    return Roi(x, y, x + bw, y + bh, scale_px=sw)


def _structure_integrals(image: np.ndarray) -> list[np.ndarray]:
    """Integral images of gx², gy² and gx·gy on the green channel at half size."""
    grey = image[..., 1] if image.ndim == 3 else image
    small = cv2.pyrDown(grey).astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    return [cv2.integral(g, sdepth=cv2.CV_64F) for g in (gx * gx, gy * gy, gx * gy)]


def _weakest_gradient(tensor: list[np.ndarray], bx: np.ndarray, by: np.ndarray,
                      bw: int, bh: int) -> np.ndarray:
    """Per box (top-left ``bx``, ``by``, size ``bw`` x ``bh`` frame px): the smaller eigenvalue
    of its summed structure tensor."""
    a0, b0, nw, nh = bx // 2, by // 2, bw // 2, bh // 2
    xx, yy, xy = (ii[b0 + nh, a0 + nw] - ii[b0, a0 + nw] - ii[b0 + nh, a0] + ii[b0, a0]
                  for ii in tensor)
    return (xx + yy) / 2.0 - np.sqrt(((xx - yy) / 2.0) ** 2 + xy * xy)
