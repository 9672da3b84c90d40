"""Accuracy of the whole breath pipeline over generated videos with exact ground truth.

Each scenario is rendered to an mp4 (cached by its spec), analysed exactly as ``breathe
analyze`` would, and scored against its truth with :mod:`device.breath.scoring`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from device.breath.analyze import Analysis, analyze_source
from device.breath.pipeline import BreathPipeline
from device.breath.scoring import rate_shown_fraction, score_breaths, score_phase, score_rate
from device.camera.opencv_source import VideoFileSource
from device.simulator.synth import ScenarioSpec, causal_rate, truth_path, write_video

SETTLE_S = 20.0  # the targets count rate coverage once ~20 s have passed
# Breaths are scored away from the clip's ends, as in the test-signal suite: an inhale that
# starts in the last moments cannot be confirmed by any causal method before the clip ends
# (it needs the rise), and the first turn of a clip has no whole breath in the truth.
EDGE_S = 2.0


def clip_for(spec: ScenarioSpec, folder: Path) -> tuple[Path, dict]:
    """The rendered clip and truth for ``spec``, re-rendered only when the spec changed."""
    digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:10]
    path = Path(folder) / f"{spec.name}-{digest}.mp4"
    if path.exists() and truth_path(path).exists():
        truth = json.loads(truth_path(path).read_text())
        if spec.recording is not None:  # cheap to recompute, and follows the truth's code
            from device.simulator.synth import Scenario

            truth = Scenario(spec).truth(np.arange(spec.frame_count) / spec.fps)
        return path, truth
    return path, write_video(spec, path)


def analyse_clip(path: Path, backend, settings=None) -> Analysis:
    """``breathe analyze`` on one clip, with the default settings unless told otherwise."""
    from common.config import Settings

    source = VideoFileSource(path)
    try:
        pipeline = BreathPipeline.from_settings(settings or Settings(), source.stats.fps,
                                                backend, whole_file=True)
        if hasattr(backend, "reset"):
            backend.reset()
        return analyze_source(source, pipeline, str(path))
    finally:
        source.close()


def analyse_textbook_clip(path: Path, backend) -> Analysis:
    """The textbook optical-flow method (``device.bench.textbook``) on one clip."""
    from device.bench.textbook import analyze_textbook

    source = VideoFileSource(path)
    try:
        if hasattr(backend, "reset"):
            backend.reset()
        return analyze_textbook(source, backend, str(path))
    finally:
        source.close()


def by_record(rows: dict[str, dict]) -> dict[str, dict]:
    """Rows of windows ``<record>_w<k>`` averaged per record (NaNs left out)."""
    groups: dict[str, list[dict]] = {}
    for name, row in rows.items():
        groups.setdefault(name.rsplit("_w", 1)[0], []).append(row)
    out = {}
    for rec, rs in groups.items():
        out[rec] = {}
        for key in rs[0]:
            vals = [r[key] for r in rs if isinstance(r.get(key), int | float)
                    and not math.isnan(r[key])]
            out[rec][key] = sum(vals) / len(vals) if vals else math.nan
    return out


def median_row(rows: dict[str, dict]) -> dict:
    """Per column, the median over rows (NaNs left out)."""
    keys = next(iter(rows.values())).keys() if rows else []
    out = {}
    for key in keys:
        vals = sorted(r[key] for r in rows.values() if isinstance(r.get(key), int | float)
                      and not math.isnan(r[key]))
        out[key] = float(np.median(vals)) if vals else math.nan
    return out


def score_clip(truth: dict, result: Analysis) -> dict:
    """One row of the accuracy table (NaN where a measure does not apply)."""
    est = result.frames
    tf = truth["frames"]
    rate = score_rate(tf, est, settle_s=SETTLE_S)
    # The same against the rate a causal observer could know (mean of the last 4 cycles).
    known = [dict(f, rate_bpm=r) for f, r in zip(tf, causal_rate(truth), strict=True)]
    rate_known = score_rate(known, est, settle_s=SETTLE_S)
    # Recordings: also against the rate over the whole steady window (its breaths / its span)
    steady = {"mae": math.nan, "within_1": math.nan}
    starts = [b["inhale_start"] for b in truth["breaths"]]
    if truth.get("scenario", {}).get("recording") and len(starts) > 2:
        window_rate = 60.0 * (len(starts) - 1) / (starts[-1] - starts[0])
        flat = [dict(f, rate_bpm=window_rate if f["rate_bpm"] is not None else None)
                for f in tf]
        steady = score_rate(flat, est, settle_s=SETTLE_S)
    phase = score_phase(tf, est)
    end = float(tf[-1]["t"]) if tf else 0.0
    breaths = score_breaths(truth["breaths"], result.breaths, t_min=EDGE_S, t_max=end - EDGE_S)
    present = [f for f in tf if f["present"]]
    row = {
        "rate_mae": rate["mae"], "within_1": rate["within_1"], "coverage": rate["coverage"],
        "mae_known": rate_known["mae"], "within_1_known": rate_known["within_1"],
        "mae_window": steady["mae"], "within_1_window": steady["within_1"],
        "phase": phase["agreement"], "breath_f1": breaths["f1"],
        "breaths_true": len(truth["breaths"]), "breaths_found": len(result.breaths),
        "empty_rate_shown": math.nan, "hold_rate_after_12s": math.nan,
        "fps": result.video["frames"] / result.wall_s if result.wall_s else math.nan,
    }
    if not present:
        row.update(rate_mae=math.nan, within_1=math.nan, coverage=math.nan, phase=math.nan,
                   mae_known=math.nan, within_1_known=math.nan, mae_window=math.nan,
                   within_1_window=math.nan,
                   breath_f1=math.nan, empty_rate_shown=rate_shown_fraction(est))
    holds = [h for h in truth.get("holds", []) if h["end"] - h["start"] >= 20]
    if holds:
        shown = [rate_shown_fraction(est, h["start"] + 12, h["end"]) for h in holds]
        row["hold_rate_after_12s"] = max(shown)
        inside = [b for b in result.breaths for h in holds
                  if h["start"] + 1 < b["inhale_start"] < h["end"] - 1]
        row["breaths_in_hold"] = len(inside)
    return row


def format_table(rows: dict[str, dict], footer: str = "MEAN") -> str:
    cols = [("rate_mae", "MAE", "{:.2f}"), ("within_1", "<=1bpm", "{:.0%}"),
            ("mae_known", "MAE(k)", "{:.2f}"), ("within_1_known", "<=1(k)", "{:.0%}"),
            ("mae_window", "MAE(w)", "{:.2f}"), ("within_1_window", "<=1(w)", "{:.0%}"),
            ("coverage", "reading", "{:.0%}"), ("phase", "phase", "{:.0%}"),
            ("breath_f1", "F1", "{:.2f}"), ("breaths_true", "true", "{}"),
            ("breaths_found", "found", "{}"), ("empty_rate_shown", "empty", "{:.1%}"),
            ("hold_rate_after_12s", "hold>12", "{:.0%}"), ("fps", "fps", "{:.0f}")]
    width = max(len(n) for n in [*rows, "scenario", footer or ""]) + 2
    lines = ["scenario".ljust(width) + "".join(h.rjust(9) for _, h, _ in cols)]
    for name, row in rows.items():
        cells = [_cell(row.get(key, math.nan), fmt) for key, _, fmt in cols]
        lines.append(name.ljust(width) + "".join(cells))
    if footer:
        lines.append(_overall(rows, width, cols, footer))
    return "\n".join(lines)


def _cell(value, fmt: str) -> str:
    """One right-aligned cell; a count that is a mean over windows gets one decimal."""
    if isinstance(value, float) and math.isnan(value):
        return "-".rjust(9)
    if fmt == "{}" and isinstance(value, float):
        fmt = "{:.1f}"
    return fmt.format(value).rjust(9)


def _overall(rows: dict[str, dict], width: int, cols, label: str) -> str:
    """The footer line: the mean of each column, or the median when ``label`` says MEDIAN."""
    middle = median_row(rows)

    def mean(key: str) -> float:
        vals = [r[key] for r in rows.values()
                if isinstance(r.get(key), int | float) and not math.isnan(r[key])]
        return sum(vals) / len(vals) if vals else math.nan

    cells = [_cell(middle.get(key, math.nan) if label.startswith("MEDIAN") else mean(key), fmt)
             for key, _, fmt in cols]
    return label.ljust(width) + "".join(cells)
