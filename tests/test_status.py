"""DeviceStatus: what /api/health, /api/stats and the MQTT telemetry report.

Real parts where they exist (SQLite store, LiveBreath on a frame source, /proc); small stand-ins
for the engine and the sync client, which are duck-typed seams here.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import namedtuple
from types import SimpleNamespace

import numpy as np
import pytest

from device import status as status_mod
from device.breath.live import LiveBreath
from device.breath.pipeline import BreathPipeline
from device.camera.base import Frame, SourceStats
from device.clock import FakeClock
from device.status import DeviceStatus, cpu_temp_c, memory_mb
from device.store.db import db_path_for, open_db
from device.store.outbox_repo import Outgoing, enqueue

FPS = 15.0


class GatedSource:
    """Yields a frame each time the test allows one (``give(n)``); otherwise waits, frozen."""

    name = "gated"
    width, height = 64, 48

    def __init__(self) -> None:
        self.stats = SourceStats(fps=FPS)
        self._allowed = threading.Semaphore(0)
        self._closed = threading.Event()
        self.delivered = 0

    def give(self, n: int) -> None:
        for _ in range(n):
            self._allowed.release()

    def frames(self):
        i = 0
        while not self._closed.is_set():
            if self._allowed.acquire(timeout=0.02):
                yield Frame(t=i / FPS, image=np.zeros((48, 64, 3), np.uint8), index=i)
                i += 1
                self.delivered += 1

    def close(self) -> None:
        self._closed.set()


def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def clock():
    return FakeClock(1000.0)


@pytest.fixture
def live(clock):
    source = GatedSource()
    breath = LiveBreath(source, BreathPipeline(None, FPS), clock=clock, stall_s=5.0).start()
    yield breath
    breath.stop()


def _engine(clock, last_step_at):
    return SimpleNamespace(clock=clock, last_step_at=last_step_at)


class FakeSync:
    def __init__(self, state: str, last_sync: str | None = None, depth: int = 0) -> None:
        self.state, self.last_sync, self.depth = state, last_sync, depth

    def outbox_depth(self) -> int:
        return self.depth


def test_fresh_device_is_healthy_and_health_has_no_personal_data(tmp_path, clock, live):
    data = tmp_path / "data"
    with open_db(db_path_for(data)) as db:
        db["settings"].insert({"key": "profile.display_name", "value": '"Ada Lovelace"',
                               "updated": "2026-01-01T00:00:00+00:00"})
    live.source.give(3)
    _wait(lambda: live.status().frames == 3)
    appliance = SimpleNamespace(engine=_engine(clock, clock.now()), breath=live)
    health = DeviceStatus(data, appliance=appliance).health()
    assert health == {"status": "ok", "reasons": []}
    stats = DeviceStatus(data, appliance=appliance).stats()
    assert "Ada" not in json.dumps(health) + json.dumps(stats)


def test_low_disk_degrades_with_the_free_space(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(status_mod.shutil, "disk_usage",
                        lambda path: usage(10**9, 10**9 - 20 * 2**20, 20 * 2**20))
    health = DeviceStatus(tmp_path / "data").health()
    assert health["status"] == "degraded"
    assert health["reasons"] == ["disk: only 20 MB free in the data dir (needs 50 MB)"]


def test_a_store_that_cannot_open_degrades(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db_path_for(data).write_bytes(os.urandom(4096))  # not SQLite
    health = DeviceStatus(data).health()
    assert health == {"status": "degraded", "reasons": ["database: cannot open the store"]}


def test_unreadable_data_dir_degrades(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    health = DeviceStatus(blocker / "data").health()
    assert health["status"] == "degraded"
    assert "database: cannot open the store" in health["reasons"]
    assert "disk: data dir not readable" in health["reasons"]


def test_frozen_camera_degrades_and_shows_in_stats(tmp_path, clock, live):
    live.source.give(5)
    _wait(lambda: live.status().frames == 5)
    status = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(
        engine=_engine(clock, clock.now()), breath=live))
    assert status.stats()["camera"]["state"] == "flowing"
    clock.advance(6.0)
    status.appliance.engine.last_step_at = clock.now()
    health = status.health()
    assert health["status"] == "degraded"
    assert health["reasons"] == ["camera: no frame for 6.0 s (0 restart(s))"]
    assert status.stats()["camera"] == {"fps": 0.0, "state": "frozen", "restarts": 0}
    assert status.liveness() == health["reasons"]


def test_stats_report_camera_fps_and_inference_time(tmp_path, clock, live):
    for _ in range(20):  # 20 frames at 10 fps of clock time
        live.source.give(1)
        n = live.status().frames
        _wait(lambda n=n: live.status().frames == n + 1)
        clock.advance(0.1)
    stats = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(
        engine=_engine(clock, clock.now()), breath=live)).stats()
    # 20 frames over the 2 s since the source started
    assert stats["camera"] == {"fps": 10.0, "state": "flowing", "restarts": 0}
    assert stats["inference_ms"] is not None and 0 < stats["inference_ms"] < 1000


def test_stalled_pacing_loop_degrades_and_counts_as_not_alive(tmp_path, clock):
    engine = _engine(clock, clock.now())
    status = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(engine=engine, breath=None),
                          camera_expected=False)
    assert status.liveness() == []
    clock.advance(7.0)
    assert status.liveness() == ["pacing: loop has not stepped for 7 s"]
    assert status.health()["reasons"] == ["pacing: loop has not stepped for 7 s"]
    engine.last_step_at = clock.now()
    assert status.health()["status"] == "ok"


def test_loop_that_never_stepped_gets_a_start_up_grace(tmp_path, clock):
    engine = _engine(clock, None)
    fresh = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(engine=engine, breath=None),
                         camera_expected=False)
    assert fresh.liveness() == []
    old = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(engine=engine, breath=None),
                       camera_expected=False, started_at=time.monotonic() - 60)
    assert old.liveness()[0].startswith("pacing: loop has not stepped for 6")


def test_engine_without_last_step_at_is_not_judged(tmp_path, clock):
    engine = SimpleNamespace(clock=clock)
    status = DeviceStatus(tmp_path / "d", appliance=SimpleNamespace(engine=engine, breath=None),
                          camera_expected=False)
    assert status.liveness() == []


def test_missing_camera_is_degraded_unless_off_on_purpose(tmp_path, clock):
    appliance = SimpleNamespace(engine=_engine(clock, clock.now()), breath=None)
    expected = DeviceStatus(tmp_path / "d", appliance=appliance)
    assert expected.health()["reasons"] == [
        "camera: none found; pacing only, no breath measurement"]
    assert expected.liveness() == []  # a restart would not bring a camera
    off = DeviceStatus(tmp_path / "d", appliance=appliance, camera_expected=False)
    assert off.health()["status"] == "ok"
    assert off.stats()["camera"] == {"fps": None, "state": "absent", "restarts": 0}


def test_mqtt_state_counts_only_when_sync_is_on(tmp_path):
    down = DeviceStatus(tmp_path / "d", sync=FakeSync("disconnected", None, depth=3))
    assert down.health() == {"status": "degraded",
                             "reasons": ["mqtt: disconnected (last sync never)"]}
    stats = down.stats()
    assert stats["outbox_depth"] == 3
    assert stats["mqtt"] == {"state": "disconnected", "last_sync": None}
    up = DeviceStatus(tmp_path / "d", sync=FakeSync("connected", "2026-01-02T03:04:05+00:00"))
    assert up.health()["status"] == "ok"
    assert up.stats()["mqtt"] == {"state": "connected",
                                  "last_sync": "2026-01-02T03:04:05+00:00"}
    off = DeviceStatus(tmp_path / "d")
    assert off.health()["status"] == "ok"
    assert off.stats()["mqtt"] == {"state": "disabled", "last_sync": None}


def test_outbox_depth_without_sync_comes_from_the_store(tmp_path):
    data = tmp_path / "data"
    with open_db(db_path_for(data)) as db:
        for i in range(2):
            enqueue(db, Outgoing("sessions", {"n": i}))
    assert DeviceStatus(data).stats()["outbox_depth"] == 2


def test_stats_shape_uptime_version(tmp_path):
    stats = DeviceStatus(tmp_path / "d", started_at=time.monotonic() - 100,
                         version="9.9.9").stats()
    assert set(stats) == {"uptime_s", "version", "camera", "inference_ms", "cpu_temp_c",
                          "memory", "outbox_depth", "mqtt"}
    assert 100 <= stats["uptime_s"] < 110
    assert stats["version"] == "9.9.9"
    assert stats["inference_ms"] is None
    # this process really uses memory, and the machine has some left
    assert stats["memory"]["rss_mb"] > 10
    assert stats["memory"]["available_mb"] > 0
    assert DeviceStatus(tmp_path / "d").version  # the installed package's, or 0+unknown


def test_cpu_temperature_from_the_thermal_zone(tmp_path):
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert cpu_temp_c(zone) == 48.3
    assert cpu_temp_c(tmp_path / "missing") is None
    zone.write_text("garbage\n")
    assert cpu_temp_c(zone) is None
    assert DeviceStatus(tmp_path / "d", thermal_path=tmp_path / "none").stats()[
        "cpu_temp_c"] is None


def test_memory_from_proc_files(tmp_path):
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "status").write_text("Name:\tbreathe\nVmRSS:\t  204800 kB\n")
    (tmp_path / "meminfo").write_text("MemTotal: 4000000 kB\nMemAvailable:  1048576 kB\n")
    assert memory_mb(tmp_path) == {"rss_mb": 200.0, "available_mb": 1024.0}
    assert memory_mb(tmp_path / "nowhere") == {"rss_mb": None, "available_mb": None}
