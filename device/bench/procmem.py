"""A child process's own memory, read from ``/proc`` while it runs.

Not ``ru_maxrss`` from ``wait4``: Linux carries the parent's high-water mark into a child
across ``exec``, so a small ``breathe analyze`` started by a 170 MB benchmark reports at least
170 MB (``/bin/true`` under a 300 MB parent reports 312 MB). ``VmHWM`` in
``/proc/PID/status`` is the child's own peak.
"""

from __future__ import annotations

import subprocess
import time


def status_mb(pid: int, *keys: str) -> tuple[float, ...]:
    """Fields of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...) in MB (NaN when absent)."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in keys:
                found[key] = int(line.split()[1]) / 1024
    return tuple(found.get(k, float("nan")) for k in keys)


def rss_mb(pid: int) -> tuple[float, float, float]:
    """VmRSS, RssAnon, RssFile in MB. The file-backed part (pages of OpenCV, LiteRT, numpy and
    the mapped model files) is clean page cache the kernel takes back under memory pressure,
    so it varies with what else runs; the anonymous part is the process's own."""
    return status_mb(pid, "VmRSS", "RssAnon", "RssFile")


def peak_until_exit(proc: subprocess.Popen, every_s: float = 0.01
                    ) -> tuple[float, tuple[float, float, float]]:
    """Wait for ``proc``, reading its memory every ``every_s``: its peak RSS (VmHWM, MB) and
    the largest sample of (rss, anonymous, file-backed), which shows what the peak is made of."""
    peak, largest = 0.0, (0.0, 0.0, 0.0)
    while proc.poll() is None:
        try:
            peak = max(peak, *status_mb(proc.pid, "VmHWM"))
            largest = max(largest, rss_mb(proc.pid))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(every_s)
    proc.wait()
    return peak, largest
