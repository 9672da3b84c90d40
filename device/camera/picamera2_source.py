"""The Raspberry Pi camera through picamera2: a main stream plus a lores YUV420 stream.

picamera2 is imported only when this source is opened: it comes from Raspberry Pi OS
(``apt install python3-picamera2``) into a venv made with ``--system-site-packages`` and is
never a pip dependency. The main stream is "RGB888", which libcamera lays out as B, G, R in
memory, so it is already OpenCV's BGR. The lores stream (for the landmark models) is YUV420
and converted to BGR into ``frame.meta["lores"]``. ``FrameDurationLimits`` pins the frame rate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from common.errors import SourceError
from device.camera.base import Frame, SourceStats
from device.camera.convert import yuv420_to_bgr
from device.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

INSTALL_HINT = ("on Raspberry Pi OS: sudo apt install python3-picamera2, and make the venv with "
                "--system-site-packages")


def import_picamera2():
    """The Picamera2 class, or SourceError saying how to install it."""
    try:
        from picamera2 import Picamera2
    except ImportError as exc:  # also a broken libcamera binding
        raise SourceError(f"picamera2: not available ({exc}); {INSTALL_HINT}") from exc
    return Picamera2


def camera_count() -> int:
    """How many libcamera cameras are attached (0 when picamera2 is missing)."""
    try:
        return len(import_picamera2().global_camera_info())
    except SourceError:
        return 0


def _stream_size(config, stream: str) -> tuple[int, int]:
    """(width, height) of a stream in a configuration (a dict, or an object in newer
    picamera2 releases)."""
    try:
        size = config[stream]["size"]
    except (TypeError, KeyError):
        size = getattr(config, stream).size
    return int(size[0]), int(size[1])


class Picamera2Source:
    """Frames from a Pi camera module, timed by the sensor's own timestamps."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, *,
                 lores: tuple[int, int] | None = None, camera_num: int = 0,
                 clock: Clock | None = None):
        picamera2 = import_picamera2()
        self.name = f"picamera2:{camera_num}"
        self.clock = clock or MonotonicClock()
        if len(picamera2.global_camera_info()) <= camera_num:
            raise SourceError(f"{self.name}: no camera found; check the ribbon cable and "
                              "`rpicam-hello --list-cameras`")
        try:
            self._cam = picamera2(camera_num)
            frame_us = int(round(1e6 / fps))
            config = self._cam.create_video_configuration(
                main={"size": (int(width), int(height)), "format": "RGB888"},
                lores={"size": tuple(lores), "format": "YUV420"} if lores else None,
                controls={"FrameDurationLimits": (frame_us, frame_us)},
            )
            align = getattr(self._cam, "align_configuration", None)
            if align is not None:  # sizes the ISP handles without padding
                align(config)
            self._cam.configure(config)
            self.width, self.height = _stream_size(config, "main")
            self.lores = _stream_size(config, "lores") if lores else None
            self._cam.start()
        except Exception as exc:  # libcamera reports many things as RuntimeError
            raise SourceError(f"{self.name}: cannot start the camera ({exc}); check no other "
                              "program holds it and the size/fps are supported") from exc
        if (self.width, self.height) != (width, height):
            log.info("%s: aligned main stream to %dx%d", self.name, self.width, self.height)
        self.stats = SourceStats(fps=float(fps))
        self._closed = False

    def frames(self) -> Iterator[Frame]:
        fps = self.stats.fps
        index, first_ns, last_t = 0, None, None
        start = self.clock.now()
        while not self._closed:
            request = self._cam.capture_request()
            try:
                main = request.make_array("main")
                lo = request.make_array("lores") if self.lores else None
                stamp = request.get_metadata().get("SensorTimestamp")
            finally:
                request.release()
            if stamp is not None:
                first_ns = stamp if first_ns is None else first_ns
                t = (stamp - first_ns) / 1e9
            else:
                t = self.clock.now() - start
            if last_t is not None and t - last_t > 1.5 / fps:
                self.stats.dropped += int(round((t - last_t) * fps)) - 1
            meta = {}
            if lo is not None:
                meta["lores"] = yuv420_to_bgr(lo, *self.lores)
            self.stats.frames += 1
            yield Frame(t=t, image=main[:, :, :3], index=index, meta=meta)
            index, last_t = index + 1, t

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._cam.stop()
            self._cam.close()
        except Exception as exc:  # closing must not raise
            log.warning("%s: error while closing: %s", self.name, exc)
