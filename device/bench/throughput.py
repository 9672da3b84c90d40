"""How fast ``breathe analyze`` runs, where the time goes, and how much memory it takes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from common.config import Settings
from device.bench.procmem import peak_until_exit
from device.breath.analyze import analyze_source
from device.breath.pipeline import BreathPipeline
from device.camera.opencv_source import VideoFileSource


def decode_fps(path: Path) -> float:
    """Frames per second OpenCV decodes this file at, and nothing else."""
    capture = cv2.VideoCapture(str(path))
    count, started = 0, time.perf_counter()
    while capture.grab():
        capture.retrieve()
        count += 1
    capture.release()
    return count / max(time.perf_counter() - started, 1e-9)


def stage_costs(path: Path, backend) -> dict:
    """Run the pipeline in this process; per-stage milliseconds per frame."""
    source = VideoFileSource(path)
    pipeline = BreathPipeline.from_settings(Settings(), source.stats.fps, backend, whole_file=True)
    result = analyze_source(source, pipeline, str(path))
    source.close()
    st = pipeline.stats
    n = max(st.frames, 1)
    return {
        "frames": st.frames, "wall_fps": st.frames / result.wall_s,
        "landmarks_ms_per_frame": 1e3 * st.landmark_s / n,
        "landmark_calls": st.landmark_calls,
        "landmarks_ms_per_call": 1e3 * st.landmark_s / max(st.landmark_calls, 1),
        "motion_ms_per_frame": 1e3 * st.motion_s / n,
        "estimator_ms_per_frame": 1e3 * st.estimator_s / n,
    }


def textbook_run(path: Path, backend) -> dict:
    """The textbook optical-flow method (``device.bench.textbook``) over the same file, in
    this process with the same decoding thread: frames/s."""
    from device.bench.textbook import analyze_textbook

    source = VideoFileSource(path)
    try:
        if hasattr(backend, "reset"):
            backend.reset()
        result = analyze_textbook(source, backend, str(path))
    finally:
        source.close()
    return {"frames": result.video["frames"], "wall_fps": result.video["frames"] / result.wall_s}


def cli_run(path: Path) -> dict:
    """``breathe analyze`` as a user runs it, in a child process: wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "device", "analyze", str(path),
                                  "--json", str(out)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak, _ = peak_until_exit(child)  # this child's own peak, no one else's
        wall = time.perf_counter() - started
        if child.returncode != 0:
            raise RuntimeError(f"breathe analyze {path} exited {child.returncode}")
        frames = len(json.loads(out.read_text())["frames"])
    return {"frames": frames, "wall_s": wall, "fps_including_startup": frames / wall,
            "peak_rss_mb": peak}
