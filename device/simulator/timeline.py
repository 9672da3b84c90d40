"""What happens around the breathing: body events (shift, head turn, fidget, leave, enter),
small involuntary motion (postural sway, heartbeat), and the camera's own faults (lighting
drift, mains flicker, shake, sensor noise).

Everything is a pure function of time (sums of seeded sinusoids), so any frame can be made on
its own, the live demo and the file generator agree, and the truth can be computed without
rendering.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from device.simulator.waveform import SmoothNoise


class Nuisances(BaseModel):
    """Strength of each nuisance; 0 switches it off."""

    model_config = ConfigDict(extra="forbid")

    noise: float = Field(2.0, ge=0, le=25, description="sensor noise sigma, grey levels")
    lighting_drift: float = Field(0.0, ge=0, le=0.5,
                                  description="slow gain wander + exposure steps (fraction)")
    flicker: float = Field(0.0, ge=0, le=0.3, description="mains flicker depth (fraction)")
    mains_hz: Literal[50, 60] = 50
    flicker_mode: Literal["banding", "global"] = Field(
        "banding", description="rolling-shutter bands, or whole-frame brightness")
    gain_jitter: float = Field(0.0, ge=0, le=0.1, description="random frame-to-frame gain")
    shake_px: float = Field(0.0, ge=0, le=10, description="camera shake amplitude (px RMS)")
    sway_px: float = Field(0.3, ge=0, le=5, description="postural sway of the body (px RMS)")
    cardiac_px: float = Field(0.15, ge=0, le=1.5, description="heartbeat head bob (px)")


class Event(BaseModel):
    """A body event. ``motion`` is true in the truth while it lasts."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["shift", "head_turn", "fidget", "leave", "enter"]
    at: float = Field(ge=0, description="start time (s)")
    duration: float = Field(1.5, gt=0, le=120, description="how long it lasts (s)")
    dx: float = Field(0.0, ge=-400, le=400, description="shift: horizontal move (px)")
    dy: float = Field(0.0, ge=-100, le=100, description="shift: vertical move (px)")
    yaw_px: float = Field(12.0, ge=-60, le=60, description="head_turn: face moves sideways (px)")
    roll_deg: float = Field(4.0, ge=-20, le=20, description="head_turn: head tilt (degrees)")
    strength: float = Field(1.0, ge=0, le=3, description="fidget: how large the movements are")
    side: Literal["left", "right"] = "right"

    @property
    def end(self) -> float:
        return self.at + self.duration


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _envelope(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """0 outside [start, end], 1 inside, with smooth ramps of ``ramp`` seconds."""
    ramp = min(ramp, (end - start) / 3)
    return _smoothstep((t - start) / ramp) * _smoothstep((end - t) / ramp)


class BodyTimeline:
    """Per-time motion coefficients for the rig, plus which times count as motion."""

    def __init__(self, events: list[Event], nuisances: Nuisances, seed: int,
                 out_px: tuple[float, float], sway_scale: float):
        rng = np.random.default_rng([seed, 101])
        self.events = sorted(events, key=lambda e: e.at)
        self.out_px = out_px  # tx that puts the person fully out of frame (left, right)
        self.nuisances = nuisances
        self._sway = (SmoothNoise(rng, 0.02, 0.2), SmoothNoise(rng, 0.02, 0.2))
        self._sway_scale = sway_scale
        self._heart = (float(rng.uniform(55, 90)) / 60, float(rng.uniform(0, 2 * math.pi)))
        self._fidget = [[SmoothNoise(rng, 0.3, 2.0) for _ in range(6)] for _ in self.events]

    def coefficients(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """tx, ty (px), head_x, head_y, rise (px, on top of breathing), roll, lean (rad)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        zero = np.zeros_like(t)
        c = {k: zero.copy() for k in ("tx", "ty", "head_x", "head_y", "rise", "roll", "lean")}
        n = self.nuisances
        if n.sway_px:
            c["tx"] += n.sway_px * self._sway[0](t)
            c["lean"] += 0.5 * n.sway_px * self._sway_scale * self._sway[1](t)
        if n.cardiac_px:
            f, phi = self._heart
            beat = 2 * math.pi * f * t + 0.6 * np.sin(2 * math.pi * 0.1 * t) + phi
            pulse = (np.sin(beat) + 0.4 * np.sin(2 * beat + 0.5)) / 1.08
            c["head_y"] += n.cardiac_px * pulse
            c["rise"] += 0.4 * n.cardiac_px * pulse
        for ev, noise in zip(self.events, self._fidget, strict=True):
            if ev.kind == "shift":
                s = _smoothstep((t - ev.at) / ev.duration)
                c["tx"] += ev.dx * s
                c["ty"] += ev.dy * s
            elif ev.kind == "head_turn":
                e = _envelope(t, ev.at, ev.end, 0.5)
                c["head_x"] += ev.yaw_px * e
                c["roll"] += math.radians(ev.roll_deg) * e
            elif ev.kind == "fidget":
                e = _envelope(t, ev.at, ev.end, 0.6) * ev.strength
                c["tx"] += 14 * e * noise[0](t)
                c["ty"] += 5 * e * noise[1](t)
                c["lean"] += math.radians(3) * e * noise[2](t)
                c["rise"] += 5 * e * noise[3](t)
                c["head_x"] += 8 * e * noise[4](t)
                c["roll"] += math.radians(5) * e * noise[5](t)
        c["tx"] += self._offscreen(t)
        return c

    def _offscreen(self, t: np.ndarray) -> np.ndarray:
        """Extra tx that walks the person out of (leave) or into (enter) the frame."""
        walks = [e for e in self.events if e.kind in ("leave", "enter")]
        if not walks:
            return np.zeros_like(t)
        out = {"left": self.out_px[0], "right": self.out_px[1]}
        x = np.full(t.shape, out[walks[0].side] if walks[0].kind == "enter" else 0.0)
        for ev in walks:
            start, target = (out[ev.side], 0.0) if ev.kind == "enter" else (None, out[ev.side])
            if start is None:
                start = 0.0
            s = _smoothstep((t - ev.at) / ev.duration)
            x = np.where(t >= ev.at, start + (target - start) * s, x)
        return x

    def motion(self, t: np.ndarray) -> np.ndarray:
        """True where a deliberate non-breathing movement is going on."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        flag = np.zeros(t.shape, dtype=bool)
        for ev in self.events:
            flag |= (t >= ev.at) & (t < ev.end)
        return flag


class CameraModel:
    """The camera's faults applied to a rendered scene: gain, flicker, shake, noise."""

    def __init__(self, nuisances: Nuisances, width: int, height: int, fps: float, seed: int):
        self.n = nuisances
        self.width, self.height, self.fps = width, height, fps
        self.seed = seed
        rng = np.random.default_rng([seed, 202])
        self._drift = SmoothNoise(rng, 1 / 60, 1 / 15, 4)
        self._exposure = SmoothNoise(rng, 0.01, 0.04, 3)
        self._level = SmoothNoise(rng, 1 / 90, 1 / 20, 3)
        self._side = SmoothNoise(rng, 1 / 60, 1 / 20, 3)
        angle = float(rng.uniform(0, 2 * math.pi))
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self._ramp = (math.cos(angle) * (xx / width - 0.5)
                      + math.sin(angle) * (yy / height - 0.5)) * 2  # light from one side
        self._ramp = self._ramp.astype(np.float32)
        self._shake = [SmoothNoise(rng, 2.0, 6.0) for _ in range(2)]
        self._wobble = [SmoothNoise(rng, 0.1, 0.5, 4) for _ in range(2)]
        self._flicker_phase = float(rng.uniform(0, 2 * math.pi))
        self._readout = 0.8 / fps  # rolling-shutter readout time
        self._rows = np.arange(height, dtype=np.float64) / height
        self._noise: list[tuple[np.ndarray, np.ndarray]] = []
        if nuisances.noise > 0:
            for _ in range(8):
                z = np.round(rng.normal(0, nuisances.noise, (height, width, 3)))
                z = np.clip(z, -255, 255).astype(np.int16)
                self._noise.append((np.clip(z, 0, 255).astype(np.uint8),
                                    np.clip(-z, 0, 255).astype(np.uint8)))

    def gain(self, t: float, index: int) -> float:
        n = self.n
        g = 1.0
        if n.lighting_drift:
            g += n.lighting_drift * (0.7 * float(self._drift(t)) / 1.4
                                     + 0.5 * math.tanh(3 * float(self._exposure(t))))
        if n.flicker and n.flicker_mode == "global":
            g += n.flicker * math.sin(2 * math.pi * 2 * n.mains_hz * t + self._flicker_phase)
        if n.gain_jitter:
            g += n.gain_jitter * float(np.random.default_rng([self.seed, 303, index]).normal())
        return max(g, 0.05)

    def offset(self, t: float) -> float:
        """Black-level drift (grey levels) that comes with the lighting drift."""
        return 20.0 * self.n.lighting_drift * float(self._level(t)) / 1.4

    def shake(self, t: float) -> tuple[float, float]:
        if not self.n.shake_px:
            return 0.0, 0.0
        s = self.n.shake_px
        return tuple(s * (0.75 * float(a(t)) + 0.35 * float(b(t)))
                     for a, b in zip(self._shake, self._wobble, strict=True))

    def apply(self, image: np.ndarray, t: float, index: int) -> np.ndarray:
        """Camera effects on one frame (BGR uint8 in, BGR uint8 out)."""
        g, beta = self.gain(t, index), self.offset(t)
        if abs(g - 1.0) > 1e-4 or abs(beta) > 1e-3:
            image = cv2.convertScaleAbs(image, alpha=g, beta=beta)
        dx, dy = self.shake(t)
        if dx or dy:
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            image = cv2.warpAffine(image, m, (self.width, self.height),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        n = self.n
        banding = n.flicker > 0 and n.flicker_mode == "banding"
        if n.lighting_drift or banding:
            light = image.astype(np.float32)
            if n.lighting_drift:  # the light also shifts across the scene
                k = np.float32(0.5 * n.lighting_drift * float(self._side(t)) / 1.4)
                light *= (1.0 + k * self._ramp)[:, :, None]
            if banding:  # rolling shutter: each row sees a different moment of the mains cycle
                phase = 2 * math.pi * 2 * n.mains_hz * (t + self._rows * self._readout)
                rows = 1.0 + n.flicker * np.sin(phase + self._flicker_phase)
                light *= rows.astype(np.float32)[:, None, None]
            image = cv2.convertScaleAbs(light)  # rounds and saturates, never wraps
        if self._noise:
            k = int(np.random.default_rng([self.seed, 404, index]).integers(len(self._noise)))
            pos, neg = self._noise[k]
            image = cv2.subtract(cv2.add(image, pos), neg)
        return image
