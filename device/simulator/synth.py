"""Synthetic breathing-person videos with exact ground truth.

``ScenarioSpec`` says everything about a clip (person, breathing, nuisances, events, size,
fps, seed); the same spec always renders the same frames. ``render_scenario(spec)`` gives a
frame iterator and the truth; ``write_video(spec, path)`` writes ``path`` (mp4) and
``<stem>.truth.json`` beside it and checks that OpenCV reads back what it wrote.

Truth JSON: {"fps", "width", "height", "frames": [{"t", "phase", "rate_bpm", "present",
"motion"}], "breaths": [{"inhale_start", "exhale_start", "end"}], "holds": [{"start", "end"}],
"events": [{"kind", "start", "end"}], "scenario": spec}. Phase and rate are null while nobody
is in view; rate is null in cycles longer than ``MAX_CYCLE_S`` (breath holds). See
``waveform`` for the phase conventions. Breaths and holds are listed when the person is in view
at their start, and only from t >= 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.errors import SourceError
from device.camera.base import Frame
from device.simulator.recorded import RecordedPlan, RecordingSpec
from device.simulator.scene import (
    PHOTOS,
    PersonRig,
    Placement,
    SceneRenderer,
    load_photo,
    photo_plate,
    wall_plate,
)
from device.simulator.timeline import BodyTimeline, CameraModel, Event, Nuisances
from device.simulator.waveform import (
    A_REF,
    MAX_CYCLE_S,
    V_REST,
    BreathingSpec,
    BreathPlan,
    FreeBreathing,
)

Photo = Literal["astronaut", "grace_hopper"]
assert set(PHOTOS) == {"astronaut", "grace_hopper"}


class PersonSpec(BaseModel):
    """Who is in the picture, where, and how much breathing moves them."""

    model_config = ConfigDict(extra="forbid")

    photo: Photo = "astronaut"
    flip: bool = False
    scale: float = Field(1.0, ge=0.2, le=1.5, description="1 = head and shoulders fill the frame")
    x: float = Field(0.5, ge=0.15, le=0.85, description="shoulder centre, fraction of width")
    grayscale: bool = Field(False, description="an infrared / monochrome camera look")
    amplitude_px: float = Field(3.0, ge=0, le=15,
                                description="shoulder rise (frame px) of a typical breath")
    head_ratio: float = Field(0.35, ge=0, le=1, description="head rise / shoulder rise")
    expand_ratio: float = Field(0.3, ge=0, le=1, description="chest widening / shoulder rise")
    present: bool = Field(True, description="False: an empty scene for the whole clip")


class ScenarioSpec(BaseModel):
    """One synthetic clip, fully determined by these fields."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("scenario", pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    duration: float = Field(30.0, gt=0, le=1e9, description="seconds")
    fps: float = Field(30.0, ge=5, le=60)
    width: int = Field(640, ge=160, le=1920)
    height: int = Field(480, ge=120, le=1080)
    seed: int = 0
    background: Literal["photo", "wall"] = "photo"
    person: PersonSpec = PersonSpec()
    breathing: BreathingSpec = BreathingSpec(blocks=[FreeBreathing(duration=30.0)])
    nuisances: Nuisances = Nuisances()
    events: list[Event] = []
    recording: RecordingSpec | None = Field(
        None, description="drive the breathing with a real recording (``breathing`` unused)")

    @property
    def frame_count(self) -> int:
        return int(round(self.duration * self.fps))


