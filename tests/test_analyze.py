"""``breathe analyze`` end to end: generated videos with exact truth, the real landmark models.

Clips are short and small (15 fps) so the suite stays fast; long runs live in
``scripts/bench accuracy``.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from device.bench.accuracy import analyse_clip, clip_for, score_clip
from device.breath.scoring import rate_shown_fraction
from device.cli import main
from device.simulator.suites import PATTERNS, free, hold, paced
from device.simulator.synth import ScenarioSpec
from device.simulator.timeline import Event
from device.vision.factory import make_backend

FPS = 15


def spec(name: str, duration: float, blocks: list, **fields) -> ScenarioSpec:
    person = {"photo": "astronaut", "amplitude_px": 2.5, **fields.pop("person", {})}
    return ScenarioSpec.model_validate({
        "name": name, "duration": duration, "fps": fields.pop("fps", FPS), "seed": 7,
        "person": person, "breathing": {"blocks": blocks}, **fields})


CLIPS = {
    "free_14": spec("free_14", 45, [free(45, 14)]),
    "box": spec("box", 50, [free(2, 12), paced(48, PATTERNS["box"])],
                person={"photo": "grace_hopper", "flip": True}),
    "hold_25": spec("hold_25", 55, [free(18, 15), hold(25), free(12, 15)]),
    "empty": spec("empty", 20, [free(20)], person={"present": False},
                  nuisances={"flicker": 0.05, "lighting_drift": 0.2}),
    "shift": spec("shift", 45, [free(45, 12)],
                  events=[Event(kind="shift", at=20, duration=1.5, dx=30, dy=4)]),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {name: clip_for(s, folder) for name, s in CLIPS.items()}


@pytest.fixture(scope="module")
def backend():
    b = make_backend("litert")
    yield b
    b.close()


@pytest.fixture(scope="module")
def analysed(clips, backend):
    return {name: (truth, analyse_clip(path, backend)) for name, (path, truth) in clips.items()}


def test_free_breathing_rate_phase_and_breaths(analysed):
    truth, result = analysed["free_14"]
    row = score_clip(truth, result)
    assert row["mae_known"] < 1.0, row
    assert row["coverage"] > 0.9, row
    assert row["phase"] > 0.85, row
    assert row["breath_f1"] > 0.85, row
    assert result.summary["person_found"] is True
    assert 11 < result.summary["rate_bpm"] < 17


def test_box_breathing_counts_breaths_not_holds(analysed):
    truth, result = analysed["box"]
    row = score_clip(truth, result)
    assert row["breath_f1"] > 0.85, row
    assert row["phase"] > 0.85, row
    assert 3.0 < result.summary["rate_bpm"] < 4.5  # 16 s cycle = 3.75 breaths/min
    holds = [f for f in result.frames if f["phase"] == "hold"]
    assert len(holds) > 0.2 * len(result.frames)  # half the pattern is holding


def test_a_long_breath_hold_is_not_a_breath_and_hides_the_rate(analysed):
    truth, result = analysed["hold_25"]
    row = score_clip(truth, result)
    assert row.get("breaths_in_hold") == 0, row
    assert row["hold_rate_after_12s"] < 0.05, row
    hold_truth = truth["holds"][0]
    during = [f for f in result.frames
              if hold_truth["start"] + 3 < f["t"] < hold_truth["end"] - 1]
    assert sum(f["phase"] == "hold" for f in during) > 0.8 * len(during)
    assert any(h["end"] - h["start"] > 15 for h in result.summary["holds"])


def test_an_empty_scene_gives_no_reading(analysed):
    _, result = analysed["empty"]
    assert rate_shown_fraction(result.frames) <= 0.02
    assert result.summary["person_found"] is False
    assert result.summary["rate_bpm"] is None
    assert result.breaths == []


def test_no_wrong_numbers_while_the_person_moves(analysed):
    truth, result = analysed["shift"]
    moving = [f["t"] for f in truth["frames"] if f["motion"]]
    assert moving, "the scenario must contain motion"
    during = [f for f in result.frames if moving[0] <= f["t"] <= moving[-1]]
    wrong = [f for f in during if f["rate_bpm"] is not None and abs(f["rate_bpm"] - 12) > 3]
    assert not wrong, wrong[:3]
    after = [f for f in result.frames if f["t"] > moving[-1] + 15]
    assert sum(f["rate_bpm"] is not None for f in after) > 0.7 * len(after)


def test_the_value_at_t_uses_only_frames_up_to_t(clips, backend, tmp_path):
    """Cut the clip short: every frame before the cut must read exactly the same."""
    full_spec = CLIPS["free_14"]
    short_spec = full_spec.model_copy(update={"name": "free_14_cut", "duration": 30.0})
    path_short, _ = clip_for(short_spec, tmp_path)
    full = analyse_clip(clips["free_14"][0], backend)
    backend.reset()
    short = analyse_clip(path_short, backend)
    n = len(short.frames)
    assert n == 450
    assert full.frames[:n] == short.frames


def test_cli_writes_the_documented_json_and_a_plot(clips, tmp_path):
    path, _ = clips["free_14"]
    out, plot = tmp_path / "out.json", tmp_path / "plot.png"
    result = CliRunner().invoke(main, ["analyze", str(path), "--json", str(out),
                                       "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "breaths/min" in result.output
    data = json.loads(out.read_text())
    assert set(data) == {"video", "frames", "breaths", "summary"}
    assert data["video"] == {"path": str(path), "fps": 15.0, "frames": 675, "width": 640,
                             "height": 480}
    assert len(data["frames"]) == 675
    frame = data["frames"][300]
    assert set(frame) == {"t", "phase", "rate_bpm", "quality"}
    assert frame["phase"] in ("inhale", "exhale", "hold", None)
    assert 0.0 <= frame["quality"] <= 1.0
    times = [f["t"] for f in data["frames"]]
    assert times == sorted(times)
    assert set(data["breaths"][0]) == {"inhale_start", "exhale_start", "end"}
    assert set(data["summary"]) == {"rate_bpm", "breath_count", "holds", "stillness",
                                    "coverage", "person_found"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_empty_scene_json_has_nulls(clips, tmp_path):
    path, _ = clips["empty"]
    result = CliRunner().invoke(main, ["analyze", str(path), "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["summary"]["person_found"] is False
    assert data["summary"]["rate_bpm"] is None


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "missing.mp4", "no such file"),
    (lambda p: p, "directory"),
    (lambda p: (p / "empty.mp4").write_bytes(b"") or p / "empty.mp4", "empty"),
    (lambda p: (p / "text.mp4").write_text("not a video") or p / "text.mp4", "video"),
])
def test_cli_bad_video_exits_2_with_a_clear_message(tmp_path, make, fragment):
    result = CliRunner().invoke(main, ["analyze", str(make(tmp_path))])
    assert result.exit_code == 2, result.output
    assert fragment in result.output.lower()


def test_breaths_at_the_clips_ends_are_not_scored() -> None:
    """An inhale in the clip's last second cannot be confirmed by any causal method before
    the video ends, and a clip's first turn has no whole breath in the truth: the benchmark
    scores breaths 2 s away from both ends (as the test-signal suite does)."""
    from device.breath.analyze import Analysis

    fps, n = 10.0, 600
    starts = [3.0 + 5.0 * k for k in range(11)] + [59.4]
    truth = {"frames": [{"t": i / fps, "phase": "inhale", "rate_bpm": 12.0, "present": True}
                        for i in range(n)],
             "breaths": [{"inhale_start": s, "exhale_start": s + 2.0, "end": s + 5.0}
                         for s in starts]}
    found = [{"inhale_start": 0.4, "exhale_start": None, "end": None}] + [
        {"inhale_start": s + 0.2, "exhale_start": None, "end": None} for s in starts[:-1]]
    frames = [{"t": i / fps, "phase": "inhale", "rate_bpm": 12.0} for i in range(n)]
    row = score_clip(truth, Analysis({"frames": n}, frames, found, {}))
    assert row["breath_f1"] == 1.0
    missed = found[:5] + found[6:]  # a breath missed in mid-clip still counts
    assert score_clip(truth, Analysis({"frames": n}, frames, missed, {}))["breath_f1"] < 1.0
