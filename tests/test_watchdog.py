"""The systemd watchdog and the frozen-camera restart.

The notifications go through a real unix datagram socket named by $NOTIFY_SOCKET, as systemd
would receive them; the camera is a real LiveBreath on a frame source the test can freeze.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from device.breath.live import LiveBreath
from device.breath.pipeline import BreathPipeline
from device.camera.base import Frame, SourceStats
from device.clock import FakeClock, MonotonicClock
from device.status import DeviceStatus
from device.watchdog import DEFAULT_INTERVAL_S, Watchdog, interval_from_env

FPS = 50.0


class FreezableSource:
    """Yields frames at ``FPS`` until ``freeze()``; then yields nothing until closed, as a hung
    camera does. ``fail_after`` raises instead after that many frames."""

    width, height = 64, 48

    def __init__(self, name: str = "cam", fail_after: int | None = None,
                 frozen: bool = False) -> None:
        self.name = name
        self.stats = SourceStats(fps=FPS)
        self.frozen = threading.Event()
        if frozen:
            self.frozen.set()
        self.closed = threading.Event()
        self.fail_after = fail_after

    def freeze(self) -> None:
        self.frozen.set()

    def frames(self):
        i = 0
        while not self.closed.is_set():
            if self.frozen.is_set():
                self.closed.wait(0.05)
                continue
            if self.fail_after is not None and i >= self.fail_after:
                raise OSError("device unplugged")
            yield Frame(t=i / FPS, image=np.zeros((48, 64, 3), np.uint8), index=i)
            i += 1
            time.sleep(1 / FPS)

    def close(self) -> None:
        self.closed.set()


class Opener:
    """The reopen factory: hands out fresh sources and remembers them."""

    def __init__(self, **source_args) -> None:
        self.opened: list[FreezableSource] = []
        self.source_args = source_args
        self.fail = False
        self.calls = 0
        self.gate = threading.Event()  # opening waits for it, as a slow camera start does
        self.gate.set()

    def __call__(self):
        self.calls += 1
        self.gate.wait(5)
        if self.fail:
            raise OSError("no camera on the bus")
        source = FreezableSource(f"cam{len(self.opened) + 1}", **self.source_args)
        self.opened.append(source)
        return source, BreathPipeline(None, FPS)


class SteppingEngine:
    """The pacing loop's liveness, as SessionEngine exposes it: ``last_step_at`` on its clock."""

    def __init__(self) -> None:
        self.clock = MonotonicClock()
        self.last_step_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.last_step_at = self.clock.now()

    def start(self) -> SteppingEngine:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1)


