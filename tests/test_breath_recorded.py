"""Real breathing: a respiration recording drives the estimator (signal level) and the synthetic
person (video level, real landmark models).

The excerpt in ``tests/data`` (90 s of BIDMC record 07, ODC-By 1.0, see its README) always runs;
the tests that need the full development records skip, saying why, when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.errors import SourceError
from device.bench.accuracy import analyse_clip, clip_for, score_clip
from device.breath.estimator import BreathEstimator, EstimatorSettings
from device.breath.scoring import score_breaths, score_phase
from device.simulator.recorded import (
    DATA_ENV,
    RecordedPlan,
    RecordingSpec,
    available_records,
    default_data_dir,
    load_resp,
)
from device.simulator.synth import ScenarioSpec

EXCERPT = Path(__file__).parent / "data" / "bidmc_07_resp_excerpt.csv"
RIPPLING = Path(__file__).parent / "data" / "bidmc_04_resp_excerpt.csv"


def replay(plan: RecordedPlan, duration: float, fps: float = 30.0, px: float = 3.0,
           noise: float = 0.05, seed: int = 0) -> tuple[list[dict], list[dict], dict]:
    """The plan's chest movement (+ white noise) through the estimator, as the front end
    would feed it; returns (estimated frames, estimated breaths, truth)."""
    t = np.arange(int(duration * fps)) / fps
    x = px * (plan.volume(t) - plan.volume(t).min()) / 0.35
    x = x + np.random.default_rng(seed).normal(0, noise, len(x))
    est = BreathEstimator(fps, EstimatorSettings(remove_steps=False))
    frames = []
    for ti, xi in zip(t, x, strict=True):
        r = est.update(float(ti), float(xi), True)
        frames.append({"t": float(ti), "phase": r.phase, "rate_bpm": r.rate_bpm})
    phase, rate = plan.phase(t), plan.rate(t)
    truth = {"frames": [{"t": float(a), "phase": p, "rate_bpm": None if np.isnan(r) else r}
                        for a, p, r in zip(t, phase, rate, strict=True)],
             "breaths": [{"inhale_start": b.inhale_start} for b in plan.breaths_between(0, t[-1])]}
    return frames, est.summary()["breaths"], truth


def test_the_resp_column_is_found_by_name_wherever_it_is(tmp_path) -> None:
    path = tmp_path / "rec_Signals.csv"
    t = np.arange(500) / 125.0
    rows = "\n".join(f"{a:.3f},{np.sin(a):.4f},{np.cos(a):.4f},1" for a in t)
    path.write_text("Time [s], PLETH, RESP, II\n" + rows + "\n")
    x, fs = load_resp(str(path))
    assert fs == pytest.approx(125.0)
    assert x[100] == pytest.approx(np.cos(t[100]), abs=1e-4)  # the third column, not the second
    with pytest.raises(SourceError, match="no 'CO2' column .*header: Time \\[s\\], PLETH, RESP"):
        load_resp(str(path), "CO2")
    with pytest.raises(SourceError, match="cannot read the recording"):
        load_resp(str(tmp_path / "missing.csv"))


def test_the_data_folder_comes_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path
    assert available_records() == []
    (tmp_path / "bidmc_99_Signals.csv").write_text("Time [s], RESP\n")
    assert [p.name for p in available_records()] == ["bidmc_99_Signals.csv"]


@pytest.mark.parametrize(("speed", "jumps"), [(1.0, 0.0), (0.8, 0.0), (0.7, 0.5), (1.0, 0.5)])
def test_real_breathing_phase_follows_the_breath_not_the_ripple(speed: float,
                                                                jumps: float) -> None:
    """The recording keeps its cardiac ripple at its own pace; slowed down, the breaths get
    long, rippling end-of-exhale plateaus of varying length; with depth jumps the breaths
    suddenly get deeper or shallower. Phase and breaths still follow the breathing."""
    plan = RecordedPlan(RecordingSpec(path=str(EXCERPT), speed=speed, depth_jumps=jumps),
                        60.0, seed=3)
    frames, breaths, truth = replay(plan, 60.0)
    phase = score_phase(truth["frames"], frames, settle_s=10.0)["agreement"]
    found = score_breaths(truth["breaths"], breaths, t_min=10.0)
    assert phase >= 0.88, phase
    assert found["f1"] >= 0.9, found


def test_the_rate_shown_on_real_breathing_is_the_breathing_rate() -> None:
    plan = RecordedPlan(RecordingSpec(path=str(EXCERPT)), 60.0)
    frames, _, truth = replay(plan, 60.0)
    starts = [b["inhale_start"] for b in truth["breaths"]]
    steady = 60.0 * (len(starts) - 1) / (starts[-1] - starts[0])
    shown = [f["rate_bpm"] for f in frames if f["t"] >= 20.0]
    assert np.mean([r is not None for r in shown]) >= 0.9
    errors = [abs(r - steady) for r in shown if r is not None]
    assert np.median(errors) <= 1.0
    assert np.mean([e <= 1.5 for e in errors]) >= 0.85


def test_a_real_recording_drives_a_video_that_analyze_reads(tmp_path) -> None:
    """60 s of real breathing rendered at 15 fps and read back by the whole pipeline."""
    from device.vision.factory import make_backend

    spec = ScenarioSpec.model_validate({
        "name": "recorded_07", "duration": 60.0, "fps": 15.0, "seed": 11,
        "person": {"photo": "astronaut", "amplitude_px": 2.5},
        "nuisances": {"lighting_drift": 0.15, "cardiac_px": 0.2},
        "recording": {"path": str(EXCERPT)}})
    path, truth = clip_for(spec, tmp_path)
    backend = make_backend("litert")
    try:
        row = score_clip(truth, analyse_clip(path, backend))
    finally:
        backend.close()
    assert row["coverage"] >= 0.8, row
    assert row["mae_window"] <= 1.0, row
    assert row["phase"] >= 0.85, row
    assert row["breath_f1"] >= 0.85, row


def test_the_truth_matches_the_hand_annotated_breaths() -> None:
    """On every development record, the turning points the truth comes from are the breaths
    the two annotators marked (they marked peaks)."""
    records = available_records()
    if not records:
        pytest.skip(f"no BIDMC records in {default_data_dir()} (set {DATA_ENV})")
    for path in records:
        plan = RecordedPlan(RecordingSpec(path=str(path)), 440.0)
        marks = np.genfromtxt(str(path).replace("_Signals", "_Breaths"), delimiter=",",
                              skip_header=1)[:, 0]
        marks = marks[np.isfinite(marks)] / 125.0
        peaks = [{"inhale_start": b.peak_time} for b in plan.breaths]
        got = score_breaths([{"inhale_start": m} for m in marks], peaks, t_min=10, t_max=430)
        assert got["f1"] >= 0.95, (path.name, got)


def test_an_inhale_after_a_creeping_pause_is_dated_where_the_rise_began() -> None:
    """Played at half speed, record 07's end-of-exhale pauses last seconds and creep upwards
    under the ripple before the inhale proper. The breath starts where the signal left the
    bottom for good (as the truth dates it), not when the tracker let go of the pause."""
    plan = RecordedPlan(RecordingSpec(path=str(EXCERPT), speed=0.5), 80.0)
    for seed in (0, 1):
        _, breaths, truth = replay(plan, 80.0, seed=seed)
        found = score_breaths(truth["breaths"], breaths, t_min=10.0)
        starts = np.array([b["inhale_start"] for b in breaths])
        lag = [float(starts[np.argmin(abs(starts - b["inhale_start"]))] - b["inhale_start"])
               for b in truth["breaths"] if b["inhale_start"] >= 10.0]
        assert found["f1"] >= 0.8, found
        assert abs(np.median(lag)) <= 0.6, lag
        assert np.mean(np.array(lag) > 0.7) <= 0.1, lag


@pytest.mark.parametrize(("start", "speed"), [(0.0, 0.5), (20.0, 0.6)])
def test_the_flick_in_a_slow_breathers_pauses_makes_no_breaths(start: float,
                                                                speed: float) -> None:
    """Record 04 breathes in quick strokes with long end-of-exhale pauses, and each exhale
    ends in a sharp flick (plus heartbeat ripple) a third of a breath deep. Played slower, the
    pauses get longer and the flicks do not. They must neither count as breaths nor make the
    rate look unsteady (the estimator once counted 9-10 false breaths here and showed a rate
    on under 60 % of the frames)."""
    plan = RecordedPlan(RecordingSpec(path=str(RIPPLING), start=start, speed=speed), 90.0)
    frames, breaths, truth = replay(plan, 90.0)
    found = score_breaths(truth["breaths"], breaths, t_min=10.0)
    shown = np.mean([f["rate_bpm"] is not None for f in frames if f["t"] >= 20.0])
    assert found["fp"] <= 6, found
    assert shown >= 0.8, shown
