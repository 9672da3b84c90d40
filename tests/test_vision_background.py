"""The background patch that measures camera shake (device.vision.roi.background_roi)."""

from __future__ import annotations

import numpy as np

from device.vision.roi import BACKGROUND_SIDE, background_roi, place_roi
from device.vision.types import LEFT_EAR, LEFT_SHOULDER, NOSE, RIGHT_EAR, RIGHT_SHOULDER, Landmarks


def person(cx: float = 320.0, shoulders: float = 140.0) -> Landmarks:
    """A person centred at ``cx``: every landmark on the body, head and shoulders placed."""
    points = np.zeros((33, 3))
    points[:, 0], points[:, 1], points[:, 2] = cx, 330.0, 1.0
    points[LEFT_SHOULDER, :2] = (cx + shoulders / 2, 260.0)
    points[RIGHT_SHOULDER, :2] = (cx - shoulders / 2, 260.0)
    points[NOSE, :2] = (cx, 180.0)
    points[LEFT_EAR, :2] = (cx + 25, 175.0)
    points[RIGHT_EAR, :2] = (cx - 25, 175.0)
    return Landmarks(points, presence=1.0)


def scene(textured: slice, shape=(480, 640)) -> np.ndarray:
    """A plain grey wall with one textured stretch of columns (a bookshelf, say)."""
    image = np.full((*shape, 3), 120, np.uint8)
    noise = np.random.default_rng(0).integers(0, 255, (shape[0], shape[1], 3), dtype=np.uint8)
    image[:, textured] = noise[:, textured]
    return image


def test_the_square_sits_on_the_textured_background_and_never_on_the_person() -> None:
    lm = person()
    for textured, side in ((slice(0, 150), "left"), (slice(500, 640), "right")):
        image = scene(textured)
        body = place_roi(lm, image.shape)
        box = background_roi(lm, image, body)
        assert box is not None and box.width == box.height == BACKGROUND_SIDE
        assert box.x1 <= body.x0 or box.x0 >= body.x1 or box.y1 <= 180 - 140, box
        inside = (box.x1 <= 150) if side == "left" else (box.x0 >= 500)
        assert inside, (side, box)


def test_no_square_when_the_person_fills_the_frame() -> None:
    lm = person(cx=160.0, shoulders=250.0)
    image = scene(slice(0, 320), shape=(240, 320))
    body = place_roi(lm, image.shape)
    assert body is not None
    assert background_roi(lm, image, body) is None
