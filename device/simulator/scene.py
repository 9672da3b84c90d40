"""The synthetic scene: a real photo of a person, cut out and warped by a breathing motion.

A photo shipped with the package is split once into a background plate (the person
filled in from the surroundings) and a person sprite (colour + alpha from the pose landmark
model's segmentation, padded so the body continues below and beside the photo). Each frame
moves the sprite with a smooth displacement field made of a few physically placed components
(shoulders and upper torso rise, chest widens, head follows; head turn, lean, translation) and
lays it over the plate, so the background never moves. Fields are evaluated on a coarse grid and
upsampled, so a frame costs one ``cv2.remap`` and one blend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from common.errors import SourceError
from device.simulator.cutout import find_person

PHOTOS = ("astronaut", "grace_hopper")
GRID_STEP = 8  # px between coarse displacement samples
_NOSE, _L_EYE, _R_EYE, _L_EAR, _R_EAR, _L_SH, _R_SH = 0, 2, 5, 7, 8, 11, 12


@dataclass(frozen=True)
class Photo:
    """A photo with the person's mask (0..1) and 33 pose landmarks in its pixels."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    landmarks: np.ndarray  # (33, 2) x, y

    @property
    def head_top(self) -> float:
        """Highest row of the silhouette above the nose (hair or hat included)."""
        x = int(self.landmarks[_NOSE, 0])
        column = self.mask[:, max(0, x - 10): x + 10].max(axis=1)
        rows = np.nonzero(column > 0.5)[0]
        return float(rows[0]) if rows.size else 0.0


# The photos ship with the package (device/simulator/photos/, public domain, see README.md there),
# stored as PNG with exactly the pixels their original files decode to.
_PHOTO_DIR = Path(__file__).with_name("photos")


def _read_photo(name: str) -> np.ndarray:
    if name not in PHOTOS:
        raise SourceError(f"demo person: unknown photo {name!r}; allowed: {', '.join(PHOTOS)}")
    path = _PHOTO_DIR / f"{name}.png"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(
            f"demo person: cannot read {path}; the installed package is incomplete, reinstall "
            "breathe (pip install --force-reinstall .)"
        )
    return image


@lru_cache(maxsize=4)
def load_photo(name: str) -> Photo:
    """Load a shipped photo and find the person in it once (pose models on LiteRT, offline)."""
    image = _read_photo(name)
    points, probability = find_person(image, f"{name} photo")
    mask = np.clip((probability - 0.25) / 0.5, 0, 1)
    return Photo(name, image, cv2.GaussianBlur(mask, (0, 0), 1.0), points)


