"""The FrameSource seam: anything that yields (timestamp, image) frames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class SourceStats:
    """What a source reports about itself while it runs."""

    fps: float = 0.0  # nominal frames per second
    frames: int = 0  # frames delivered so far
    dropped: int = 0  # frames the source knows it lost (gaps in timestamps, read failures)


@dataclass
class Frame:
    """One camera frame. ``image`` is BGR uint8 (H, W, 3); ``t`` is seconds from the start."""

    t: float
    image: np.ndarray
    index: int = 0
    meta: dict = field(default_factory=dict)


class FrameSource(Protocol):
    """A camera, a file or the demo person. ``frames()`` may be iterated once."""

    name: str
    width: int
    height: int
    stats: SourceStats

    def frames(self) -> Iterator[Frame]:
        """Yield frames in time order until the source ends or ``close()`` is called."""

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
