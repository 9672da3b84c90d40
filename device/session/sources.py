"""Choose and open a frame source from a spec string, in one place.

Specs: ``auto`` | ``picamera2`` | ``opencv:N`` (USB camera index) | ``file:PATH`` | ``demo``.
``auto`` takes the Pi camera when picamera2 imports and sees a camera, else USB camera 0 when
it opens and delivers a frame, else none (SourceError saying what was tried: the appliance then
paces without measuring). The demo person is only ever taken when asked for.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence

from common.errors import BadInput, SourceError
from device.camera.base import FrameSource
from device.clock import Clock

log = logging.getLogger(__name__)

ALLOWED = "auto, picamera2, opencv:N (USB camera index), file:PATH (a video file), demo"


def parse_spec(spec: str) -> tuple[str, int | str | None]:
    """("auto"|"picamera2"|"demo", None), ("opencv", index) or ("file", path)."""
    text = (spec or "").strip()
    if text in ("auto", "picamera2", "demo"):
        return text, None
    kind, sep, arg = text.partition(":")
    if sep and kind == "opencv":
        if arg.isdigit():
            return "opencv", int(arg)
        raise BadInput(f"camera source {spec!r}: the USB camera index must be a whole number "
                       f"like opencv:0 (allowed: {ALLOWED})")
    if sep and kind == "file":
        if arg.strip():
            return "file", arg
        raise BadInput(f"camera source {spec!r}: give a path after file: (allowed: {ALLOWED})")
    raise BadInput(f"camera source {spec!r} is not known; allowed: {ALLOWED}")


def open_source(spec: str, width: int, height: int, fps: float,
                lores: tuple[int, int] | None = None,
                demo_pattern: Sequence[float] | None = None, *,
                clock: Clock | None = None, realtime: bool = False, loop: bool = False,
                seed: int = 0) -> FrameSource:
    """Open the source ``spec`` names. ``realtime`` paces files at their own fps; ``loop``
    plays them again from the start at their end (a file standing in for a live camera)."""
    kind, arg = parse_spec(spec)
    if kind == "auto":
        return _auto(width, height, fps, lores, clock)
    if kind == "picamera2":
        from device.camera.picamera2_source import Picamera2Source

        return Picamera2Source(width, height, fps, lores=lores, clock=clock)
    if kind == "opencv":
        from device.camera.opencv_source import CameraSource

        return CameraSource(int(arg), width, height, fps, lores=lores, clock=clock)
    if kind == "file":
        from device.camera.opencv_source import VideoFileSource

        return VideoFileSource(str(arg), lores=lores, clock=clock, realtime=realtime,
                               loop=loop)
    return _demo(width, height, fps, lores, demo_pattern, clock, seed)


def _demo(width, height, fps, lores, pattern, clock, seed) -> FrameSource:
    from device.simulator.demo_source import DemoSource

    return DemoSource(width, height, fps, clock=clock, pattern=pattern, lores=lores, seed=seed)


def _auto(width, height, fps, lores, clock) -> FrameSource:
    """The Pi camera, else USB camera 0; SourceError naming what was tried when neither."""
    reasons = []
    if importlib.util.find_spec("picamera2") is not None:
        from device.camera.picamera2_source import Picamera2Source, camera_count

        if camera_count() > 0:
            try:
                source = Picamera2Source(width, height, fps, lores=lores, clock=clock)
                log.info("camera source auto -> picamera2 (Pi camera found)")
                return source
            except SourceError as exc:
                reasons.append(str(exc))
        else:
            reasons.append("picamera2 sees no camera")
    else:
        reasons.append("picamera2 is not installed")
    from device.camera.opencv_source import CameraSource

    try:
        source = CameraSource(0, width, height, fps, lores=lores, clock=clock)
        log.warning("camera source auto -> opencv:0 (%s)", "; ".join(reasons))
        return source
    except SourceError as exc:
        reasons.append(f"no USB camera at index 0 ({exc})")
    # never the demo person: a device must not show a synthetic breath as the user's own
    raise SourceError(f"no camera found ({'; '.join(reasons)}); connect a Pi camera module or "
                      "a USB camera, or run with --demo to see the synthetic person")