def fill_background(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the masked person from the surrounding background (multi-scale normalised blur)."""
    hole = cv2.dilate((mask > 0.1).astype(np.uint8), np.ones((21, 21), np.uint8))
    known = 1.0 - hole.astype(np.float32)
    img = image.astype(np.float32)
    estimate = np.zeros_like(img)
    estimate[:] = img[known > 0].mean(axis=0) if known.any() else 128.0
    for sigma in (128, 64, 32, 16, 8, 4):
        num = cv2.GaussianBlur(img * known[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(known, (0, 0), sigma)[..., None]
        weight = np.clip(den / 0.3, 0.0, 1.0)
        estimate = weight * (num / np.maximum(den, 1e-4)) + (1 - weight) * estimate
    feather = cv2.GaussianBlur(known, (0, 0), 3)[..., None]
    return np.clip(img * feather + estimate * (1 - feather), 0, 255).astype(np.uint8)


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height and crop the centre (top-anchored: keep the ceiling)."""
    h, w = image.shape[:2]
    s = max(width / w, height / h)
    resized = cv2.resize(image, (max(width, round(w * s)), max(height, round(h * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    x0 = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[:height, x0: x0 + width])


def wall_plate(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A plain room wall: colour gradient, soft texture, a skirting line and a picture frame."""
    base = rng.uniform(90, 210, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 1.0 + 0.15 * (xx / width - 0.5) * rng.choice([-1, 1]) - 0.1 * (yy / height)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height // 4, width // 4)).astype(np.float32),
                               (0, 0), 2)
    texture = cv2.resize(texture, (width, height)) * 6
    img = base[None, None, :] * shade[..., None] + texture[..., None]
    y = int(height * rng.uniform(0.75, 0.9))
    img[y:] *= 0.7
    x0, y0 = int(width * rng.uniform(0.05, 0.6)), int(height * rng.uniform(0.05, 0.3))
    x1, y1 = x0 + int(width * rng.uniform(0.15, 0.3)), y0 + int(height * rng.uniform(0.15, 0.3))
    cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(c) for c in rng.uniform(20, 90, 3)),
                  max(2, width // 160))
    return np.clip(img, 0, 255).astype(np.uint8)


def _pingpong(strip: np.ndarray, n: int, axis: int) -> np.ndarray:
    """n rows (axis 0) or columns (axis 1) of a strip mirrored back and forth."""
    back = np.flip(strip, axis=axis)
    reps = math.ceil(n / strip.shape[axis]) + 1
    tiled = np.concatenate([back if i % 2 == 0 else strip for i in range(reps)], axis=axis)
    return tiled[:n] if axis == 0 else tiled[:, :n]


def _extend(img: np.ndarray, pad_x: int, pad_b: int, band_x: int, band_y: int) -> np.ndarray:
    """Continue clothing beyond the photo's sides and bottom by mirroring only an edge band,
    so a face or hands never reappear in the padding."""
    left = np.flip(_pingpong(img[:, :band_x][:, ::-1], pad_x, 1), axis=1)
    right = _pingpong(img[:, -band_x:], pad_x, 1)
    wide = np.concatenate([left, img, right], axis=1)
    return np.concatenate([wide, _pingpong(wide[-band_y:], pad_b, 0)], axis=0)


def _slope_sides(mask: np.ndarray, pad_x: int, slope: float = 0.7) -> np.ndarray:
    """Bend the body continued into the side pads down and away, as arms fall from the
    shoulders, instead of a flat-topped block."""
    out = mask.copy()
    h = mask.shape[0]
    for x0, x1, sign in ((0, pad_x, -1), (mask.shape[1] - pad_x, mask.shape[1], 1)):
        block = np.ascontiguousarray(mask[:, x0:x1])
        edge = 0 if sign > 0 else pad_x - 1  # column touching the photo
        # destination (x, y) reads the block at (x, y - slope * distance from the photo)
        shear = np.float32([[1, 0, 0], [-slope * sign, 1, slope * sign * edge]])
        out[:, x0:x1] = cv2.warpAffine(block, shear, (pad_x, h),
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_REPLICATE)
    return out


@dataclass(frozen=True)
class Placement:
    """Where the person sits in the frame."""

    scale: float = 1.0  # 1 = head-and-shoulders framing; 0.33 = small, far away
    x: float = 0.5  # shoulder centre as a fraction of the frame width
    flip: bool = False
    grayscale: bool = False


class PersonRig:
    """The person sprite (BGRA, padded) plus the motion fields placed on its body."""

    def __init__(self, photo: Photo, width: int, height: int, placement: Placement):
        pts = photo.landmarks.copy()
        img, mask = photo.image, photo.mask
        if placement.grayscale:
            img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        span = max(np.mean(pts[[_L_SH, _R_SH], 1]) - photo.head_top, 0.2 * h)
        s = 0.6 * height / span * placement.scale
        top = 0.06 * height + (1 - placement.scale) * 0.3 * height  # head top in the frame
        photo_bottom = top + (h - photo.head_top) * s
        pad_x = int(0.5 * w)
        pad_b = int(max(0.3 * h, (height - photo_bottom) / s + 0.3 * h))
        img = _extend(img, pad_x, pad_b, int(0.1 * w), int(0.12 * h))
        mask = _slope_sides(cv2.copyMakeBorder(mask, 0, pad_b, pad_x, pad_x,
                                               cv2.BORDER_REPLICATE), pad_x)
        fade = np.ones(mask.shape, np.float32)  # fade the padded body out, no hard edges
        beyond_x = np.abs(np.arange(mask.shape[1]) - (pad_x + w / 2)) - w / 2
        ramp_x = np.clip(1 - beyond_x / (0.25 * w), 0, 1)
        ramp_y = np.clip(1 - (np.arange(mask.shape[0]) - h - pad_b + 0.3 * h) / (0.3 * h), 0, 1)
        fade *= ramp_x[None, :] * ramp_y[:, None]
        pts[:, 0] += pad_x
        alpha = np.clip(mask * fade * 255, 0, 255).astype(np.uint8)
        sprite = np.dstack([img, alpha])
        size = (round(sprite.shape[1] * s), round(sprite.shape[0] * s))
        sprite = cv2.resize(sprite, size, interpolation=cv2.INTER_AREA if s < 1
                            else cv2.INTER_LINEAR)
        pts *= s
        if placement.flip:
            sprite = np.ascontiguousarray(sprite[:, ::-1])
            pts[:, 0] = sprite.shape[1] - 1 - pts[:, 0]
        self.sprite = sprite
        self.scale = s
        self.points = pts
        left, right = pts[_L_SH], pts[_R_SH]
        self.shoulder_width = float(np.hypot(*(left - right)))
        self.shoulders = (left, right)
        self.center_x = float((left[0] + right[0]) / 2)
        self.shoulder_y = float((left[1] + right[1]) / 2)
        self._slope = float((left[1] - right[1]) / (left[0] - right[0] + 1e-6))
        ears, eyes = pts[[_L_EAR, _R_EAR]], pts[[_L_EYE, _R_EYE]]
        ear_gap = max(float(np.hypot(*(ears[0] - ears[1]))), 0.25 * self.shoulder_width)
        centre = np.vstack([ears, eyes]).mean(axis=0)
        self.head = (float(centre[0]), float(centre[1] - 0.15 * ear_gap),
                     0.62 * ear_gap, 0.85 * ear_gap)
        head_top_sprite = photo.head_top * s
        # offset: sprite pixel (x, y) lands at frame (x + ox, y + oy) when nothing moves
        self.offset = (placement.x * width - self.center_x, top - head_top_sprite)

    def shoulder_points(self) -> np.ndarray:
        """Both shoulder landmarks in frame pixels at rest."""
        return np.array(self.shoulders) + np.array(self.offset)

    def motion(self, x: np.ndarray, y: np.ndarray, c: dict[str, float]
               ) -> tuple[np.ndarray, np.ndarray]:
        """Content motion (px) at sprite points for coefficients ``c``; up is negative y.

        rise: shoulders and upper torso up (px at the shoulders), falling off down the chest;
        head_y / head_x: the head region; expand: chest sides outward (px); roll: head
        rotation about the neck (rad); lean: whole-body rotation about the hips (rad).
        """
        sw, cx = self.shoulder_width, self.center_x
        hx, hy, ax, ay = self.head
        r = np.sqrt(((x - hx) / ax) ** 2 + ((y - hy) / ay) ** 2)
        head = np.clip((1.25 - r) / 0.5, 0.0, 1.0)
        head = head * head * (3 - 2 * head)
        body = 1.0 - head
        line = self.shoulder_y + self._slope * (x - cx)
        dy = y - line
        side = np.abs(x - cx) / sw
        gx = np.where(side < 0.55, 1.0, 0.5 + 0.5 * np.cos(
            math.pi * np.clip((side - 0.55) / 0.35, 0.0, 1.0)))
        fy = np.where(dy <= 0, 1.0, 0.3 + 0.7 * np.exp(-((dy / (0.55 * sw)) ** 2)))
        my = -(c.get("rise", 0.0) * gx * fy * body + c.get("head_y", 0.0) * head)
        mx = c.get("head_x", 0.0) * head
        expand = c.get("expand", 0.0)
        if expand:
            chest = np.exp(-(((dy - 0.5 * sw) / (0.6 * sw)) ** 2)) * body * gx
            mx = mx + expand * np.clip((x - cx) / (0.5 * sw), -1.4, 1.4) * chest
        roll = c.get("roll", 0.0)
        if roll:
            px, py = cx, self.shoulder_y - 0.05 * sw
            mx = mx - roll * (y - py) * head
            my = my + roll * (x - px) * head
        lean = c.get("lean", 0.0)
        if lean:
            px, py = cx, self.shoulder_y + 1.6 * sw
            mx = mx - lean * (y - py)
            my = my + lean * (x - px)
        return mx, my


class SceneRenderer:
    """Renders plate + moving person at a fixed frame size; fast enough to run live."""

    def __init__(self, rig: PersonRig | None, plate: np.ndarray):
        self.rig = rig
        self.plate = plate
        self.height, self.width = plate.shape[:2]
        gw = math.ceil(self.width / GRID_STEP)
        gh = math.ceil(self.height / GRID_STEP)
        # coarse sample i sits where cv2.resize puts it when upsampling gw -> width
        xs = (np.arange(gw) + 0.5) * self.width / gw - 0.5
        ys = (np.arange(gh) + 0.5) * self.height / gh - 0.5
        self._gx, self._gy = np.meshgrid(xs, ys)
        bx, by = np.meshgrid(np.arange(self.width, dtype=np.float32),
                             np.arange(self.height, dtype=np.float32))
        self._base = np.dstack([bx, by])
        if rig is not None:
            ys, xs = np.nonzero(rig.sprite[:, :, 3])
            self._sprite_box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)

    def person_map(self, c: dict[str, float],
                   roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Sampling map (frame px -> sprite px) for coefficients ``c``, over ``roi``
        (x0, y0, x1, y1) or the whole frame."""
        rig = self.rig
        ox = rig.offset[0] + c.get("tx", 0.0)
        oy = rig.offset[1] + c.get("ty", 0.0)
        qx, qy = self._gx - ox, self._gy - oy
        mx, my = rig.motion(qx, qy, c)
        mx, my = rig.motion(qx - mx, qy - my, c)  # one fixed-point step: invert the motion
        coarse = np.dstack([-ox - mx, -oy - my]).astype(np.float32)
        fine = cv2.resize(coarse, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        x0, y0, x1, y1 = roi or (0, 0, self.width, self.height)
        return cv2.add(self._base[y0:y1, x0:x1], fine[y0:y1, x0:x1])

    def _roi(self, c: dict[str, float]) -> tuple[int, int, int, int]:
        """Frame box the person can cover this frame (their box at rest, moved, plus margin)."""
        sx0, sy0, sx1, sy1 = self._sprite_box
        margin = 16 + 2 * (abs(c.get("rise", 0.0)) + abs(c.get("head_x", 0.0))) \
            + 2 * self.rig.shoulder_width * (abs(c.get("roll", 0.0)) + abs(c.get("lean", 0.0)))
        ox = self.rig.offset[0] + c.get("tx", 0.0)
        oy = self.rig.offset[1] + c.get("ty", 0.0)
        x0 = int(np.clip(sx0 + ox - margin, 0, self.width))
        x1 = int(np.clip(sx1 + ox + margin, 0, self.width))
        y0 = int(np.clip(sy0 + oy - margin, 0, self.height))
        y1 = int(np.clip(sy1 + oy + margin, 0, self.height))
        return x0, y0, x1, y1

    def visible(self, c: dict[str, float]) -> bool:
        """Is any of the torso inside the frame?"""
        rig = self.rig
        if rig is None:
            return False
        x = rig.center_x + rig.offset[0] + c.get("tx", 0.0)
        return -0.4 * rig.shoulder_width < x < self.width + 0.4 * rig.shoulder_width

    def render(self, c: dict[str, float], present: bool = True) -> np.ndarray:
        """The scene (before camera effects) with the person moved by ``c``."""
        out = self.plate.copy()
        if not present or not self.visible(c):
            return out
        x0, y0, x1, y1 = self._roi(c)
        if x1 <= x0 or y1 <= y0:
            return out
        map1, map2 = cv2.convertMaps(self.person_map(c, (x0, y0, x1, y1)), None,
                                     cv2.CV_16SC2)
        warped = cv2.remap(self.rig.sprite, map1, map2, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        alpha = cv2.merge([warped[:, :, 3]] * 3)
        fg = cv2.multiply(cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR), alpha, scale=1 / 255)
        bg = cv2.multiply(out[y0:y1, x0:x1], cv2.bitwise_not(alpha), scale=1 / 255)
        out[y0:y1, x0:x1] = cv2.add(fg, bg)
        return out


@lru_cache(maxsize=8)
def photo_plate(name: str, width: int, height: int, grayscale: bool = False) -> np.ndarray:
    """The photo's own background with the person filled in, covering the frame."""
    photo = load_photo(name)
    plate = cover(fill_background(photo.image, photo.mask), width, height)
    if grayscale:
        plate = cv2.cvtColor(cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    plate.setflags(write=False)
    return plate
