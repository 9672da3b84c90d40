"""Small image conversions shared by the frame sources."""

from __future__ import annotations

import cv2
import numpy as np


def lores_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray | None:
    """A smaller BGR copy for the landmark models (``size`` = (width, height)), or None."""
    if size is None:
        return None
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)


def yuv420_to_bgr(buffer: np.ndarray, width: int, height: int) -> np.ndarray:
    """Planar YUV 4:2:0 (I420) as libcamera delivers it, possibly with padded rows, to BGR.

    ``buffer`` is (height * 3 / 2, stride): ``height`` rows of Y, then U and V planes whose rows
    are ``stride / 2`` wide, packed two to a buffer row. Padding beyond ``width`` is dropped.
    """
    stride = buffer.shape[1]
    if stride == width:
        return cv2.cvtColor(np.ascontiguousarray(buffer[: height * 3 // 2]),
                            cv2.COLOR_YUV2BGR_I420)
    flat = np.ascontiguousarray(buffer).reshape(-1)
    half_w, half_h, half_s = width // 2, height // 2, stride // 2
    y = flat[: height * stride].reshape(height, stride)[:, :width]
    u_start = height * stride
    v_start = u_start + half_h * half_s
    u = flat[u_start:v_start].reshape(half_h, half_s)[:, :half_w]
    v = flat[v_start: v_start + half_h * half_s].reshape(half_h, half_s)[:, :half_w]
    packed = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)])
    return cv2.cvtColor(packed.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420)
