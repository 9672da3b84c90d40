"""Named suites of synthetic scenarios for tests ("quick") and benchmarks ("full").

Each scenario fixes what it is about (rate, pattern, event, nuisance) and draws everything
else — photo, mirror image, framing, breath depth, irregularity, noise, background — from the
suite seed, so a new seed gives new people and new irregularities for the same conditions and
nothing can be tuned to one clip.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from device.simulator.scene import PHOTOS
from device.simulator.synth import ScenarioSpec
from device.simulator.timeline import Event
from device.simulator.waveform import BreathHold, FreeBreathing, PacedBreathing

PATTERNS = {
    "box": (4, 4, 4, 4),
    "relax_478": (4, 7, 8, 0),
    "sleep_4683": (4, 6, 8, 3),
    "coherent": (5.5, 0, 5.5, 0),
    "energy_3241": (3, 2, 4, 1),
}


def free(duration: float, rate: float | list[tuple[float, float]] = 12.0) -> FreeBreathing:
    return FreeBreathing(duration=duration, rate_bpm=rate)


def paced(duration: float, pattern: tuple[float, float, float, float]) -> PacedBreathing:
    return PacedBreathing(duration=duration, pattern=pattern)


def hold(duration: float, after: str = "inhale") -> BreathHold:
    return BreathHold(duration=duration, after=after)


class _Maker:
    """Builds specs whose incidental details come from (suite seed, scenario name)."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, name: str, duration: float, blocks: list, *, fps: float = 30.0,
                 size: tuple[int, int] = (640, 480), person: dict | None = None,
                 nuisances: dict | None = None, breathing: dict | None = None,
                 events: list[Event] | None = None, background: str | None = None
                 ) -> ScenarioSpec:
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        p = {
            "photo": str(rng.choice(PHOTOS)), "flip": bool(rng.random() < 0.5),
            "scale": float(rng.uniform(0.75, 1.15)), "x": float(rng.uniform(0.35, 0.65)),
            "grayscale": bool(rng.random() < 0.1),
            "amplitude_px": float(rng.uniform(1.8, 3.8)),
            "head_ratio": float(rng.uniform(0.2, 0.5)),
            "expand_ratio": float(rng.uniform(0.15, 0.4)),
        }
        b = {
            "period_cv": float(rng.uniform(0.05, 0.15)), "amp_cv": float(rng.uniform(0.08, 0.22)),
            "ie_ratio": float(rng.uniform(1.2, 1.9)), "sigh_per_min": float(rng.uniform(0.1, 0.6)),
            "follow_lag_s": float(rng.uniform(0.1, 0.6)),
            "follow_jitter_s": float(rng.uniform(0.05, 0.2)),
        }
        n = {
            "noise": float(rng.uniform(1.0, 4.0)), "sway_px": float(rng.uniform(0.15, 0.6)),
            "cardiac_px": float(rng.uniform(0.08, 0.3)), "mains_hz": int(rng.choice([50, 60])),
        }
        bg = background or ("photo" if rng.random() < 0.7 else "wall")
        p.update(person or {})
        b.update(breathing or {})
        n.update(nuisances or {})
        return ScenarioSpec.model_validate({
            "name": name, "duration": duration, "fps": fps, "width": size[0],
            "height": size[1], "seed": int(rng.integers(2**31)), "background": bg,
            "person": p, "breathing": {"blocks": blocks, **b}, "nuisances": n,
            "events": events or [],
        })


def quick_suite(seed: int = 0) -> list[ScenarioSpec]:
    """Eight short 640x480 clips (20-45 s) covering the main conditions, for tests."""
    m = _Maker(seed)
    return [
        m("free_12", 30, [free(30, 12)]),
        m("free_30_15fps", 25, [free(25, 30)], fps=15, person={"amplitude_px": 2.2}),
        m("box", 36, [free(4, 12), paced(32, PATTERNS["box"])]),
        m("relax_478", 40, [free(2, 12), paced(38, PATTERNS["relax_478"])]),
        m("hold_25", 45, [free(12, 14), hold(25), free(8, 14)]),
        m("empty", 20, [free(20)], person={"present": False}, background="photo",
          nuisances={"flicker": 0.05, "lighting_drift": 0.15}),
        m("shift_fidget_18_24fps", 35, [free(35, 18)], fps=24,
          events=[Event(kind="shift", at=10, duration=1.5, dx=30, dy=4),
                  Event(kind="fidget", at=20, duration=4)]),
        m("small_drift_9", 30, [free(30, 9)],
          person={"scale": 0.35, "amplitude_px": 1.5, "photo": "grace_hopper"},
          nuisances={"lighting_drift": 0.2, "shake_px": 0.8}),
    ]


