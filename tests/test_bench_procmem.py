"""The benches report a child's own peak memory, not their own (issue 12's footprint figures)."""

import subprocess
import sys

from device.bench.procmem import peak_until_exit


def test_a_small_child_of_a_big_process_reports_its_own_peak():
    ballast = bytearray(300 * 1024 * 1024)  # this process: > 300 MB resident
    ballast[::4096] = b"\x01" * len(ballast[::4096])
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; x = bytearray(40 * 1024 * 1024); time.sleep(0.5)"])
    peak, (rss, anon, file_backed) = peak_until_exit(child)
    assert child.returncode == 0
    # Python (~10 MB) plus the 40 MB it allocated; ru_maxrss would say > 300 here
    assert 40 < peak < 120, peak
    assert 40 < anon <= rss <= peak + 1
    assert file_backed > 0
    del ballast
