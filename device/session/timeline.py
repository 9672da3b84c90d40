"""The per-second session timeline (the summary chart) and the rate statistics over time.

Built as samples arrive: a second is turned into its :class:`TimelinePoint` once, when the
first sample of a later second shows it is over, and only the second in progress is rebuilt on
each :meth:`Timeline.points`. So a checkpoint late in a long session costs what one early on
does (rebuilding every second on every checkpoint froze the 50 Hz loop for ~80 ms at 29 min).
The session's rate median is kept the same way, in a :class:`RunningMedian`.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from wire.metrics import TimelinePoint

if TYPE_CHECKING:
    from device.session.metrics import Sample

SETTLE_MIN_TAIL_S = 30  # a settled rate has to hold for at least this many seconds
SETTLE_SMOOTH_S = 9  # per-second rates are median-smoothed over this many seconds


def mean_or_none(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def round_or_none(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _majority(values: Iterable[Any]) -> Any:
    """Most common value; ties go to the one seen first (Counter keeps insertion order)."""
    counts = Counter(values)
    return max(counts, key=counts.__getitem__) if counts else None


def timeline_point(second: int, samples: Sequence[Sample]) -> TimelinePoint:
    """One chart row from the samples of one second (majority phases, mean rate and quality)."""
    read = [s.measured_phase for s in samples if s.measured_phase is not None]
    rates = [s.rate_bpm for s in samples if s.rate_bpm is not None]
    shown = [s.displacement for s in samples if s.displacement is not None]
    return TimelinePoint(
        second=second,
        target_phase=_majority(s.target_phase for s in samples),
        # "no reading" for the second unless most of its samples had one
        measured_phase=_majority(read) if 2 * len(read) > len(samples) else None,
        rate=round_or_none(mean_or_none(rates), 2),
        quality=round_or_none(
            min(1.0, max(0.0, mean_or_none([s.quality for s in samples]) or 0.0)), 3
        ),
        displacement=None if not shown else float(f"{mean_or_none(shown):.4g}"),
    )


class RunningMedian:
    """Median, min and max of a growing list in O(log n) per value (two heaps)."""

    def __init__(self) -> None:
        self._low: list[float] = []  # the smaller half, negated (a max-heap); the larger if odd
        self._high: list[float] = []  # the larger half (a min-heap)
        self.min: float | None = None
        self.max: float | None = None

    def __len__(self) -> int:
        return len(self._low) + len(self._high)

    def add(self, value: float) -> None:
        self.min = value if self.min is None else min(self.min, value)
        self.max = value if self.max is None else max(self.max, value)
        heapq.heappush(self._high, -heapq.heappushpop(self._low, -value))
        if len(self._high) > len(self._low):
            heapq.heappush(self._low, -heapq.heappop(self._high))

    def median(self) -> float:
        """As ``statistics.median``: the middle value, or the mean of the middle two."""
        if len(self._low) > len(self._high):
            return -self._low[0]
        return (-self._low[0] + self._high[0]) / 2


class Timeline:
    """Timeline rows of the samples so far; samples must come in time order."""

    def __init__(self) -> None:
        self._done: list[TimelinePoint] = []  # finished seconds, in order
        self._second: int | None = None  # the second in progress
        self._samples: list[Sample] = []  # its samples so far
        self._rated: list[int] = []  # the finished seconds that have a rate ...
        self._rates: list[float] = []  # ... and their rates
        self._smooth: list[float] = []  # centred medians of _rates that no later second changes

    def add(self, sample: Sample) -> None:
        second = max(0, int(math.floor(sample.t)))
        if second != self._second:
            self._close()
            self._second = second
        self._samples.append(sample)

    def _close(self) -> None:
        if self._second is None or not self._samples:
            return
        point = timeline_point(self._second, self._samples)
        self._done.append(point)
        self._samples = []
        if point.rate is not None:
            self._rated.append(point.second)
            self._rates.append(point.rate)
            half = SETTLE_SMOOTH_S // 2
            # a window is final once it has its full right half (or reaches back to the start)
            while len(self._smooth) + half < len(self._rates):
                i = len(self._smooth)
                window = self._rates[max(0, i - half) : i + half + 1]
                self._smooth.append(statistics.median(window))

    def current(self) -> TimelinePoint | None:
        """The row of the second in progress (None before any sample)."""
        if self._second is None or not self._samples:
            return None
        return timeline_point(self._second, self._samples)

    def points(self, current: TimelinePoint | None = None) -> tuple[TimelinePoint, ...]:
        """All rows so far; ``current``: the in-progress row when the caller already built it."""
        if current is None:
            current = self.current()
        return (*self._done, current) if current is not None else tuple(self._done)

    def settled(self, current: TimelinePoint | None = None) -> tuple[float | None, int | None]:
        """The rate the breath settled at, and the second from which it stayed there.

        Settled value: the median per-second rate over the second half of the rated seconds.
        Settled from: the second after the last one whose rate (a centred median over
        ``SETTLE_SMOOTH_S`` seconds, so one glitch does not count) was more than
        ±max(0.5, 10 %) away from that value; None unless it then held for at least
        ``SETTLE_MIN_TAIL_S``.
        """
        if current is None:
            current = self.current()
        rated, rates = self._rated, self._rates
        if current is not None and current.rate is not None:
            rated, rates = [*rated, current.second], [*rates, current.rate]
        if len(rates) < SETTLE_MIN_TAIL_S:
            return None, None
        value = statistics.median(rates[len(rates) // 2 :])
        tolerance = max(0.5, 0.1 * value)
        half = SETTLE_SMOOTH_S // 2
        first = 0
        for i in range(len(rates) - 1, -1, -1):
            if i < len(self._smooth):
                smooth = self._smooth[i]
            else:
                smooth = statistics.median(rates[max(0, i - half) : i + half + 1])
            if abs(smooth - value) > tolerance:
                first = i + 1
                break
        if len(rates) - first < SETTLE_MIN_TAIL_S:
            return None, None
        return round(value, 2), rated[first]