def full_suite(seed: int = 0) -> list[ScenarioSpec]:
    """Longer clips (60-120 s) covering every condition the estimator must handle."""
    m = _Maker(seed)
    specs = [
        m("free_06", 100, [free(100, 6)]),
        m("free_12", 90, [free(90, 12)]),
        m("free_20", 90, [free(90, 20)]),
        m("free_30", 90, [free(90, 30)], person={"amplitude_px": 2.2}),
        m("free_40", 90, [free(90, 40)], person={"amplitude_px": 2.0}),
        m("rate_ramp_8_22", 120, [free(120, [(0, 8), (20, 8), (100, 22), (120, 22)])]),
        m("rate_step_10_24", 90, [free(90, [(0, 10), (45, 10), (46, 24), (90, 24)])]),
        m("hold_25", 90, [free(30, 14), hold(25), free(35, 14)]),
        m("hold_60", 120, [free(30, 12), hold(60), free(30, 12)]),
        m("hold_30_after_exhale", 90, [free(30, 15), hold(30, "exhale"), free(30, 15)]),
        m("empty", 60, [free(60)], person={"present": False}, background="photo"),
        m("empty_flicker_24fps", 60, [free(60)], fps=24, person={"present": False},
          nuisances={"flicker": 0.08, "lighting_drift": 0.2, "shake_px": 0.8}),
        m("enter_leave", 90, [free(90, 13)],
          events=[Event(kind="enter", at=8, duration=3.5, side="left"),
                  Event(kind="leave", at=70, duration=3.5, side="right")]),
        m("lighting_flicker", 90, [free(90, 14)],
          nuisances={"lighting_drift": 0.25, "flicker": 0.06, "gain_jitter": 0.01}),
        m("flicker_global_15fps", 90, [free(90, 11)], fps=15,
          nuisances={"flicker": 0.05, "flicker_mode": "global"}),
        m("shake", 90, [free(90, 16)], nuisances={"shake_px": 1.5}),
        m("shifting", 90, [free(90, 12)],
          events=[Event(kind="shift", at=25, duration=1.5, dx=35, dy=6),
                  Event(kind="shift", at=55, duration=2.0, dx=-25, dy=-4)]),
        m("head_turn", 90, [free(90, 10)],
          events=[Event(kind="head_turn", at=a, duration=4, yaw_px=y, roll_deg=r)
                  for a, y, r in ((20, 15, 4), (45, -18, -6), (70, 12, 8))]),
        m("fidget", 90, [free(90, 15)],
          events=[Event(kind="fidget", at=30, duration=6, strength=1.2),
                  Event(kind="fidget", at=62, duration=4, strength=0.8)]),
        m("small_person", 90, [free(90, 12)], person={"scale": 0.33, "amplitude_px": 1.3}),
        m("shallow_16", 90, [free(90, 16)], person={"amplitude_px": 1.2, "head_ratio": 0.15}),
        m("fps15_18", 90, [free(90, 18)], fps=15),
        m("fps24_10", 90, [free(90, 10)], fps=24),
        m("hd_720p", 60, [free(60, 14)], size=(1280, 720), person={"amplitude_px": 4.5}),
        m("infrared_grace", 60, [free(60, 12)],
          person={"grayscale": True, "photo": "grace_hopper"}),
        m("astronaut_mixed", 120, [free(30, 12), paced(48, PATTERNS["box"]), free(42, 16)],
          person={"photo": "astronaut"}),
    ]
    for name, pattern in PATTERNS.items():
        cycle = sum(pattern)
        length = cycle * max(5, round(100 / cycle))
        specs.append(m(f"paced_{name}", length + 4, [free(4, 12), paced(length, pattern)]))
    return specs


