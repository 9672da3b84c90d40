"""The causal breath estimator on synthetic displacement signals with exact ground truth.

Scores use ``device.breath.scoring`` (the same functions that score full videos). Targets from
issue 3: rate MAE ≤ 0.5 bpm, ≥ 95 % of frames within 1 bpm, a reading on ≥ 90 % of frames
after 20 s, inhale/exhale agreement ≥ 92 % within 0.5 s, breath F1 ≥ 0.95, empty scene a rate
on ≤ 2 % of frames, a 25 s hold: no breath counted and no rate after ~12 s of it.

The rate's error is measured against what a causal observer can know, the mean of the last
four whole breaths (``known_rate``; the video benchmark's MAE(k)): the signals jitter each
breath's length by 5 %, so at 40 breaths/min four real breaths average anywhere in ±2 of the
nominal rate. Coverage is judged against the nominal truth (a rate wherever one should show),
and a separate test holds the shown rate to the nominal rate over a steady stretch.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
from scipy import signal

from device.breath import scoring
from device.breath import testsignals as ts
from device.breath.estimator import BreathEstimator, EstimatorSettings
from device.breath.filters import LowPass


def feed(est: BreathEstimator, sig: ts.Signal, start: int = 0, stop: int | None = None,
         events: list | None = None) -> list[dict]:
    """Run samples [start, stop) through ``est``; return per-frame dicts (scoring format)."""
    out = []
    for i in range(start, len(sig.t) if stop is None else stop):
        x = sig.x[i]
        r = est.update(float(sig.t[i]), None if np.isnan(x) else float(x), bool(sig.valid[i]),
                       float(sig.motion[i]))
        out.append({"t": r.t, "phase": r.phase, "rate_bpm": r.rate_bpm, "quality": r.quality,
                    "present": r.present, "still": r.still, "displacement": r.displacement})
        if events is not None:
            events.extend(est.pop_events())
    return out


@functools.cache
def run(name: str, fps: float, seed: int = 0):
    sig = ts.scenario(name, fps=fps, seed=seed)
    est = BreathEstimator(fps)
    events: list = []
    frames = feed(est, sig, events=events)
    return sig, est, frames, events


def known_rate(sig: ts.Signal, breaths: int = 4, max_cycle_s: float = 24.0) -> list[dict]:
    """Truth frames whose rate is the mean of the last ``breaths`` whole cycles ended by then.

    None where the nominal truth has none (holds, nobody there), before enough breaths, while
    a breath is far overdue, and when the window reaches into a stretch the camera could not
    see (no person, body motion): nobody can know the breaths in there.
    """
    starts = np.array([b["inhale_start"] for b in sig.breaths])
    blind_t = sig.t[~sig.valid | (sig.motion > 0)]
    out = []
    for f in sig.frames:
        t = f["t"]
        done = starts[starts <= t]
        rate = None
        if f["rate_bpm"] is not None and len(done) > breaths:
            window = done[-(breaths + 1):]
            mean = (window[-1] - window[0]) / breaths
            seen = not ((blind_t >= window[0]) & (blind_t <= t)).any()
            if seen and np.diff(window).max() <= max_cycle_s and (
                    t - window[-1] <= min(2.5 * mean, max_cycle_s)):
                rate = 60.0 / mean
        out.append(dict(f, rate_bpm=rate))
    return out


def scores(name: str, fps: float, seed: int = 0) -> dict:
    sig, est, frames, _ = run(name, fps, seed)
    r = scoring.score_rate(known_rate(sig), frames)
    shown = scoring.score_rate(sig.frames, frames)
    p = scoring.score_phase(sig.frames, frames)
    b = scoring.score_breaths(sig.breaths, est.summary()["breaths"], t_min=2.0,
                              t_max=float(sig.t[-1]) - 2.0)
    return {"mae": r["mae"], "within_1": r["within_1"], "coverage": shown["coverage"],
            "phase": p["agreement"], "f1": b["f1"]}


BREATHING = ["free6", "free12", "free20", "free30", "free40", "box", "478", "4683", "coherent",
             "step12to20", "hold25", "hold60", "drift", "steps", "invalid", "moving", "colored",
             "noisy", "shallow"]
# Physics-limited corners get floors instead of the targets: SNR 5 at 15 fps ("noisy",
# "shallow"), 4-7-8's 8 s exhale that starts gently after a 7 s hold, a rate that jumps
# (the old periods must be outvoted), deliberate no-reading stretches ("moving"), and the
# 19–21 s patterns whose first rate needs a full breath after the first turn (coverage).
FLOORS = {"mae": 0.6, "within_1": 0.85, "coverage": 0.8, "phase": 0.8, "f1": 0.9}
OVERRIDES = {"step12to20": {"mae": 0.8}}
TARGET_SCENARIOS = ["free6", "free12", "free20", "box", "coherent", "hold25", "drift", "steps",
                    "invalid"]


@pytest.mark.parametrize("fps", [15, 30])
@pytest.mark.parametrize("name", BREATHING)
def test_every_scenario_clears_its_floor(name: str, fps: int) -> None:
    s = scores(name, fps)
    floor = FLOORS | OVERRIDES.get(name, {})
    assert s["mae"] <= floor["mae"], s
    assert s["within_1"] >= floor["within_1"], s
    assert s["coverage"] >= floor["coverage"], s
    assert s["phase"] >= floor["phase"], s
    assert s["f1"] >= floor["f1"], s


@pytest.mark.parametrize("fps", [15, 30])
@pytest.mark.parametrize("name", TARGET_SCENARIOS)
def test_ordinary_conditions_meet_the_issue_targets(name: str, fps: int) -> None:
    s = scores(name, fps)
    assert s["mae"] <= 0.5, s
    assert s["within_1"] >= 0.96, s
    assert s["coverage"] >= 0.92, s
    assert s["phase"] >= 0.92, s
    assert s["f1"] >= 0.97, s


def test_whole_suite_meets_the_targets_on_average() -> None:
    rows = [scores(n, f) for n in BREATHING for f in (15, 30)]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    assert mean["mae"] <= 0.4, mean
    assert mean["within_1"] >= 0.96, mean
    assert mean["coverage"] >= 0.94, mean
    assert mean["phase"] >= 0.92, mean
    assert mean["f1"] >= 0.98, mean


def test_other_seeds_hold_up_too() -> None:
    for name in ("box", "478", "free12", "hold25"):
        for seed in (1, 2):
            s = scores(name, 30, seed)
            assert s["f1"] >= 0.95 and s["mae"] <= 0.5 and s["phase"] >= 0.85, (name, seed, s)


# ---- holds ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,length", [("hold25", 25.0), ("hold60", 60.0)])
def test_a_breath_hold_is_a_hold_not_a_breath_and_hides_the_rate(name: str, length: float) -> None:
    sig, est, frames, _ = run(name, 30)
    truth = max(sig.holds, key=lambda h: h["end"] - h["start"])
    assert truth["end"] - truth["start"] == pytest.approx(length, abs=1.0)
    inside = [b for b in est.summary()["breaths"]
              if truth["start"] + 1.0 < b["inhale_start"] < truth["end"] - 1.0]
    assert inside == []  # no breath counted during the hold
    late = [f for f in frames if truth["start"] + 12.0 <= f["t"] < truth["end"]]
    assert all(f["rate_bpm"] is None for f in late)
    held = [f for f in frames if truth["start"] + 3.0 <= f["t"] < truth["end"] - 1.0]
    assert np.mean([f["phase"] == "hold" for f in held]) > 0.95
    assert all(f["present"] for f in held)  # a hold is not an absent person
    found = [h for h in est.holds() if h["start"] < truth["end"] and h["end"] > truth["start"]]
    assert len(found) == 1
    assert found[0]["start"] == pytest.approx(truth["start"], abs=1.0)
    assert found[0]["end"] == pytest.approx(truth["end"], abs=1.0)
    after = [f for f in frames if truth["end"] + 15.0 <= f["t"]]
    assert np.mean([f["rate_bpm"] is not None for f in after]) > 0.9  # back after the hold


def test_box_breathing_holds_are_reported_with_their_times() -> None:
    sig, est, _, events = run("box", 30)
    kinds = {e.kind for e in events}
    assert kinds == {"inhale_start", "exhale_start", "hold_start", "hold_end"}
    truth = [h for h in sig.holds if h["start"] > 10.0]
    found = est.holds()
    for h in truth:
        match = [f for f in found if abs(f["end"] - h["end"]) < 0.8]
        assert match, h
        assert match[0]["start"] == pytest.approx(h["start"], abs=1.5)


def test_slow_pattern_shows_a_rate_after_one_full_cycle() -> None:
    sig, est, frames, events = run("478", 30)
    first_event = min(e.t for e in events if e.kind in ("inhale_start", "exhale_start"))
    first_rate = next(f["t"] for f in frames if f["rate_bpm"] is not None)
    assert first_rate <= first_event + 19.0 + 4.0  # one period, then the turn's confirmation
    assert next(f["rate_bpm"] for f in frames if f["rate_bpm"] is not None) == pytest.approx(
        60 / 19, abs=0.5)


@pytest.mark.parametrize("name", ["free6", "free12", "free20", "free30", "free40"])
def test_the_rate_centres_on_the_breathing_rate(name: str) -> None:
    """Averaged over a steady minute the shown rate is the nominal one, and never far off."""
    sig, _, frames, _ = run(name, 30)
    nominal = sig.frames[-1]["rate_bpm"]
    late = [f["rate_bpm"] for f in frames if f["t"] >= 40.0 and f["rate_bpm"] is not None]
    assert abs(np.median(late) - nominal) <= 0.05 * nominal
    assert np.mean([abs(r - nominal) <= 0.1 * nominal for r in late]) >= 0.95


def test_rate_follows_a_change_within_a_few_breaths() -> None:
    _, _, frames, _ = run("step12to20", 30)
    change = 60.0
    before = [f["rate_bpm"] for f in frames if change - 15 <= f["t"] < change]
    after = [f["rate_bpm"] for f in frames if change + 10 <= f["t"]]
    assert np.median(before) == pytest.approx(12, abs=0.6)
    # (> 0.97 before breaths were dated where the signal leaves a turn; one long breath at
    # 105 s now reads 18.95 for 1.5 s)
    assert np.mean([abs(r - 20) <= 1 for r in after]) > 0.95
    assert np.median(after) == pytest.approx(20, abs=0.3)


# ---- no reading -------------------------------------------------------------------------

@pytest.mark.parametrize("fps", [15, 30])
@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_pure_noise_shows_no_rate(fps: int, noise: float) -> None:
    rng = np.random.default_rng(7)
    n = int(120 * fps)
    x = noise * rng.standard_normal(n)
    est = BreathEstimator(fps)
    rates = [est.update(i / fps, float(x[i]), True).rate_bpm for i in range(n)]
    assert np.mean([r is not None for r in rates]) <= 0.01


def test_the_rate_returns_soon_after_a_long_hold_that_creeps() -> None:
    """A 60 s hold with slow drift is seen as a few holds with creeping between them; the
    breathing after it must not be judged against that stillness (its first repeat score
    would be near 0 and hide the rate for a breath or two)."""
    shown = []
    for seed in range(4):
        sig = ts.scenario("hold60", fps=15, seed=seed, drift=1.0)
        est = BreathEstimator(15)
        end = max(h["end"] for h in sig.holds)
        rates = [(t, est.update(float(t), float(x), True).rate_bpm)
                 for t, x in zip(sig.t, sig.x, strict=True)]
        shown.append(np.mean([r is not None for t, r in rates if end + 5 <= t <= end + 30]))
    assert np.mean(shown) >= 0.9, shown  # it was 0.75: 0.69, 0.54, 0.76, 1.0


def test_tracking_jitter_and_slow_wander_rarely_show_a_rate() -> None:
    """Band-limited jitter can swing like shallow irregular breathing; it must stay rare.

    (Known weak spot: 1 Hz jitter of 0.2 px, or a random walk, shows a rate on ~4–5 % of
    frames on average — ≤ 2 % needs the front end to say "no person" in an empty scene.)
    """
    fps, n = 15, 120 * 15
    shown = {"jitter": [], "walk": []}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        jitter = signal.sosfilt(signal.butter(1, 1.0, fs=fps, output="sos"),
                                rng.standard_normal(n))
        walk = 0.1 * rng.standard_normal(n) + np.cumsum(0.02 * rng.standard_normal(n))
        for kind, x in (("jitter", 0.2 * jitter / jitter.std()), ("walk", walk)):
            est = BreathEstimator(fps)
            rates = [est.update(i / fps, float(x[i]), True).rate_bpm for i in range(n)]
            shown[kind].append(np.mean([r is not None for r in rates]))
    assert np.mean(shown["jitter"]) <= 0.1, shown
    assert np.mean(shown["walk"]) <= 0.06, shown


def test_no_person_means_no_reading() -> None:
    sig, _, frames, _ = run("invalid", 30)
    gone = [f for f, ok in zip(frames, sig.valid, strict=True) if not ok]
    assert gone and all(f["phase"] is None and f["rate_bpm"] is None and f["quality"] == 0.0
                        and not f["present"] for f in gone)
    est = BreathEstimator(30)
    empty = [est.update(i / 30, None, False) for i in range(600)]
    assert all(r.rate_bpm is None and r.phase is None for r in empty)
    assert est.summary()["person_found"] is False
    assert est.summary()["rate_bpm"] is None


def test_body_motion_withholds_the_reading_and_counts_against_stillness() -> None:
    sig, est, frames, _ = run("moving", 30)
    moving = [f for f, m in zip(frames, sig.motion, strict=True) if m >= 1.0]
    assert moving and all(f["rate_bpm"] is None and not f["still"] for f in moving)
    summary = est.summary()
    assert 0.9 < summary["stillness"] < 1.0
    back = [f for f in frames if 54.0 + 12.0 <= f["t"] < 80.0]
    assert all(f["rate_bpm"] is not None for f in back)


def test_residual_steps_do_not_make_breaths() -> None:
    sig, est, _, _ = run("steps", 30)
    b = scoring.score_breaths(sig.breaths, est.summary()["breaths"], t_min=2.0, t_max=118.0)
    assert b["fp"] == 0 and b["fn"] == 0


# ---- contract: causality, state, events, cost -------------------------------------------

def test_output_at_t_does_not_depend_on_later_samples() -> None:
    sig = ts.scenario("box", fps=15, seed=4)
    cut = len(sig.t) // 2
    base = feed(BreathEstimator(15), sig)
    changed = copy.deepcopy(sig)
    rng = np.random.default_rng(1)
    changed.x[cut:] = rng.normal(0, 5, len(sig.t) - cut)  # a wholly different future
    other = feed(BreathEstimator(15), changed)
    assert other[:cut] == base[:cut]
    assert other[cut:] != base[cut:]


def test_chunked_processing_equals_one_go() -> None:
    sig = ts.scenario("hold25", fps=15, seed=2)
    one_events: list = []
    one = BreathEstimator(15)
    whole = feed(one, sig, events=one_events)
    est = BreathEstimator(15)
    parts: list = []
    chunk_events: list = []
    bounds = [0, 137, 500, 501, 1100, len(sig.t)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        est = copy.deepcopy(est)  # the state is all in the instance: a copy carries on
        parts += feed(est, sig, a, b, events=chunk_events)
    assert parts == whole
    assert chunk_events == one_events
    assert est.summary() == one.summary()


def test_lowpass_step_matches_scipy_sosfilt_in_any_chunking() -> None:
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal(700))
    ref, _ = signal.sosfilt(LowPass(1.1, 30.0).sos, x, zi=signal.sosfilt_zi(
        LowPass(1.1, 30.0).sos) * x[0])
    f = LowPass(1.1, 30.0)
    f.reset(float(x[0]))
    stepped = [f.step(float(v))[0] for v in x[:300]]
    batched = list(f.process(x[300:650]))
    stepped += batched + [f.step(float(v))[0] for v in x[650:]]
    np.testing.assert_allclose(stepped, ref, rtol=1e-9, atol=1e-9)


def test_events_are_dated_when_they_happened_and_match_the_breaths() -> None:
    _, est, _, events = run("free12", 30)
    assert all(e.t <= e.confirmed_at for e in events)
    assert [e.confirmed_at for e in events] == sorted(e.confirmed_at for e in events)
    starts = [e.t for e in events if e.kind == "inhale_start"]
    assert starts == [b["inhale_start"] for b in est.summary()["breaths"]]
    for b in est.summary()["breaths"]:
        if b["end"] is not None:
            assert b["inhale_start"] < b["exhale_start"] < b["end"]


def test_summary_has_the_analyze_fields() -> None:
    _, est, frames, _ = run("free12", 30)
    s = est.summary()
    assert set(s) >= {"rate_bpm", "breath_count", "breaths", "holds", "stillness", "coverage",
                      "person_found"}
    assert s["rate_bpm"] == pytest.approx(12, abs=0.5)
    assert s["breath_count"] == pytest.approx(24, abs=2)
    assert s["coverage"] == pytest.approx(np.mean([f["rate_bpm"] is not None for f in frames]))
    assert s["stillness"] == 1.0 and s["person_found"] is True


def test_a_device_that_runs_for_months_keeps_only_the_recent_breaths_and_holds() -> None:
    """The summary's lists are capped (``history``); what is kept is the newest, and the
    readings are the same as with everything kept."""
    sig = ts.scenario("box", fps=15, seed=1)  # 160 s: 10 breaths, 20 holds
    everything = BreathEstimator(15, EstimatorSettings(history=None))
    capped = BreathEstimator(15, EstimatorSettings(history=4))
    assert feed(capped, sig) == feed(everything, sig)
    full, short = everything.summary(), capped.summary()
    assert len(full["breaths"]) > 4 and len(full["holds"]) > 4
    assert short["breaths"] == full["breaths"][-4:]
    assert short["holds"] == full["holds"][-4:]
    assert len(capped.rate.session_periods) == 4 < len(everything.rate.session_periods)


def test_displacement_is_the_cleaned_signal() -> None:
    sig, _, frames, _ = run("free12", 30)
    y = np.array([f["displacement"] for f in frames[60:]])
    clean = np.array(sig.x[60:])
    assert np.std(np.diff(y)) < 0.5 * np.std(np.diff(clean))  # smoother
    assert np.corrcoef(y[10:], clean[:-10])[0, 1] > 0.9  # same breathing, slightly later


def test_bad_fps_is_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="fps=0"):
        BreathEstimator(0)


# ---- scoring ------------------------------------------------------------------------------

def test_score_rate_counts_coverage_error_and_settling() -> None:
    truth = [{"t": t, "phase": None, "rate_bpm": 12.0} for t in range(40)]
    est = [{"t": t, "phase": None, "rate_bpm": None if t < 25 else 12.0 + (t % 2) * 1.5}
           for t in range(40)]
    s = scoring.score_rate(truth, est, settle_s=20.0)
    assert s["scored"] == 20 and s["coverage"] == pytest.approx(15 / 20)
    assert s["mae"] == pytest.approx(np.mean([(t % 2) * 1.5 for t in range(25, 40)]))
    assert s["within_1"] == pytest.approx(7 / 15)


def test_score_phase_allows_the_lag_and_no_more() -> None:
    truth = [{"t": i / 10, "phase": "inhale" if i < 50 else "exhale", "rate_bpm": None}
             for i in range(100)]
    late = [{"t": i / 10, "phase": "inhale" if i < 54 else "exhale"} for i in range(100)]
    later = [{"t": i / 10, "phase": "inhale" if i < 58 else "exhale"} for i in range(100)]
    assert scoring.score_phase(truth, late)["agreement"] == 1.0
    assert scoring.score_phase(truth, later)["agreement"] == pytest.approx(0.97)


def test_score_breaths_pairs_one_to_one_within_tolerance() -> None:
    truth = [{"inhale_start": s, "exhale_start": None, "end": None} for s in (5, 10, 15, 20)]
    est = [{"inhale_start": s, "exhale_start": None, "end": None} for s in (5.3, 5.6, 10.2, 17)]
    s = scoring.score_breaths(truth, est, tol_s=1.0)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 2)
    assert s["f1"] == pytest.approx(0.5)


@pytest.mark.parametrize("cutoff, fs", [(0.3, 15.0), (1.1, 30.0), (2.5, 24.0), (6.0, 29.97)])
def test_butterworth_design_and_state_equal_scipy(cutoff: float, fs: float) -> None:
    from scipy import signal

    from device.breath.filters import LowPass, butter2_sos, sos_zi

    sos = signal.butter(2, cutoff, fs=fs, output="sos")
    assert np.allclose(butter2_sos(cutoff, fs), sos, rtol=1e-12, atol=1e-15)
    assert np.allclose(sos_zi(sos), signal.sosfilt_zi(sos), rtol=1e-10, atol=1e-12)
    lp = LowPass(cutoff, fs)
    x = np.random.default_rng(1).normal(size=300).cumsum()
    lp.reset(x[0])
    stepped = [lp.step(float(v))[0] for v in x]
    expected, _ = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])
    assert np.allclose(stepped, expected, rtol=1e-9, atol=1e-9)
    assert np.allclose(lp._impulse(50), signal.sosfilt(sos, np.r_[1.0, np.zeros(49)]))


def test_a_creeping_pause_dates_the_breath_at_the_creep_and_the_period_at_the_hold_end() -> None:
    """6 breaths/min with 5 s end-of-exhale pauses whose last seconds creep up by 7 % of a
    breath before the inhale proper. The breath starts where the creep left the bottom (as
    the recordings' truth dates it); the period is measured from where the pause ended, a
    mark that does not jitter with how each pause happened to creep."""
    fps, rng = 15.0, np.random.default_rng(1)
    x = []
    for _ in range(15):
        t_creep = float(rng.uniform(0.5, 1.5))
        pause = np.arange(0, 5.0, 1 / fps)
        x += list(np.where(pause < t_creep, 0.0, 0.2 * (pause - t_creep) / (5.0 - t_creep)))
        u = np.arange(0, 2.5, 1 / fps) / 2.5
        x += list(0.2 + 2.8 * 0.5 * (1 - np.cos(np.pi * u)))
        x += list(1.5 * (1 + np.cos(np.pi * u)))
    x = np.array(x) + rng.normal(0, 0.02, len(x))
    est = BreathEstimator(fps)
    rates = [est.update(i / fps, float(v), True).rate_bpm for i, v in enumerate(x)]
    held = [e for e in est.strokes.extrema if e.kind == "trough" and e.held > 0]
    assert len(held) >= 3
    for e in held:
        inhale = 10.0 * round(e.t / 10.0) + 5.0  # the inhale proper starts 5 s into a cycle
        assert e.t <= e.period_t - 0.3, e  # the breath is dated at the creep, before ...
        assert abs(e.period_t - inhale) <= 0.5, e  # ... the period's mark, the pause's end
    shown = [r for i, r in enumerate(rates) if i / fps >= 60 and r is not None]
    assert shown and np.max(np.abs(np.array(shown) - 6.0)) <= 0.3


@pytest.mark.parametrize(("fps", "noise"), [(15.0, 0.03), (30.0, 0.05)])
def test_a_slow_smooth_breath_is_dated_between_its_vertex_and_its_departure(
        fps: float, noise: float) -> None:
    """Coherent breathing, 5.5 breaths/min, a smooth sine with no pause. Its inhale starts at
    the bottom (the test signals' truth) and leaves the bottom's 5 % band 0.78 s later (the
    recordings' truth); the estimate sits between the two, well within 1 s of either."""
    period = 60.0 / 5.5
    t = np.arange(int(120 * fps)) / fps
    x = 1.5 * (1 - np.cos(2 * np.pi * t / period))
    x = x + np.random.default_rng(0).normal(0, noise, len(t))
    est = BreathEstimator(fps, EstimatorSettings(remove_steps=False))
    for a, b in zip(t, x, strict=True):
        est.update(float(a), float(b), True)
    starts = np.array([b["inhale_start"] for b in est.summary()["breaths"]])
    lag = (starts + period / 2) % period - period / 2  # after the nearest bottom
    assert len(starts) >= 9
    assert 0.2 <= np.median(lag) <= 0.55, lag
    assert np.all((lag >= 0.0) & (lag <= 0.8)), lag
