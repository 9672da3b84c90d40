"""The achievements a session can earn, by kind, with the title people see.

The device decides when one is earned (``device/session/history.py``); the relay writes the same
title into the minted token's metadata. The milestones are part of each kind's name.
"""

from __future__ import annotations

STREAK_MILESTONES = (3, 7, 30)
HOLD_MILESTONES_S = (20, 40, 60)
RESONANCE_MIN_S = 600.0  # 10 minutes with a measured rate of 5–7 breaths/min...
RESONANCE_MIN_ADHERENCE = 0.8  # ...in a session followed at least this well
SESSION_MILESTONES = (100,)

ACHIEVEMENTS: dict[str, str] = {
    "first_session": "First session",
    **{f"streak_{n}": f"{n}-day streak" for n in STREAK_MILESTONES},
    "resonance_10min": "10 minutes of resonance breathing (5–7 breaths/min) at 80 % adherence",
    **{f"hold_{n}s": f"A measured hold of {n} s" for n in HOLD_MILESTONES_S},
    **{f"sessions_{n}": f"{n} sessions" for n in SESSION_MILESTONES},
}
