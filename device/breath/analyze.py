"""``breathe analyze``: the live pipeline run over a video file, causally, frame by frame."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import BadInput, SourceError
from device.breath.pipeline import BreathPipeline, PipelineStats
from device.camera.base import Frame, FrameSource

_END = object()


@dataclass
class Analysis:
    """Everything ``analyze`` produced; ``to_json()`` is the documented output format."""

    video: dict
    frames: list[dict]
    breaths: list[dict]
    summary: dict
    displacement: list[float | None] = field(default_factory=list)
    stats: PipelineStats | None = None
    wall_s: float = 0.0

    def to_json(self) -> dict:
        return {"video": self.video, "frames": self.frames, "breaths": self.breaths,
                "summary": self.summary}


def prefetch(frames: Iterator[Frame], depth: int = 2) -> Iterator[Frame]:
    """Decode in a background thread (OpenCV releases the GIL) while we measure.

    Two frames ahead are enough (a 640x480 frame decodes in about 1 ms, a pipeline step takes
    tens); each queued frame holds 0.9 MB.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def worker() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        buffer.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer below
            failure.append(exc)
        finally:
            buffer.put(_END)

    thread = threading.Thread(target=worker, name="frame-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()


def analyze_source(source: FrameSource, pipeline: BreathPipeline, path: str = "",
                   progress: Callable[[int], None] | None = None) -> Analysis:
    """Run ``pipeline`` over every frame of ``source``; one output row per input frame."""
    frames: list[dict] = []
    displacement: list[float | None] = []
    started = time.perf_counter()
    for frame in prefetch(source.frames()):
        out = pipeline.process(frame.t, frame.image)
        r = out.reading
        frames.append({"t": round(frame.t, 4), "phase": r.phase,
                       "rate_bpm": None if r.rate_bpm is None else round(r.rate_bpm, 2),
                       "quality": round(float(r.quality), 3)})
        displacement.append(r.displacement)
        if progress is not None:
            progress(1)
    wall = time.perf_counter() - started
    if not frames:
        raise BadInput(f"{path or source.name}: the video has no frames "
                       "(is it empty or truncated?)")
    video = {"path": path, "fps": round(float(source.stats.fps), 3), "frames": len(frames),
             "width": int(source.width), "height": int(source.height)}
    est = pipeline.estimator.summary()
    rates = [f["rate_bpm"] for f in frames if f["rate_bpm"] is not None]
    summary = {
        "rate_bpm": round(float(np.median(rates)), 2) if rates else None,
        "breath_count": len(est["breaths"]),
        "holds": est["holds"],
        "stillness": round(float(est["stillness"]), 3),
        "coverage": round(sum(1 for f in frames if f["rate_bpm"] is not None) / len(frames), 3),
        "person_found": pipeline.stats.person_frames > 0,
    }
    return Analysis(video, frames, est["breaths"], summary, displacement, pipeline.stats, wall)


def open_video(path: str | Path) -> FrameSource:
    """Open a video file for analysis; bad paths are BadInput (exit 2), not crashes."""
    from device.camera.opencv_source import VideoFileSource

    p = Path(path)
    if not p.exists():
        raise BadInput(f"{p}: no such file (give the path of a video file, e.g. .mp4 or .avi)")
    if p.is_dir():
        raise BadInput(f"{p}: is a directory, not a video file")
    try:
        return VideoFileSource(p)
    except SourceError as exc:
        raise BadInput(str(exc)) from exc


def human_summary(a: Analysis) -> str:
    s = a.summary
    lines = [f"{a.video['path']}: {a.video['frames']} frames, {a.video['width']}x"
             f"{a.video['height']} at {a.video['fps']:g} fps"]
    if not s["person_found"]:
        lines.append("no person found: no breath reading")
        return "\n".join(lines)
    rate = "no reading" if s["rate_bpm"] is None else f"{s['rate_bpm']:.1f} breaths/min"
    lines.append(f"rate (median): {rate}; breaths counted: {s['breath_count']}")
    if s["holds"]:
        longest = max(h["end"] - h["start"] for h in s["holds"])
        lines.append(f"holds: {len(s['holds'])}, longest {longest:.1f} s")
    lines.append(f"reading on {s['coverage'] * 100:.0f}% of frames; "
                 f"still {s['stillness'] * 100:.0f}% of the time")
    if a.wall_s > 0:
        lines.append(f"processed at {a.video['frames'] / a.wall_s:.0f} frames/s")
    return "\n".join(lines)


def plot_analysis(a: Analysis, out: str | Path) -> None:
    """Displacement with phases shaded, and the rate, over time (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([f["t"] for f in a.frames])
    disp = np.array([math.nan if d is None else d for d in a.displacement], dtype=float)
    rate = np.array([math.nan if f["rate_bpm"] is None else f["rate_bpm"] for f in a.frames])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    ax1.plot(t, disp, color="black", lw=1, label="displacement (up = inhale)")
    colours = {"inhale": "#4caf50", "exhale": "#2196f3", "hold": "#ff9800"}
    phases = [f["phase"] for f in a.frames]
    start = 0
    for i in range(1, len(phases) + 1):
        if i == len(phases) or phases[i] != phases[start]:
            if phases[start] in colours:
                ax1.axvspan(t[start], t[min(i, len(t) - 1)], color=colours[phases[start]],
                            alpha=0.25, lw=0)
            start = i
    for b in a.breaths:
        ax1.axvline(b["inhale_start"], color="#4caf50", lw=0.8)
    ax1.set_ylabel("displacement (px)")
    ax1.set_title("breath: green inhale, blue exhale, orange hold")
    ax2.plot(t, rate, color="#9c27b0")
    ax2.set_ylabel("rate (breaths/min)")
    ax2.set_xlabel("time (s)")
    ax2.set_ylim(0, max(10.0, float(np.nanmax(rate)) * 1.2) if np.isfinite(rate).any() else 10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
