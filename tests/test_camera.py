"""Frame sources and the synthetic breathing person: truth, motion, files, demo, factory."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import BadInput, SourceError
from device.camera.convert import yuv420_to_bgr
from device.camera.opencv_source import VideoFileError, VideoFileSource
from device.clock import FakeClock
from device.session.sources import open_source, parse_spec
from device.simulator.demo_source import DemoSource
from device.simulator.scene import PersonRig, Placement, SceneRenderer, load_photo, photo_plate
from device.simulator.suites import SUITES, free, hold, paced
from device.simulator.synth import (
    PersonSpec,
    Scenario,
    ScenarioSpec,
    causal_rate,
    render_scenario,
    truth_path,
    write_video,
)
from device.simulator.timeline import CameraModel, Event, Nuisances
from device.simulator.waveform import HOLD_MIN_S, BreathingSpec, BreathPlan

QUIET = Nuisances(noise=0, sway_px=0, cardiac_px=0)


def plan_for(*blocks, seed: int = 3, **kw) -> BreathPlan:
    return BreathPlan(BreathingSpec(blocks=list(blocks), **kw), seed=seed)


def breath_rates(plan: BreathPlan, t0: float, t1: float) -> np.ndarray:
    return np.array([60 / b.cycle for b in plan.breaths_between(t0, t1)])


# ---- waveform and truth ----------------------------------------------------------------
@pytest.mark.parametrize("bpm", [6, 12, 20, 30, 40])
def test_free_breathing_runs_at_the_asked_rate_with_human_irregularity(bpm):
    plan = plan_for(free(150, bpm), period_cv=0.1)
    rates = breath_rates(plan, 0, 150)
    assert abs(np.median(rates) - bpm) / bpm < 0.06
    assert 0.03 < np.std(rates) / np.mean(rates) < 0.25  # irregular, not metronomic
    t = np.arange(0, 150, 1 / 30)
    assert not np.any(plan.phase(t) == "hold")  # natural pauses are never holds
    assert np.nanmedian(plan.rate(t)) == pytest.approx(bpm, rel=0.06)


@given(bpm=st.floats(3, 40), seed=st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_breaths_are_ordered_and_phase_follows_the_volume(bpm, seed):
    plan = plan_for(free(60, bpm), seed=seed, tremor=0.0)  # tremor alone has a steep slope
    breaths = plan.breaths_between(0, 60)
    for b, nxt in zip(breaths, breaths[1:], strict=False):
        assert b.inhale_start < b.exhale_start < b.end <= nxt.inhale_start
        assert b.base0 < b.peak and b.base1 < b.peak
    t = np.arange(0, 60, 0.01)
    v = plan.volume(t)
    assert v.min() >= 0 and v.max() <= 1
    slope = np.gradient(v, t)
    phase = plan.phase(t)
    steep = 0.3 * np.abs(slope).max()
    assert np.all(phase[slope > steep] == "inhale")
    assert np.all(phase[slope < -steep] == "exhale")


def test_paced_box_holds_are_flat_and_marked():
    plan = plan_for(free(4, 12), paced(64, (4, 4, 4, 4)))
    holds = [h for h in plan.holds_between(5, 68) if h[1] < 66]  # not clipped at the end
    assert len(holds) >= 6
    for start, end in holds:
        assert end - start == pytest.approx(4, abs=0.7)
        inner = np.linspace(start + 0.05, end - 0.05, 200)
        v = plan.volume(inner)
        assert np.ptp(v) < 0.02  # tremor only; a breath moves v by ~0.5
        assert set(plan.phase(inner)) == {"hold"}
    assert np.median(breath_rates(plan, 6, 68)) == pytest.approx(60 / 16, rel=0.03)


def test_relaxing_478_reads_as_a_slow_rate_with_holds_at_the_top():
    plan = plan_for(paced(95, (4, 7, 8, 0)))
    assert np.median(breath_rates(plan, 1, 90)) == pytest.approx(60 / 19, rel=0.03)
    for b in plan.breaths_between(1, 80):
        assert b.hold_in and not b.hold_out
        assert b.exhale_start - b.peak_time == pytest.approx(7, abs=0.7)


def test_a_long_breath_hold_has_no_breaths_and_no_rate():
    plan = plan_for(free(20, 14), hold(25), free(45, 14))
    (start, end), = plan.holds_between(0, 90)
    assert end - start == pytest.approx(25)
    assert not [b for b in plan.breaths_between(0, 70) if start < b.inhale_start < end]
    inside = np.linspace(start + 0.5, end - 0.5, 50)
    assert np.all(np.isnan(plan.rate(inside)))
    recovery = breath_rates(plan, end, end + 8)  # a few quicker breaths after the hold
    assert recovery[0] > 14
    assert np.median(breath_rates(plan, end + 12, 90)) == pytest.approx(14, rel=0.1)


def test_rate_steps_and_ramps_are_followed():
    plan = plan_for(free(90, [(0, 10), (40, 10), (41, 24), (90, 24)]))
    assert np.median(breath_rates(plan, 5, 38)) == pytest.approx(10, rel=0.08)
    assert np.median(breath_rates(plan, 50, 85)) == pytest.approx(24, rel=0.08)


def test_same_seed_same_breathing_other_seed_other_breathing():
    t = np.arange(0, 30, 0.1)
    a = plan_for(free(30, 12), seed=1).volume(t)
    assert np.array_equal(a, plan_for(free(30, 12), seed=1).volume(t))
    assert not np.allclose(a, plan_for(free(30, 12), seed=2).volume(t))


# ---- scene: the right places move by the right amount ------------------------------------
def _shift(a: np.ndarray, b: np.ndarray, cx: int, cy: int, r: int) -> tuple[float, float]:
    """Sub-pixel translation of a patch from a to b (ECC)."""
    gray = [cv2.cvtColor(x[cy - r: cy + r, cx - r: cx + r], cv2.COLOR_BGR2GRAY)
            .astype(np.float32) for x in (a, b)]
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    _, warp = cv2.findTransformECC(gray[0], gray[1], warp, cv2.MOTION_TRANSLATION, criteria,
                                   None, 5)
    return float(warp[0, 2]), float(warp[1, 2])


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("rise", [1.5, 4.0])
def test_shoulders_rise_by_the_intended_pixels_and_the_background_stays(photo, rise):
    rig = PersonRig(load_photo(photo), 640, 480, Placement())
    renderer = SceneRenderer(rig, photo_plate(photo, 640, 480))
    rest = renderer.render({})
    up = renderer.render({"rise": rise, "head_y": 0.35 * rise, "expand": 0.3 * rise})
    centre = rig.center_x + rig.offset[0]
    r = int(0.1 * rig.shoulder_width)
    for x, y in rig.shoulder_points():
        inward = int(x + 0.1 * rig.shoulder_width * np.sign(centre - x))
        dx, dy = _shift(rest, up, inward, int(y), r)
        assert dy == pytest.approx(-rise, abs=0.25)  # up by `rise` px
        assert abs(dx) < 0.6
    changed = cv2.absdiff(rest, up).max(axis=2) > 0
    person = rig.sprite[:, :, 3] > 0
    h, w = person.shape
    ox, oy = (int(round(v)) for v in rig.offset)
    footprint = np.zeros((480, 640), bool)
    ys, xs = np.nonzero(person)
    xs, ys = xs + ox, ys + oy
    keep = (xs >= 0) & (xs < 640) & (ys >= 0) & (ys < 480)
    footprint[ys[keep], xs[keep]] = True
    near_person = cv2.dilate(footprint.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert not np.any(changed & ~near_person)  # the background never moves
    assert changed.sum() > 5000


def test_breathing_moves_the_torso_in_time_with_the_truth():
    spec = ScenarioSpec(name="moves", duration=12, fps=15, nuisances=QUIET,
                        person=PersonSpec(photo="grace_hopper", amplitude_px=3.0),
                        breathing=BreathingSpec(blocks=[free(12, 12)], period_cv=0, amp_cv=0))
    scenario = Scenario(spec)
    b = scenario.plan.breaths_between(0, 12)[0]
    low, high = b.inhale_start, b.peak_time
    expected = float(scenario.breath_px(np.array([high]))[0]
                     - scenario.breath_px(np.array([low]))[0])
    rig = scenario.rig
    x, y = rig.shoulder_points()[0]
    inward = int(x + 0.1 * rig.shoulder_width * np.sign(rig.center_x + rig.offset[0] - x))
    _, dy = _shift(scenario.render(low, 0), scenario.render(high, 1), inward, int(y),
                   int(0.1 * rig.shoulder_width))
    assert expected > 2.0
    assert -dy == pytest.approx(expected, abs=0.35)


def test_enter_and_leave_mark_presence_and_empty_frames_have_no_truth():
    spec = ScenarioSpec(name="walk", duration=30, fps=10, nuisances=QUIET,
                        events=[Event(kind="enter", at=5, duration=2),
                                Event(kind="leave", at=20, duration=2, side="left")])
    frames = Scenario(spec).truth(np.arange(300) / 10)["frames"]
    present = [f["present"] for f in frames]
    assert not any(present[:50]) and all(present[75:200]) and not any(present[225:])
    for f in frames:
        if not f["present"]:
            assert f["phase"] is None and f["rate_bpm"] is None
    walking_in = frames[50:70]  # out of view, or in view and moving
    assert all(f["motion"] or not f["present"] for f in walking_in)
    assert any(f["motion"] for f in walking_in)
    assert not any(f["motion"] for f in frames[80:190])


def test_strong_lighting_and_flicker_saturate_but_never_wrap_around():
    camera = CameraModel(Nuisances(noise=0, lighting_drift=0.5, flicker=0.3, gain_jitter=0.1),
                         320, 240, 30, seed=1)
    white = np.full((240, 320, 3), 250, np.uint8)
    black = np.full((240, 320, 3), 5, np.uint8)
    for i in range(0, 300, 7):
        assert camera.apply(white, i / 30, i).min() > 100
        assert camera.apply(black, i / 30, i).max() < 40
    banded = camera.apply(np.full((240, 320, 3), 128, np.uint8), 0.5, 15)
    rows = banded[:, :, 1].mean(axis=1)
    assert np.ptp(rows) > 10  # rolling-shutter bands across the rows
    assert np.ptp(banded[100, :, 1]) < np.ptp(rows)


# ---- files: write, read back, and bad files -------------------------------------------------
@pytest.mark.parametrize("fps", [15, 24])
def test_written_video_reads_back_with_its_fps_frames_and_timestamps(tmp_path, fps):
    spec = ScenarioSpec(name=f"clip{fps}", duration=3, fps=fps, width=320, height=240,
                        breathing=BreathingSpec(blocks=[free(3, 20)]))
    truth = write_video(spec, tmp_path / "clip.mp4")
    saved = json.loads(truth_path(tmp_path / "clip.mp4").read_text())
    assert set(saved) == {"fps", "width", "height", "frames", "breaths", "holds", "events",
                          "scenario"}
    assert set(saved["frames"][0]) == {"t", "phase", "rate_bpm", "present", "motion"}
    assert saved == json.loads(json.dumps(truth))
    source = VideoFileSource(tmp_path / "clip.mp4")
    assert (source.width, source.height, source.stats.fps) == (320, 240, fps)
    frames = list(source.frames())
    assert len(frames) == spec.frame_count == len(saved["frames"]) == source.frame_count
    times = np.array([f.t for f in frames])
    assert np.allclose(times, np.arange(len(frames)) / fps, atol=1e-3)
    assert source.stats.dropped == 0 and source.stats.frames == len(frames)
    original, _ = render_scenario(spec)
    first = next(original).image
    assert np.abs(frames[0].image.astype(int) - first).mean() < 6  # codec loss only


def test_a_file_standing_in_for_the_camera_plays_at_its_own_rate_and_loops(tmp_path):
    spec = ScenarioSpec(name="loop", duration=1, fps=10, width=160, height=120)
    write_video(spec, tmp_path / "v.mp4")
    clock = FakeClock()
    source = VideoFileSource(tmp_path / "v.mp4", clock=clock, realtime=True, loop=True)
    frames, seen_at = [], []
    for frame in source.frames():
        frames.append(frame)
        seen_at.append(clock.now())
        if len(frames) == 25:
            break
    source.close()
    times = np.array([f.t for f in frames])
    # 2.5 plays of a 10-frame file, one frame period apart throughout, delivered on time
    assert np.allclose(times, np.arange(25) / 10, atol=1e-3)
    assert np.allclose(seen_at, times, atol=1e-3)
    assert source.loops == 2 and source.stats.dropped == 0
    assert np.array_equal(frames[10].image, frames[0].image)
    assert np.array_equal(frames[23].image, frames[3].image)
    assert not np.array_equal(frames[3].image, frames[0].image)


def test_file_source_gives_lores_frames(tmp_path):
    spec = ScenarioSpec(name="lores", duration=1, fps=10, width=320, height=240)
    write_video(spec, tmp_path / "v.mp4")
    frame = next(VideoFileSource(tmp_path / "v.mp4", lores=(160, 120)).frames())
    assert frame.meta["lores"].shape == (120, 160, 3)


def test_bad_video_files_say_what_is_wrong(tmp_path):
    cases = {
        "missing.mp4": (None, "not found"),
        "empty.mp4": (b"", "empty"),
        "junk.mp4": (b"not a video" * 100, "cannot open"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(VideoFileError, match=words) as info:
            VideoFileSource(path)
        assert str(path) in str(info.value)
        assert isinstance(info.value, BadInput) and isinstance(info.value, SourceError)
    with pytest.raises(VideoFileError, match="not a regular file"):
        VideoFileSource(tmp_path)


# ---- demo source --------------------------------------------------------------------------
def test_demo_source_paces_frames_on_the_clock_and_knows_its_truth():
    clock = FakeClock()
    demo = DemoSource(320, 240, 15, clock=clock, duration=8, seed=5, lores=(160, 120))
    frames = list(demo.frames())
    assert len(frames) == 120 and demo.stats.frames == 120 and demo.stats.dropped == 0
    assert [f.t for f in frames[:3]] == pytest.approx([0, 1 / 15, 2 / 15])
    assert clock.now() == pytest.approx(119 / 15)
    assert frames[0].image.shape == (240, 320, 3)
    assert frames[0].meta["lores"].shape[:2] == (120, 160)
    truth = demo.truth()
    assert len(truth["frames"]) == 120 and truth["breaths"]
    assert {f["phase"] for f in truth["frames"]} <= {"inhale", "exhale"}
    assert np.ptp([f.image.astype(np.int16) for f in frames[:30]], axis=0).max() > 10


def test_demo_follows_a_pattern_with_holds():
    demo = DemoSource(160, 120, 10, clock=FakeClock(), pattern=(4, 4, 4, 4), duration=40)
    for _ in demo.frames():
        pass
    truth = demo.truth()
    assert len(truth["holds"]) >= 3
    rates = [f["rate_bpm"] for f in truth["frames"][200:] if f["rate_bpm"]]
    assert np.median(rates) == pytest.approx(3.75, rel=0.05)
    with pytest.raises(BadInput, match="four phase seconds"):
        DemoSource(160, 120, 10, clock=FakeClock(), pattern=(4, 4))


def test_demo_drops_frames_when_the_consumer_falls_behind():
    clock = FakeClock()
    demo = DemoSource(160, 120, 10, clock=clock, duration=5)
    seen = []
    for frame in demo.frames():
        seen.append(frame.index)
        if frame.index == 10:
            clock.advance(1.0)  # a one-second stall
    assert demo.stats.dropped >= 9
    assert len(seen) + demo.stats.dropped == 50


def test_demo_switches_pattern_mid_run():
    demo = DemoSource(160, 120, 10, clock=FakeClock(), duration=60)
    it = demo.frames()
    for _ in range(200):
        next(it)
    demo.set_pattern((4, 7, 8, 0))
    for _ in it:
        pass
    truth = demo.truth()
    assert not [h for h in truth["holds"] if h["start"] < 20]
    assert any(h["end"] - h["start"] > 5 for h in truth["holds"])


# ---- factory and picamera2 ---------------------------------------------------------------
def test_source_specs_parse_and_bad_ones_are_refused():
    assert parse_spec("auto") == ("auto", None)
    assert parse_spec("opencv:2") == ("opencv", 2)
    assert parse_spec("file:/tmp/a b.mp4") == ("file", "/tmp/a b.mp4")
    assert parse_spec(" demo ") == ("demo", None)
    for bad in ["", "webcam", "opencv:x", "opencv:-1", "file:", "picamera3"]:
        with pytest.raises(BadInput, match="allowed: auto, picamera2"):
            parse_spec(bad)


def test_open_source_opens_demo_and_files_and_names_missing_cameras(tmp_path):
    demo = open_source("demo", 160, 120, 10, lores=(80, 60), demo_pattern=(4, 0, 4, 0),
                       clock=FakeClock())
    assert isinstance(demo, DemoSource)
    assert next(demo.frames()).meta["lores"].shape == (60, 80, 3)
    with pytest.raises(VideoFileError, match="not found"):
        open_source(f"file:{tmp_path}/nope.mp4", 640, 480, 30)
    with pytest.raises(SourceError, match="opencv:7: no camera at index 7"):
        open_source("opencv:7", 640, 480, 30)


def test_picamera2_missing_gives_an_install_hint():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(SourceError, match="apt install python3-picamera2"):
        open_source("picamera2", 640, 480, 30)


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="a real camera is attached")
def test_auto_without_a_camera_says_so_and_never_shows_the_demo_person():
    with pytest.raises(SourceError) as err:
        open_source("auto", 160, 120, 10, clock=FakeClock())
    message = str(err.value)
    assert message.startswith("no camera found") and "picamera2" in message
    assert "USB camera" in message and "--demo" in message


def test_lores_yuv420_with_padded_rows_converts_to_bgr():
    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (0, 0), 2)
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    w, h, stride = 64, 48, 96
    y, u, v = i420[: w * h], i420[w * h: w * h * 5 // 4], i420[w * h * 5 // 4:]
    padded = np.zeros(h * 3 // 2 * stride, np.uint8)
    padded[: h * stride].reshape(h, stride)[:, :w] = y.reshape(h, w)
    us = h * stride
    padded[us: us + h // 2 * stride // 2].reshape(h // 2, stride // 2)[:, : w // 2] = \
        u.reshape(h // 2, w // 2)
    vs = us + h // 2 * stride // 2
    padded[vs: vs + h // 2 * stride // 2].reshape(h // 2, stride // 2)[:, : w // 2] = \
        v.reshape(h // 2, w // 2)
    out = yuv420_to_bgr(padded.reshape(h * 3 // 2, stride), w, h)
    direct = yuv420_to_bgr(i420.reshape(h * 3 // 2, w), w, h)
    assert out.shape == (48, 64, 3)
    assert np.array_equal(out, direct)
    assert np.abs(out.astype(int) - bgr).mean() < 4


# ---- suites ---------------------------------------------------------------------------------
def test_suites_cover_the_conditions_and_vary_with_the_seed():
    quick = SUITES["quick"](0)
    assert 6 <= len(quick) <= 10 and all(20 <= s.duration <= 45 for s in quick)
    full = {s.name: s for s in SUITES["full"](0)}
    for needed in ["free_06", "free_40", "hold_25", "empty", "enter_leave", "fidget", "shake",
                   "small_person", "fps15_18", "fps24_10", "paced_box", "paced_relax_478",
                   "paced_coherent", "head_turn", "shifting", "lighting_flicker"]:
        assert needed in full
    assert {s.person.photo for s in full.values()} == {"astronaut", "grace_hopper"}
    other = {s.name: s for s in SUITES["full"](1)}
    assert other["free_12"].person != full["free_12"].person
    assert other["free_12"].breathing.blocks == full["free_12"].breathing.blocks


def test_causal_rate_is_smooth_known_only_from_past_breaths_and_absent_in_holds():
    spec = ScenarioSpec(name="causal", duration=80, fps=10,
                        breathing=BreathingSpec(blocks=[free(30, 15), hold(25), free(25, 15)]))
    truth = Scenario(spec).truth(np.arange(800) / 10)
    rates = causal_rate(truth, breaths=4)
    first = truth["breaths"][4]["inhale_start"]
    assert all(r is None for r, f in zip(rates, truth["frames"], strict=True)
               if f["t"] < first)
    before_hold = [r for r, f in zip(rates, truth["frames"], strict=True) if 20 < f["t"] < 30]
    assert np.median(before_hold) == pytest.approx(15, rel=0.1)
    hold_start = truth["holds"][0]["start"]
    held = [r for r, f in zip(rates, truth["frames"], strict=True)
            if hold_start + 10 < f["t"] < hold_start + 35]
    assert all(r is None for r in held)  # during the hold, and while the window spans it


def test_quick_scenario_truth_matches_its_conditions():
    specs = {s.name: s for s in SUITES["quick"](0)}
    empty = Scenario(specs["empty"]).truth(np.arange(0, 20, 1 / 30))
    assert not any(f["present"] for f in empty["frames"]) and not empty["breaths"]
    held = Scenario(specs["hold_25"]).truth(np.arange(0, 45, 1 / 30))
    assert [round(h["end"] - h["start"]) for h in held["holds"]] == [25]
    box = Scenario(specs["box"]).truth(np.arange(0, 36, 1 / 30))
    assert all(h["end"] - h["start"] >= HOLD_MIN_S for h in box["holds"]) and box["holds"]


def test_make_test_videos_script_lists_the_suite():
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "scripts" / "make-test-videos"
    out = subprocess.run([sys.executable, str(script), "--list", "--suite", "quick"],
                         capture_output=True, text=True, check=True).stdout
    assert "hold_25" in out and "empty" in out


def test_a_long_running_demo_keeps_only_recent_truth_and_renders_the_same():
    """The live demo runs for months: it forgets breaths and frame times older than
    ``truth_s``, and what it renders does not change for it."""
    short = DemoSource(160, 120, 5, clock=FakeClock(), duration=120, truth_s=20, seed=3)
    long = DemoSource(160, 120, 5, clock=FakeClock(), duration=120, truth_s=600, seed=3)
    for a, b in zip(short.frames(), long.frames(), strict=True):
        assert np.array_equal(a.image, b.image), f"frame {a.index} differs"
    truth = short.truth()
    assert [f["t"] for f in truth["frames"]] == pytest.approx([100 + i / 5 for i in range(100)])
    assert len(short.scenario.plan.breaths) < 12 < len(long.scenario.plan.breaths)
    assert truth["frames"] == long.truth()["frames"][-100:]
