"""Real photos of people (and of no one) for the landmark tests, and the mediapipe reference.

The reference (tests/data/mediapipe_reference.npz) holds what mediapipe 0.10.18's own pose
graph answers on these photos: the LiteRT backend is tested against it without mediapipe in
the venv (it has no Python 3.13 wheel). ``scripts/record-mediapipe-reference`` makes it again
in a venv with the mediapipe extra, and tests/test_vision.py checks it still matches there.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

from device.simulator.scene import _read_photo

REFERENCE = Path(__file__).with_name("data") / "mediapipe_reference.npz"


def on_canvas(img: np.ndarray, scale: float, at: tuple[int, int]) -> np.ndarray:
    """The person small in a 640x480 grey room, as at 2 m from the camera."""
    canvas = np.full((480, 640, 3), 90, np.uint8)
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas[at[1] : at[1] + small.shape[0], at[0] : at[0] + small.shape[1]] = small
    return canvas


def rotated(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    size = (img.shape[1], img.shape[0])
    return cv2.warpAffine(img, matrix, size, borderMode=cv2.BORDER_REPLICATE)


ASTRONAUT = skimage.data.astronaut()  # RGB
GRACE = np.ascontiguousarray(_read_photo("grace_hopper")[:, :, ::-1])  # RGB
PHOTOS = {
    "astronaut": ASTRONAUT,
    "grace_hopper": GRACE,
    "astronaut_mirrored": np.ascontiguousarray(ASTRONAUT[:, ::-1]),
    "astronaut_small_in_room": on_canvas(ASTRONAUT, 0.45, (200, 60)),
    "grace_small_in_room": on_canvas(GRACE, 0.35, (40, 200)),
    "grace_tilted_20deg": rotated(GRACE, 20),
    "grace_on_its_side": np.ascontiguousarray(np.rot90(GRACE)),
}
EMPTY = {
    "blank_wall": np.full((480, 640, 3), 128, np.uint8),
    "brick_texture": np.ascontiguousarray(np.repeat(skimage.data.brick()[:, :, None], 3, axis=2)),
    "sensor_noise": np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8),
    "coffee_cup": skimage.data.coffee(),
}
# the drifting person of the video-mode comparison: frame i is shifted by (3 i, i)
VIDEO_FRAMES = [shifted(PHOTOS["astronaut_small_in_room"], 3 * i, i) for i in range(4)]
DEMO_PHOTOS = ("astronaut", "grace_hopper")  # device/simulator/photos, as the demo reads them


def mediapipe_reference() -> dict[str, np.ndarray]:
    """Ask mediapipe (the extra) for every reference answer; keys as in REFERENCE."""
    from mediapipe.python.solutions import pose as mp_pose

    from device.vision.mediapipe_backend import MediaPipePoseBackend

    out: dict[str, np.ndarray] = {}
    static = MediaPipePoseBackend(static_image_mode=True)
    try:
        for name, image in {**PHOTOS, **EMPTY}.items():
            found = static.detect(image)
            out[f"static/{name}"] = np.zeros((0, 3)) if found is None else found.points
    finally:
        static.close()
    video = MediaPipePoseBackend(static_image_mode=False, smooth_landmarks=False)
    try:
        out["video"] = np.stack([video.detect(frame).points for frame in VIDEO_FRAMES])
    finally:
        video.close()
    for name in DEMO_PHOTOS:
        image = _read_photo(name)
        with mp_pose.Pose(static_image_mode=True, model_complexity=1,
                          enable_segmentation=True) as pose:
            ref = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        h, w = image.shape[:2]
        out[f"cutout_points/{name}"] = np.array(
            [(p.x * w, p.y * h) for p in ref.pose_landmarks.landmark])
        out[f"cutout_mask/{name}"] = np.packbits(ref.segmentation_mask > 0.5, axis=None)
    return out


def load_reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return dict(data)


def reference_landmarks(ref: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    """mediapipe's static-mode (33, 3) answer for photo ``name``, None when it found nobody."""
    points = ref[f"static/{name}"]
    return None if points.size == 0 else points


def reference_mask(ref: dict[str, np.ndarray], name: str, shape: tuple[int, int]) -> np.ndarray:
    bits = np.unpackbits(ref[f"cutout_mask/{name}"], count=shape[0] * shape[1])
    return bits.reshape(shape).astype(bool)