class Scenario:
    """A spec made ready to render: breath plan, rig, body timeline and camera model."""

    def __init__(self, spec: ScenarioSpec):
        self.spec = spec
        p = spec.person
        self.plan: BreathPlan | RecordedPlan = (
            RecordedPlan(spec.recording, spec.duration, spec.seed) if spec.recording
            else BreathPlan(spec.breathing, seed=spec.seed))
        rig = PersonRig(load_photo(p.photo), spec.width, spec.height,
                        Placement(p.scale, p.x, p.flip, p.grayscale))
        if spec.background == "photo":
            plate = photo_plate(p.photo, spec.width, spec.height, p.grayscale)
        else:
            plate = wall_plate(spec.width, spec.height, np.random.default_rng([spec.seed, 7]))
            if p.grayscale:
                plate = cv2.cvtColor(cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        self.rig = rig
        self.renderer = SceneRenderer(rig, plate)
        home = rig.center_x + rig.offset[0]
        margin = 1.7 * rig.shoulder_width
        out = (-(home + margin), spec.width - home + margin)
        sway_scale = 1.0 / (1.6 * rig.shoulder_width)
        self.body = BodyTimeline(spec.events, spec.nuisances, spec.seed, out, sway_scale)
        self.camera = CameraModel(spec.nuisances, spec.width, spec.height, spec.fps, spec.seed)

    def breath_px(self, t: np.ndarray) -> np.ndarray:
        """Shoulder rise (frame px) from breathing alone."""
        return self.spec.person.amplitude_px * (self.plan.volume(t) - V_REST) / A_REF

    def coefficients(self, t: np.ndarray) -> dict[str, np.ndarray]:
        p = self.spec.person
        c = self.body.coefficients(t)
        px = self.breath_px(t)
        c["rise"] = c["rise"] + px
        c["head_y"] = c["head_y"] + p.head_ratio * px
        c["expand"] = p.expand_ratio * px
        return c

    def present(self, t: np.ndarray, c: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Person in view: shoulder centre inside the frame."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if not self.spec.person.present:
            return np.zeros(t.shape, dtype=bool)
        c = c if c is not None else self.body.coefficients(t)
        x = self.rig.center_x + self.rig.offset[0] + c["tx"]
        return (x >= 0) & (x <= self.spec.width)

    def render(self, t: float, index: int) -> np.ndarray:
        """Frame ``index`` at time ``t`` with every nuisance applied."""
        c = {k: float(v[0]) for k, v in self.coefficients(np.array([t])).items()}
        scene = self.renderer.render(c, present=self.spec.person.present)
        return self.camera.apply(scene, t, index)

    def truth(self, times: np.ndarray) -> dict:
        """Ground truth for frames at ``times`` (seconds), in the truth JSON shape."""
        spec = self.spec
        times = np.asarray(times, dtype=float)
        present = self.present(times)
        motion = self.body.motion(times) & present
        phase = self.plan.phase(times) if times.size else []
        rate = self.plan.rate(times) if times.size else []
        frames = []
        for i, t in enumerate(times):
            seen = bool(present[i])
            r = float(rate[i])
            frames.append({
                "t": round(float(t), 6),
                "phase": str(phase[i]) if seen and phase[i] is not None else None,
                "rate_bpm": round(r, 3) if seen and not math.isnan(r) else None,
                "present": seen,
                "motion": bool(motion[i]),
            })
        end = float(times[-1]) + 1e-9 if times.size else 0.0
        breaths = [
            {"inhale_start": round(b.inhale_start, 4), "exhale_start": round(b.exhale_start, 4),
             "end": round(b.end, 4)}
            for b in self.plan.breaths_between(0.0, end)
            if self.present(np.array([b.inhale_start]))[0]
        ]
        holds = [
            {"start": round(s, 4), "end": round(e, 4)}
            for s, e in self.plan.holds_between(0.0, end)
            if self.present(np.array([s]))[0]
        ]
        events = [{"kind": e.kind, "start": e.at, "end": e.end} for e in spec.events]
        return {"fps": spec.fps, "width": spec.width, "height": spec.height, "frames": frames,
                "breaths": breaths, "holds": holds, "events": events,
                "scenario": spec.model_dump(mode="json")}


def causal_rate(truth: dict, breaths: int = 4) -> list[float | None]:
    """Per frame, the rate over the last ``breaths`` whole cycles that ended by then.

    The truth's ``rate_bpm`` is the rate of the cycle a frame is in, which jitters from
    breath to breath as real breathing does and is only known once the cycle ends. This is
    what a causal estimator can know at each moment; scorers may compare against either.
    None before enough cycles, while nobody is in view, when a cycle in the window is a
    breath hold (longer than ``MAX_CYCLE_S``), or when the breath in progress has lasted
    over 2.5 times the recent cycle (a hold has begun).
    """
    starts = np.array([b["inhale_start"] for b in truth["breaths"]])
    out: list[float | None] = []
    for frame in truth["frames"]:
        done = starts[starts <= frame["t"]]
        if not frame["present"] or len(done) < breaths + 1:
            out.append(None)
            continue
        window = done[-(breaths + 1):]
        mean_cycle = (window[-1] - window[0]) / breaths
        open_cycle = frame["t"] - window[-1]  # a breath far overdue is a hold
        if np.diff(window).max() > MAX_CYCLE_S or open_cycle > min(2.5 * mean_cycle,
                                                                   MAX_CYCLE_S):
            out.append(None)
            continue
        out.append(round(60.0 / mean_cycle, 3))
    return out


def render_scenario(spec: ScenarioSpec) -> tuple[Iterator[Frame], dict]:
    """(frames, truth) for a spec; frames are rendered lazily as the iterator is consumed."""
    scenario = Scenario(spec)
    times = np.arange(spec.frame_count) / spec.fps
    truth = scenario.truth(times)

    def frames() -> Iterator[Frame]:
        for i, t in enumerate(times):
            yield Frame(t=float(t), image=scenario.render(float(t), i), index=i)

    return frames(), truth


def truth_path(video: Path | str) -> Path:
    video = Path(video)
    return video.with_name(video.stem + ".truth.json")


def write_video(spec: ScenarioSpec, path: Path | str, verify: bool = True) -> dict:
    """Write the clip (mp4, 'mp4v') and its truth JSON; return the truth."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), spec.fps,
                             (spec.width, spec.height))
    if not writer.isOpened():
        raise SourceError(f"video writer: cannot open {path} for mp4v output; check the "
                          "directory is writable and OpenCV has FFmpeg support")
    frames, truth = render_scenario(spec)
    try:
        for frame in frames:
            writer.write(frame.image)
    finally:
        writer.release()
    if verify:
        capture = cv2.VideoCapture(str(path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else -1
        capture.release()
        if count != spec.frame_count:
            raise SourceError(f"video writer: {path} reads back {count} frames, wrote "
                              f"{spec.frame_count}; the codec may be missing")
    truth_path(path).write_text(json.dumps(truth, separators=(",", ":")))
    return truth
