"""The demo person is found without mediapipe, and as well as mediapipe finds it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from vision_photos import load_reference, reference_mask

from common.errors import SourceError
from device.simulator.cutout import find_person
from device.simulator.scene import PHOTOS, _read_photo

_NOSE, _L_SH, _R_SH = 0, 11, 12


def test_demo_source_renders_without_importing_mediapipe():
    # A fresh interpreter: other tests in this process may have imported mediapipe already.
    script = textwrap.dedent("""
        import sys
        from device.simulator.demo_source import DemoSource
        from device.clock import FakeClock
        source = DemoSource(pattern=(4, 4, 4, 4), clock=FakeClock(), duration=0.2)
        frames = list(source.frames())
        assert frames and frames[0].image.std() > 10, "demo rendered a blank frame"
        print(sorted(m for m in sys.modules if m.split(".")[0] == "mediapipe"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("photo", PHOTOS)
def test_mask_covers_the_person_and_not_the_background(photo):
    image = _read_photo(photo)
    points, mask = find_person(image, photo)
    h, w = image.shape[:2]
    assert points.shape == (33, 2) and mask.shape == (h, w) and mask.dtype == np.float32
    for index in (_NOSE, _L_SH, _R_SH):
        x, y = points[index].round().astype(int)
        assert 0 <= x < w and 0 <= y < h
        assert mask[y, x] > 0.9, f"landmark {index} is outside the cut-out"
    assert mask[:20, :20].max() < 0.1 and mask[:20, -20:].max() < 0.1  # top corners: backdrop
    assert 0.3 < (mask > 0.5).mean() < 0.8


@pytest.mark.parametrize("photo", PHOTOS)
def test_mask_and_landmarks_match_mediapipe(photo):
    reference = load_reference()  # mediapipe's own segmentation and landmarks on the photo
    image = _read_photo(photo)
    points, mask = find_person(image, photo)
    ref_points = reference[f"cutout_points/{photo}"]
    ours, theirs = mask > 0.5, reference_mask(reference, photo, image.shape[:2])
    assert (ours & theirs).sum() / (ours | theirs).sum() > 0.98
    assert np.abs(points - ref_points).max() < 2.0


def test_a_photo_without_a_person_is_refused_by_name():
    wall = np.full((480, 640, 3), 180, np.uint8)
    with pytest.raises(SourceError, match="empty wall"):
        find_person(wall, "empty wall")
