"""Score an estimate against ground truth: rate, phase and breath detection.

Inputs use the field names of ``breathe analyze --json`` and of the generators' truth files:
per-frame dicts ``{"t", "phase", "rate_bpm"}`` and breath dicts ``{"inhale_start",
"exhale_start", "end"}``. Estimated frames are paired with truth frames by time (nearest, so
the two lists need not be the same length).

Definitions (the targets in issue 3 are stated in these terms):

* rate — scored frames are truth frames at ``t ≥ start + settle_s`` whose truth rate is not
  None. ``coverage`` = share of them with an estimated rate; ``mae`` and ``within_1`` (share
  with |error| ≤ 1 bpm) are over the scored frames that have an estimate.
* phase — scored frames are truth frames whose phase is in ``phases`` (inhale, exhale). A
  frame agrees when its estimated phase equals the truth phase at some time in
  ``[t − lag_s, t]`` (the estimate may trail the truth by up to ``lag_s``). A missing
  estimate never agrees.
* breaths — estimated and truth inhale starts are paired one to one, closest first, when
  they lie within ``tol_s``. Truth breaths inside the scoring window that find no partner are
  misses, estimated ones inside the window without a partner are false alarms; events near
  the window's edges may partner events outside it (so a cut-off breath is no penalty).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _times(frames: Sequence[dict]) -> np.ndarray:
    return np.array([float(f["t"]) for f in frames], dtype=float)


def _nearest(src_t: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index in ``src_t`` (sorted) of the sample nearest each time in ``at``."""
    i = np.clip(np.searchsorted(src_t, at), 1, max(len(src_t) - 1, 1))
    left = src_t[i - 1] if len(src_t) > 1 else src_t[:1].repeat(len(at))
    right = src_t[np.minimum(i, len(src_t) - 1)]
    return np.where(np.abs(at - left) <= np.abs(right - at), i - 1, i).clip(0, len(src_t) - 1)


def score_rate(truth_frames: Sequence[dict], est_frames: Sequence[dict],
               settle_s: float = 20.0) -> dict:
    """Rate error and coverage; see the module docstring."""
    if not truth_frames or not est_frames:
        return {"mae": math.nan, "within_1": math.nan, "coverage": 0.0, "scored": 0}
    tt, et = _times(truth_frames), _times(est_frames)
    j = _nearest(et, tt)
    t0 = tt[0] + settle_s
    err: list[float] = []
    scored = 0
    for i, f in enumerate(truth_frames):
        if tt[i] < t0 or f.get("rate_bpm") is None:
            continue
        scored += 1
        est = est_frames[j[i]].get("rate_bpm")
        if est is not None:
            err.append(abs(float(est) - float(f["rate_bpm"])))
    if not scored:
        return {"mae": math.nan, "within_1": math.nan, "coverage": math.nan, "scored": 0}
    e = np.array(err)
    return {
        "mae": float(e.mean()) if len(e) else math.nan,
        "within_1": float(np.mean(e <= 1.0)) if len(e) else math.nan,
        "coverage": len(e) / scored,
        "scored": scored,
    }


def score_phase(truth_frames: Sequence[dict], est_frames: Sequence[dict], lag_s: float = 0.5,
                phases: tuple[str, ...] = ("inhale", "exhale"), settle_s: float = 0.0) -> dict:
    """Phase agreement allowing the estimate to trail by ``lag_s``; see the module docstring."""
    if not truth_frames or not est_frames:
        return {"agreement": math.nan, "scored": 0}
    tt, et = _times(truth_frames), _times(est_frames)
    j = _nearest(et, tt)
    lo = np.searchsorted(tt, tt - lag_s - 1e-9)
    t0 = tt[0] + settle_s
    good = scored = 0
    for i, f in enumerate(truth_frames):
        if tt[i] < t0 or f.get("phase") not in phases:
            continue
        scored += 1
        est = est_frames[j[i]].get("phase")
        if est is not None and any(truth_frames[k].get("phase") == est
                                   for k in range(lo[i], i + 1)):
            good += 1
    return {"agreement": good / scored if scored else math.nan, "scored": scored}


def score_breaths(truth_breaths: Sequence[dict], est_breaths: Sequence[dict],
                  tol_s: float = 1.0, t_min: float = -math.inf,
                  t_max: float = math.inf) -> dict:
    """Breath detection by inhale start; see the module docstring."""
    tr = sorted(float(b["inhale_start"]) for b in truth_breaths)
    es = sorted(float(b["inhale_start"]) for b in est_breaths)
    pairs = sorted((abs(a - b), i, k) for i, a in enumerate(tr) for k, b in enumerate(es)
                   if abs(a - b) <= tol_s)
    used_t: set[int] = set()
    used_e: set[int] = set()
    offsets: list[float] = []
    for _d, i, k in pairs:
        if i in used_t or k in used_e:
            continue
        used_t.add(i)
        used_e.add(k)
        if t_min <= tr[i] <= t_max:
            offsets.append(es[k] - tr[i])
    tp = len(offsets)
    fn = sum(1 for i, a in enumerate(tr) if t_min <= a <= t_max and i not in used_t)
    fp = sum(1 for k, b in enumerate(es) if t_min <= b <= t_max and k not in used_e)
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return {"f1": f1, "precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn,
            "mean_offset_s": float(np.mean(offsets)) if offsets else math.nan}


def rate_shown_fraction(est_frames: Sequence[dict], t_from: float = -math.inf,
                        t_to: float = math.inf) -> float:
    """Share of frames in ``[t_from, t_to]`` that show a rate (empty scene, long holds)."""
    sel = [f for f in est_frames if t_from <= float(f["t"]) <= t_to]
    return sum(f.get("rate_bpm") is not None for f in sel) / len(sel) if sel else 0.0
