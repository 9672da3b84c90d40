"""Synthetic breathing displacement signals with exact ground truth (pure numpy, no video).

They feed the estimator's unit tests and benchmarks the way the video front end would: one
displacement sample per frame (pixels, up = inhale), a valid flag and a body-motion magnitude.
The truth uses the field names of the camera generator's truth JSON so ``scoring`` reads both.

A signal is a list of segments (inhale, exhale, hold) built from a ``Pattern`` (paced: fixed
seconds per step) or free breathing (period and depth jittered per breath, inhale ≈ 40 %).
Nuisances (noise, drift, steps, invalid stretches, body motion) are layered on afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Segment:
    """One stretch of the waveform: ``kind`` from ``start`` for ``duration`` seconds."""

    kind: str  # "inhale" | "exhale" | "hold"
    start: float
    duration: float
    level_from: float
    level_to: float
    rate_bpm: float | None  # the rate a person would be told at this time (None: no rate)
    onset: float = 0.0  # briskness of the start (see ``_shape``)


@dataclass
class Signal:
    """Samples plus truth. ``frames``/``breaths``/``holds`` mirror the truth JSON."""

    fps: float
    t: np.ndarray
    x: np.ndarray  # displacement, NaN where invalid
    valid: np.ndarray
    motion: np.ndarray
    frames: list[dict] = field(default_factory=list)
    breaths: list[dict] = field(default_factory=list)
    holds: list[dict] = field(default_factory=list)


def paced_segments(
    steps: tuple[float, float, float, float],
    duration: float,
    start: float = 0.0,
    rng: np.random.Generator | None = None,
    jitter: float = 0.03,
) -> list[tuple[str, float]]:
    """Segments for a paced pattern (inhale, hold-in, exhale, hold-out seconds), repeated.

    A person follows a guide imperfectly, so each step is stretched by a few per cent.
    """
    rng = rng or np.random.default_rng(0)
    out: list[tuple[str, float]] = []
    t = start
    names = ("inhale", "hold", "exhale", "hold")
    while t < start + duration:
        for name, sec in zip(names, steps, strict=True):
            if sec <= 0:
                continue
            d = sec * (1.0 + jitter * rng.standard_normal())
            out.append((name, d))
            t += d
    return out


def free_segments(
    rate_bpm: float,
    duration: float,
    rng: np.random.Generator | None = None,
    jitter: float = 0.05,
    inhale_fraction: float = 0.4,
) -> list[tuple[str, float]]:
    """Segments for free breathing at ``rate_bpm`` with per-breath period jitter."""
    rng = rng or np.random.default_rng(0)
    out: list[tuple[str, float]] = []
    t = 0.0
    while t < duration:
        period = 60.0 / rate_bpm * (1.0 + jitter * rng.standard_normal())
        frac = float(np.clip(inhale_fraction + 0.03 * rng.standard_normal(), 0.3, 0.5))
        out += [("inhale", period * frac), ("exhale", period * (1 - frac))]
        t += period
    return out


def build(
    parts: list[tuple[list[tuple[str, float]], float | None]],
    amplitude: float = 3.0,
    amp_jitter: float = 0.1,
    rng: np.random.Generator | None = None,
    hold_onset: float = 0.35,
) -> tuple[list[Segment], float]:
    """Lay out parts (segments, truth rate) end to end with per-breath depth jitter.

    Returns the segments and the total duration. Levels: a trough sits near 0, a peak near
    ``amplitude``; each inhale draws its own depth, holds keep the level. A stroke that
    leaves a hold starts with briskness ``hold_onset`` (0: from rest, like a smooth turn).
    """
    rng = rng or np.random.default_rng(0)
    segs: list[Segment] = []
    t, level, prev = 0.0, 0.0, ""
    for seg_list, rate in parts:
        for kind, dur in seg_list:
            if kind == "inhale":
                depth = amplitude * (1.0 + amp_jitter * rng.standard_normal())
                target = level + max(depth, 0.3 * amplitude)
            elif kind == "exhale":
                target = 0.05 * amplitude * rng.standard_normal()
            else:
                target = level
            onset = hold_onset if prev == "hold" and kind != "hold" else 0.0
            segs.append(Segment(kind, t, dur, level, target, rate, onset))
            t += dur
            level, prev = target, kind
    return segs, t


def _shape(u: np.ndarray, kind: str, onset: float) -> np.ndarray:
    """Eased progress 0 → 1 within a segment; every stroke comes to rest smoothly.

    ``onset`` 0 starts from rest too (a free breath's smooth turn); larger values start
    briskly, as a person does when leaving a hold on cue (velocity at the start is
    ``onset·π/2`` times the segment's mean speed).
    """
    if kind == "exhale":
        u = 1.0 - (1.0 - u) ** 1.2  # passive exhale: quicker at first, slow at the end
    smooth = 0.5 - 0.5 * np.cos(np.pi * u)
    return (1.0 - onset) * smooth + onset * np.sin(0.5 * np.pi * u)


def render(
    segs: list[Segment],
    duration: float,
    fps: float,
    noise: float = 0.1,
    noise_hz: float | None = None,
    drift: float = 0.0,
    walk: float = 0.0,
    steps: tuple[tuple[float, float], ...] = (),
    invalid: tuple[tuple[float, float], ...] = (),
    moving: tuple[tuple[float, float, float], ...] = (),
    rng: np.random.Generator | None = None,
    present: bool = True,
) -> Signal:
    """Sample the segments at ``fps`` and add nuisances.

    ``noise``: measurement noise std (px), white unless ``noise_hz`` gives it a band edge
    (tracking jitter is often correlated from frame to frame); ``drift``: amplitude (px) of
    a slow wander; ``walk``: random-walk step std (px/sample); ``steps``: (time, size) offsets;
    ``invalid``: (start, end) stretches with no person; ``moving``: (start, end, magnitude)
    stretches where the person shifts (large body motion, displacement disturbed).
    """
    rng = rng or np.random.default_rng(0)
    n = int(duration * fps)
    t = np.arange(n) / fps
    clean = np.zeros(n)
    phase: list[str | None] = [None] * n
    rate: list[float | None] = [None] * n
    starts = np.array([s.start for s in segs])
    idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(segs) - 1)
    for i, s in enumerate(segs):
        sel = idx == i
        if not sel.any():
            continue
        u = np.clip((t[sel] - s.start) / s.duration, 0.0, 1.0)
        clean[sel] = s.level_from + (s.level_to - s.level_from) * _shape(u, s.kind, s.onset)
        for j in np.flatnonzero(sel):
            phase[j] = s.kind
            rate[j] = s.rate_bpm
    jitter = rng.standard_normal(n)
    if noise_hz:
        from scipy import signal  # a dev dependency: only tests and benchmarks make these signals

        jitter = signal.sosfilt(signal.butter(1, noise_hz, fs=fps, output="sos"), jitter)
        jitter /= jitter.std()
    x = clean + noise * jitter
    if drift:
        f1, f2 = rng.uniform(0.005, 0.02, 2)
        x += drift * (np.sin(2 * np.pi * f1 * t + rng.uniform(0, 6)) + 0.5 * np.sin(
            2 * np.pi * f2 * t + rng.uniform(0, 6)))
    if walk:
        x += np.cumsum(walk * rng.standard_normal(n))
    for when, size in steps:
        x[t >= when] += size
    valid = np.full(n, present)
    motion = np.zeros(n)
    for a, b, mag in moving:
        sel = (t >= a) & (t < b)
        motion[sel] = mag
        x[sel] += np.cumsum(rng.standard_normal(sel.sum())) * mag * 0.5
        x[t >= b] += rng.uniform(-3, 3) * mag
    for a, b in invalid:
        valid[(t >= a) & (t < b)] = False
    x = np.where(valid, x, np.nan)
    frames = []
    for j in range(n):
        ok = bool(valid[j])
        frames.append({
            "t": float(t[j]),
            "phase": phase[j] if ok else None,
            "rate_bpm": rate[j] if ok else None,
        })
    breaths, holds = _truth_events(segs, duration)
    # A breath that starts while the person is unseen or moving cannot be observed.
    blind = [(a, b + 1.0) for a, b in invalid] + [(a, b + 1.0) for a, b, _ in moving]
    breaths = [b for b in breaths
               if not any(lo <= b["inhale_start"] < hi for lo, hi in blind)]
    return Signal(fps, t, x, valid, motion, frames, breaths, holds)


def _truth_events(segs: list[Segment], duration: float) -> tuple[list[dict], list[dict]]:
    """Breaths (inhale start → next inhale start) and holds from the segment list."""
    breaths: list[dict] = []
    holds: list[dict] = []
    for s in segs:
        if s.start >= duration:
            break
        if s.kind == "inhale":
            if breaths:
                breaths[-1]["end"] = s.start
            breaths.append({"inhale_start": s.start, "exhale_start": None, "end": None})
        elif s.kind == "exhale" and breaths and breaths[-1]["exhale_start"] is None:
            breaths[-1]["exhale_start"] = s.start
        elif s.kind == "hold":
            holds.append({"start": s.start, "end": min(s.start + s.duration, duration)})
    return breaths, holds


# ---- ready-made scenarios -------------------------------------------------------------------

PATTERNS: dict[str, tuple[float, float, float, float]] = {
    "box": (4, 4, 4, 4),
    "478": (4, 7, 8, 0),
    "4683": (4, 6, 8, 3),
    "coherent": (60 / 5.5 / 2, 0, 60 / 5.5 / 2, 0),
}


def scenario(name: str, fps: float = 30.0, seed: int = 0, **nuisance) -> Signal:
    """A named scenario (see ``SCENARIOS``) rendered at ``fps`` with optional nuisances."""
    rng = np.random.default_rng(seed)
    spec = SCENARIOS[name]
    amplitude = nuisance.pop("amplitude", spec.get("amplitude", 3.0))
    hold_onset = nuisance.pop("hold_onset", 0.35)
    parts: list[tuple[list[tuple[str, float]], float | None]] = []
    exhale_s = 2.5
    for kind, arg, dur in spec["parts"]:
        if kind == "free":
            parts.append((free_segments(arg, dur, rng), arg))
            exhale_s = 0.6 * 60.0 / arg
        elif kind == "paced":
            steps = PATTERNS[arg]
            parts.append((paced_segments(steps, dur, rng=rng), 60.0 / sum(steps)))
        elif kind == "hold":
            parts.append(([("inhale", 1.6), ("hold", arg), ("exhale", exhale_s)], None))
    segs, total = build(parts, amplitude=amplitude, rng=rng, hold_onset=hold_onset)
    duration = min(total, spec.get("duration", total))
    kw = {"noise": spec.get("noise", 0.1)} | {
        k: spec[k] for k in ("noise_hz", "drift", "walk", "steps", "invalid", "moving")
        if k in spec}
    kw |= nuisance
    return render(segs, duration, fps, rng=rng, **kw)


SCENARIOS: dict[str, dict] = {
    "free6": {"parts": [("free", 6, 130)], "duration": 120},
    "free12": {"parts": [("free", 12, 130)], "duration": 120},
    "free20": {"parts": [("free", 20, 130)], "duration": 120},
    "free30": {"parts": [("free", 30, 130)], "duration": 120},
    "free40": {"parts": [("free", 40, 130)], "duration": 120, "amplitude": 2.0},
    "box": {"parts": [("paced", "box", 200)], "duration": 160},
    "478": {"parts": [("paced", "478", 200)], "duration": 190},
    "4683": {"parts": [("paced", "4683", 200)], "duration": 168},
    "coherent": {"parts": [("paced", "coherent", 130)], "duration": 120},
    "step12to20": {"parts": [("free", 12, 60), ("free", 20, 70)], "duration": 120},
    "hold25": {"parts": [("free", 14, 40), ("hold", 25, 0), ("free", 14, 50)],
               "duration": 110},
    "hold60": {"parts": [("free", 10, 40), ("hold", 60, 0), ("free", 10, 50)],
               "duration": 145},
    "noisy": {"parts": [("free", 15, 130)], "duration": 120, "noise": 0.3,
              "amplitude": 1.5},
    "drift": {"parts": [("free", 12, 130)], "duration": 120, "drift": 4.0, "walk": 0.01},
    "steps": {"parts": [("free", 12, 130)], "duration": 120,
              "steps": ((31.3, 4.0), (62.7, -3.0), (90.1, 2.5))},
    "invalid": {"parts": [("free", 12, 130)], "duration": 120,
                "invalid": ((40.0, 52.0),)},
    "moving": {"parts": [("free", 12, 130)], "duration": 120,
               "moving": ((50.0, 54.0, 2.0),)},
    "colored": {"parts": [("free", 10, 130)], "duration": 120, "noise": 0.15,
                "noise_hz": 2.0, "amplitude": 2.0},
    "shallow": {"parts": [("free", 12, 130)], "duration": 120, "amplitude": 1.0,
                "noise": 0.15},
}
