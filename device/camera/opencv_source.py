"""OpenCV frame sources: a USB camera by index, or a video file.

Files keep their own size, fps and frame times (``CAP_PROP_POS_MSEC`` while it is sane, else
the previous time plus one frame period) and are read as fast as the consumer takes them
unless ``realtime`` is set; ``loop`` starts them again at the end, times still rising (the
appliance replaying a recording as its camera). A file that is missing, unreadable, empty
or not a video raises ``VideoFileError`` — a ``SourceError`` that is also ``BadInput``, so
the CLI exits 2.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from common.errors import BadInput, SourceError
from device.camera.base import Frame, SourceStats
from device.camera.convert import lores_image
from device.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)
_READ_RETRIES = 10  # consecutive failed camera reads before giving up
# FFmpeg decodes a file with one thread per core by default, each holding its own decoder
# context and frames in flight (about 0.5 MB per extra thread at 640x480). One thread decodes
# 640x480 in about 1 ms a frame, far below a frame period, and gives the same pixels.
_DECODE_THREADS = 1


class VideoFileError(SourceError, BadInput):
    """A video file that cannot be used: the person gave a bad path or file."""


def _count_gap(stats: SourceStats, gap: float, fps: float) -> None:
    """Add frames lost in a timestamp gap (more than 1.5 frame periods) to ``stats.dropped``."""
    if fps > 0 and gap > 1.5 / fps:
        stats.dropped += int(round(gap * fps)) - 1


class VideoFileSource:
    """Frames of a video file with the file's own timing."""

    def __init__(self, path: str | os.PathLike, *, lores: tuple[int, int] | None = None,
                 clock: Clock | None = None, realtime: bool = False, loop: bool = False):
        self.path = Path(path)
        self.name = f"file:{self.path}"
        self.lores = lores
        self.clock = clock or MonotonicClock()
        self.realtime = realtime
        self.loop = loop
        self.loops = 0  # how many times the file started again
        self._check_file()
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG,
                                     [cv2.CAP_PROP_N_THREADS, _DECODE_THREADS])
        if not self._cap.isOpened():
            raise VideoFileError(f"video file {self.path}: OpenCV cannot open it as a video; "
                                 "check it is an mp4/avi/mkv file that plays elsewhere")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise VideoFileError(f"video file {self.path}: has no frames (empty or truncated "
                                 "video); check the recording finished")
        self._first = (first, self._cap.get(cv2.CAP_PROP_POS_MSEC))
        self.height, self.width = first.shape[:2]
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(fps) and 1.0 <= fps <= 240.0):
            log.warning("%s: fps reported as %r; assuming 30", self.name, fps)
            fps = 30.0
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else None
        self.stats = SourceStats(fps=float(fps))
        self._closed = False

    def _check_file(self) -> None:
        p = self.path
        if not p.exists():
            raise VideoFileError(f"video file {p}: not found; check the path (cwd is "
                                 f"{Path.cwd()})")
        if not p.is_file():
            raise VideoFileError(f"video file {p}: is not a regular file; give a video file")
        if not os.access(p, os.R_OK):
            raise VideoFileError(f"video file {p}: cannot be read (permission denied); check "
                                 "its permissions")
        if p.stat().st_size == 0:
            raise VideoFileError(f"video file {p}: is empty (0 bytes); check the recording")

    def frames(self) -> Iterator[Frame]:
        fps = self.stats.fps
        start = self.clock.now()
        index, last_t, offset = 0, None, 0.0
        image, ms = self._first
        while not self._closed:
            t = offset + ms / 1000.0 if math.isfinite(ms) and ms >= 0 else -1.0
            if last_t is not None:
                if t <= last_t:  # not sane: step one frame period
                    t = last_t + 1.0 / fps
                _count_gap(self.stats, t - last_t, fps)
            elif t < 0:
                t = 0.0
            if self.realtime:
                self.clock.sleep(start + t - self.clock.now())
            meta = {"lores": lores_image(image, self.lores)} if self.lores else {}
            self.stats.frames += 1
            yield Frame(t=t, image=image, index=index, meta=meta)
            last_t, index = t, index + 1
            ok, image = self._cap.read()
            if not ok or image is None:
                if not self.loop or not self._rewind():
                    return
                offset = last_t + 1.0 / fps  # the first frame again, one period later
                image, ms = self._first[0], 0.0
                continue
            ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)

    def _rewind(self) -> bool:
        """Back to the second frame (the first is kept); False if the file cannot be re-read."""
        if self._closed or not self._cap.set(cv2.CAP_PROP_POS_FRAMES, 1):
            return False
        self.loops += 1
        log.debug("%s: end of file, playing it again (loop %d)", self.name, self.loops)
        return True

    def close(self) -> None:
        self._closed = True
        self._cap.release()


class CameraSource:
    """A USB (V4L2) camera by index; frame times from the clock since the first frame."""

    def __init__(self, index: int, width: int = 640, height: int = 480, fps: float = 30.0, *,
                 lores: tuple[int, int] | None = None, clock: Clock | None = None):
        self.index = int(index)
        self.name = f"opencv:{self.index}"
        self.lores = lores
        self.clock = clock or MonotonicClock()
        self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            raise SourceError(f"{self.name}: no camera at index {self.index}; check it is "
                              "plugged in (ls /dev/video*) and no other program is using it")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_FPS, fps)
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"{self.name}: the camera opened but delivers no frames; check "
                              "the cable and that it is a video capture device")
        self._first = first
        self.height, self.width = first.shape[:2]
        actual = self._cap.get(cv2.CAP_PROP_FPS)
        self.stats = SourceStats(fps=float(actual) if actual and actual > 0 else float(fps))
        if (self.width, self.height) != (width, height):
            log.warning("%s: asked for %dx%d, camera gives %dx%d", self.name, width, height,
                        self.width, self.height)
        self._closed = False

    def frames(self) -> Iterator[Frame]:
        fps = self.stats.fps
        start = self.clock.now()
        index, last_t, failures = 0, None, 0
        image: np.ndarray | None = self._first
        while not self._closed:
            if image is None:
                ok, image = self._cap.read()
                if not ok or image is None:
                    failures += 1  # the timestamp gap counts what was lost
                    if failures >= _READ_RETRIES:
                        raise SourceError(f"{self.name}: stopped delivering frames; check the "
                                          "cable and power")
                    image = None
                    continue
            failures = 0
            t = self.clock.now() - start
            if last_t is not None:
                _count_gap(self.stats, t - last_t, fps)
            meta = {"lores": lores_image(image, self.lores)} if self.lores else {}
            self.stats.frames += 1
            yield Frame(t=t, image=image, index=index, meta=meta)
            last_t, index, image = t, index + 1, None

    def close(self) -> None:
        self._closed = True
        self._cap.release()
