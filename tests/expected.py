"""Facts the tests check against, written down once, straight from the issues."""

# id: (inhale, hold_in, exhale, hold_out) in seconds — issue 2's built-in patterns.
BUILT_IN_PHASES = {
    "box": (4, 4, 4, 4),
    "relaxation": (4, 7, 8, 0),
    "energy": (3, 2, 4, 1),
    "sleep": (4, 6, 8, 3),
    "mindfulness": (5, 0, 5, 0),
    "energising": (6, 0, 6, 0),
    "coherent": (5.5, 0, 5.5, 0),
}