# Real recordings: tune on the first four development records, report on the other four.
TUNE_RECORDS = ("bidmc_03", "bidmc_04", "bidmc_06", "bidmc_07")
HELD_OUT_RECORDS = ("bidmc_08", "bidmc_10", "bidmc_11", "bidmc_12")
RECORDED_WINDOW_S = 90.0


def _recorded_variant(m: _Maker, name: str, k: int) -> dict:
    """Scene conditions for window ``k`` of a record: each window gets another nuisance."""
    rng = np.random.default_rng([m.seed, zlib.crc32(name.encode()), 9])
    kinds = ["plain", "lighting", "shake", "fidget", "small", "shift", "head_turn", "fps15",
             "depth_jumps", "dim_ir"]
    kind = kinds[(zlib.crc32(name.encode()) + k + m.seed) % len(kinds)]
    at = float(rng.uniform(30, 60))
    out: dict = {"kind": kind, "fps": 30.0, "person": {}, "nuisances": {}, "events": [],
                 "depth_jumps": 0.0}
    if kind == "lighting":
        out["nuisances"] = {"lighting_drift": 0.25, "flicker": 0.06, "gain_jitter": 0.01}
    elif kind == "shake":
        out["nuisances"] = {"shake_px": 1.2}
    elif kind == "fidget":
        out["events"] = [Event(kind="fidget", at=at, duration=4, strength=1.0)]
    elif kind == "small":
        out["person"] = {"scale": 0.35, "amplitude_px": 1.4}
    elif kind == "shift":
        out["events"] = [Event(kind="shift", at=at, duration=1.5, dx=30, dy=5)]
    elif kind == "head_turn":
        out["events"] = [Event(kind="head_turn", at=at, duration=4, yaw_px=15, roll_deg=5)]
    elif kind == "fps15":
        out["fps"] = 15.0
    elif kind == "depth_jumps":
        out["depth_jumps"] = 0.35
    elif kind == "dim_ir":
        out["person"] = {"grayscale": True, "amplitude_px": 2.0}
        out["nuisances"] = {"noise": 5.0}
    return out


def recorded_suite(seed: int = 0, records: tuple[str, ...] | None = None, windows: int = 3,
                   folder=None) -> list[ScenarioSpec]:
    """90 s windows of real respiration recordings driving the synthetic person.

    Window 0 of a record plays at its own pace; the others slow it by a factor drawn from
    the seed (0.4-1.0, so 14-21/min records also give 6-12/min breathing), and each window
    adds a different scene nuisance. Records come from ``recorded.default_data_dir()`` (or
    ``folder``); a missing one raises SourceError naming the path.
    """
    from common.errors import SourceError
    from device.simulator.recorded import default_data_dir

    base = default_data_dir() if folder is None else folder
    m = _Maker(seed)
    specs = []
    for rec in records or TUNE_RECORDS + HELD_OUT_RECORDS:
        path = base / f"{rec}_Signals.csv"
        if not path.exists():
            raise SourceError(f"{path}: recording not found; set BREATHE_BIDMC_DIR (or "
                              "--data) to the folder of BIDMC *_Signals.csv files")
        rng = np.random.default_rng([seed, zlib.crc32(rec.encode())])
        for k in range(windows):
            speed = 1.0 if k == 0 else float(rng.uniform(0.4, 1.0))
            need = RECORDED_WINDOW_S * speed + 35
            start = 5 + (475 - need) * (k + 0.5) / windows + float(rng.uniform(-10, 10))
            name = f"{rec}_w{k}"
            v = _recorded_variant(m, name, k)
            spec = m(name, RECORDED_WINDOW_S, [free(RECORDED_WINDOW_S)], fps=v["fps"],
                     person=v["person"], nuisances=v["nuisances"], events=v["events"])
            specs.append(ScenarioSpec.model_validate({**spec.model_dump(), "recording": {
                "path": str(path), "start": round(max(0.0, start), 2), "speed": round(speed, 3),
                "depth_jumps": v["depth_jumps"]}}))
    return specs


SUITES: dict[str, Callable[[int], list[ScenarioSpec]]] = {
    "quick": quick_suite, "full": full_suite,
    "recorded-tune": lambda seed=0: recorded_suite(seed, TUNE_RECORDS),
    "recorded-test": lambda seed=0: recorded_suite(seed, HELD_OUT_RECORDS),
    "recorded": recorded_suite,
}