class NotifyListener:
    """A unix datagram socket standing in for systemd's; keeps every line received."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.02)
        self.received: list[str] = []

    def drain(self, until: float = 0.0) -> list[str]:
        """Everything received so far, after listening ``until`` seconds more."""
        deadline = time.monotonic() + until
        while True:
            try:
                self.received.extend(self.sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    return self.received


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """$NOTIFY_SOCKET names a real socket, as under systemd."""
    path = str(tmp_path / "notify")
    listener = NotifyListener(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield listener
    listener.sock.close()


def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _pings(messages: list[str]) -> int:
    return messages.count("WATCHDOG=1")


def test_interval_is_half_of_watchdog_usec():
    assert interval_from_env({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert interval_from_env({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) \
        == 15.0
    # meant for another process (a parent that exported it), or nonsense: the default
    assert interval_from_env({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) \
        == DEFAULT_INTERVAL_S
    assert interval_from_env({"WATCHDOG_USEC": "soon"}) == DEFAULT_INTERVAL_S
    assert interval_from_env({}) == DEFAULT_INTERVAL_S


def test_frozen_camera_stops_the_pings_and_is_restarted(tmp_path, notify_socket):
    opener = Opener()
    first = FreezableSource("cam0")
    live = LiveBreath(first, BreathPipeline(None, FPS), reopen=opener, stall_s=0.4,
                      backoff_s=0.2, poll_s=0.05).start()
    engine = SteppingEngine().start()
    status = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(engine=engine, breath=live))
    dog = Watchdog(status, interval_s=0.05)
    try:
        _wait(lambda: live.status().state == "flowing")
        dog.start()
        _wait(lambda: _pings(notify_socket.drain()) >= 4)  # healthy: a ping every 50 ms
        assert notify_socket.drain()[:2] == ["READY=1", "STATUS=running"]

        opener.gate.clear()  # the camera takes its time to come back
        first.freeze()
        # the supervisor notices and reopens the camera: counted, the old one closed
        _wait(lambda: opener.calls == 1, timeout=3)
        assert live.status().restarts == 1
        assert first.closed.is_set()
        _wait(lambda: dog.withheld >= 3)  # while it reopens, no ping goes out
        held = notify_socket.drain(0.0)
        unhealthy = next(i for i, m in enumerate(held) if m.startswith("STATUS=unhealthy"))
        assert held[unhealthy].startswith("STATUS=unhealthy: camera: no frame for")
        assert _pings(held[unhealthy:]) == 0
        assert status.health()["status"] == "degraded"

        # frames flow from the new source: pings come back, the restart stays counted
        opener.gate.set()
        _wait(lambda: live.status().state == "flowing")
        _wait(lambda: _pings(notify_socket.drain()[unhealthy:]) >= 3)
        assert "STATUS=running" in notify_socket.drain()[unhealthy:]
        stats = status.stats()
        assert stats["camera"]["restarts"] == 1 and stats["camera"]["state"] == "flowing"
        assert status.health()["status"] == "ok"
    finally:
        dog.stop()
        live.stop()
        engine.stop()
    assert notify_socket.drain(0.05)[-1] == "STOPPING=1"


def test_no_pings_between_freeze_and_recovery(tmp_path, notify_socket):
    """While the camera stays dead (every reopen fails) not one ping goes out."""
    opener = Opener()
    opener.fail = True
    source = FreezableSource()
    live = LiveBreath(source, BreathPipeline(None, FPS), reopen=opener, stall_s=0.3,
                      backoff_s=0.1, poll_s=0.03).start()
    engine = SteppingEngine().start()
    dog = Watchdog(DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(
        engine=engine, breath=live)), interval_s=0.05)
    try:
        _wait(lambda: live.status().state == "flowing")
        dog.start()
        source.freeze()
        _wait(lambda: live.status().restarts >= 2, timeout=5)
        start = len(notify_socket.drain(0.0))
        notify_socket.drain(0.3)
        assert _pings(notify_socket.drain(0.0)[start:]) == 0
        status = live.status()
        assert status.state == "failed"
        assert status.error == "camera reopen failed: no camera on the bus"
    finally:
        dog.stop()
        live.stop()
        engine.stop()


def test_stalled_pacing_loop_stops_the_pings(tmp_path, notify_socket):
    clock = FakeClock(50.0)
    engine = SimpleNamespace(clock=clock, last_step_at=clock.now())
    status = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(engine=engine, breath=None),
                          camera_expected=False)
    dog = Watchdog(status, interval_s=60)  # not started: ticks driven by hand
    assert dog.tick() is True
    clock.advance(30)
    assert dog.tick() is False
    engine.last_step_at = clock.now()
    assert dog.tick() is True
    dog.stop()
    messages = notify_socket.drain(0.05)
    assert messages == ["WATCHDOG=1",
                        "STATUS=unhealthy: pacing: loop has not stepped for 30 s",
                        "STATUS=running", "WATCHDOG=1", "STOPPING=1"]


def test_a_check_that_raises_withholds_the_ping(notify_socket):
    def broken() -> list[str]:
        raise RuntimeError("boom")

    dog = Watchdog(broken, interval_s=60)
    assert dog.tick() is False
    assert notify_socket.drain(0.05) == ["STATUS=unhealthy: watchdog check failed: boom"]


def test_watchdog_refuses_something_that_is_not_a_check():
    with pytest.raises(TypeError, match="DeviceStatus or a callable"):
        Watchdog(42, notifier=SimpleNamespace(notify=lambda s: None))


def test_without_notify_socket_it_runs_quietly(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    dog = Watchdog(lambda: [], interval_s=0.01).start()
    _wait(lambda: dog.pings >= 2)
    dog.stop()


# -- LiveBreath liveness and restart, on a fake clock -------------------------------------------

def test_restarts_back_off_exponentially_while_the_camera_stays_frozen():
    clock = FakeClock(0.0)
    opener = Opener(frozen=True)
    first = FreezableSource("cam0", frozen=True)
    # the supervisor thread never polls here: the test calls check() itself
    live = LiveBreath(first, BreathPipeline(None, FPS), reopen=opener, clock=clock, stall_s=5,
                      backoff_s=4, backoff_max_s=20, poll_s=3600).start()
    try:
        restarts_at = []
        for _ in range(960):  # two minutes in 1/8 s steps
            if live.check():
                restarts_at.append(clock.now())
            clock.advance(0.125)
        # frozen after 5 s; then waits of max(stall 5, 4·2^k capped at 20): 5, 8, 16, 20, 20...
        assert restarts_at[:6] == [5.0, 10.0, 18.0, 34.0, 54.0, 74.0]
        assert live.status().restarts == len(restarts_at)
        assert all(s.closed.is_set() for s in [first, *opener.opened[:-1]])
    finally:
        live.stop()


def test_a_failed_source_is_reopened_and_without_a_factory_stays_failed():
    plain = LiveBreath(FreezableSource("usb", fail_after=3), BreathPipeline(None, FPS)).start()
    _wait(lambda: not plain.status().running)
    status = plain.status()
    assert (status.state, status.error, status.restarts) == ("failed", "usb: device unplugged", 0)
    assert plain.check() is False
    plain.stop()

    opener = Opener()
    live = LiveBreath(FreezableSource("usb", fail_after=3), BreathPipeline(None, FPS),
                      reopen=opener, stall_s=0.3, poll_s=0.02).start()
    try:
        _wait(lambda: live.status().restarts == 1 and live.status().state == "flowing")
        assert live.status().error is None
    finally:
        live.stop()
    assert live.status().state == "stopped"


def test_frozen_camera_tells_the_engine_why_it_paces_only():
    clock = FakeClock(0.0)
    source = FreezableSource("picamera2")
    live = LiveBreath(source, BreathPipeline(None, FPS), clock=clock, stall_s=5).start()
    try:
        _wait(lambda: live.status().frames > 0)
        source.freeze()
        time.sleep(0.1)
        clock.advance(8)
        status = live.status()
        assert status.state == "frozen"
        assert status.error == "picamera2: no frame for 8 s"
        assert status.fps == 0.0
    finally:
        live.stop()
