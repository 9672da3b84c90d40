"""LoginLimiter under the threaded web server: failures from many requests at once all count."""

from __future__ import annotations

import threading
import time

from device.clock import FakeClock
from webui.security import LoginLimiter

THREADS = 16
TRIES = 40


class BusyClock(FakeClock):
    """A fake clock whose reading lets other threads run, as a loaded device does."""

    def now(self) -> float:
        time.sleep(0)  # gives up the GIL: another request thread may run here
        return super().now()


def hammer(limiter: LoginLimiter, client_of) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def attempts(n: int) -> None:
        start.wait()
        try:
            for i in range(TRIES):
                client = client_of(n, i)
                limiter.retry_after(client)
                limiter.failed(client)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=attempts, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_failures_from_many_threads_at_once_are_all_counted():
    """Four clients share every thread's attempts; each is locked out exactly when its last
    failure is counted, so a lost one leaves it free to try again."""
    per_client = THREADS * TRIES // 4
    limiter = LoginLimiter(max_failures=per_client, window_s=3600.0, clock=BusyClock())
    errors = hammer(limiter, lambda n, i: f"10.0.0.{i % 4}")
    assert errors == []
    locked = [limiter.retry_after(f"10.0.0.{k}") is not None for k in range(4)]
    assert locked == [True] * 4, "no failed login may be lost"


def test_a_client_locked_out_by_concurrent_failures_stays_locked():
    limiter = LoginLimiter(max_failures=5, window_s=300.0, clock=BusyClock())
    errors = hammer(limiter, lambda n, i: "203.0.113.9")
    assert errors == []
    assert limiter.retry_after("203.0.113.9") is not None


def test_a_flood_of_clients_keeps_at_most_max_clients_without_errors():
    limiter = LoginLimiter(max_failures=5, window_s=300.0, clock=BusyClock(), max_clients=50)
    errors = hammer(limiter, lambda n, i: f"198.51.100.{n}.{i}")
    assert errors == []
    assert len(limiter._failures) == 50
