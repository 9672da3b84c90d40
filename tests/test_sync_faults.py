"""Faults: the device process killed -9 in the middle of an upload, and the broker down while
hundreds of sessions wait. Nothing may be lost: every id reaches the relay at least once (the
relay de-duplicates by id) and the outbox ends empty."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_sync_support import (
    Controls,
    FakeRelay,
    config_toml,
    device_settings,
    queue_sessions,
    wait_until,
)

from device.store import open_db, outbox_repo
from device.sync.client import SyncClient
from wire import protocol

ROOT = Path(__file__).resolve().parent.parent

DEVICE_PROCESS = """
import sys, threading
sys.path.insert(0, sys.argv[3])
from test_sync_support import Controls
from common.config import load_config
from device.sync.client import SyncClient

settings = load_config(sys.argv[1])
SyncClient(settings, sys.argv[2], controls=Controls(), window=50, resend_s=1,
           max_resend_s=2, reconnect_max_s=1, poll_s=0.05).start()
print("running", flush=True)
threading.Event().wait()
"""


@pytest.fixture
def relay(broker):
    r = FakeRelay(broker)
    yield r
    r.close()


def depth(db_path: Path) -> int:
    db = open_db(db_path)
    try:
        return outbox_repo.count(db)
    finally:
        db.close()


def start_device(config: Path, db_path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", DEVICE_PROCESS, str(config), str(db_path),
         str(ROOT / "tests")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"running", process.stderr.read().decode()
    return process


def test_killed_mid_upload_nothing_is_lost(broker, relay, tmp_path):
    db_path = tmp_path / "breathe.db"
    ids = queue_sessions(db_path, 1000)
    config = config_toml(device_settings(broker, tmp_path), tmp_path / "device.toml")
    device = start_device(config, db_path)
    try:
        wait_until(lambda: sum(relay.ids().values()) >= 150, what="the upload under way")
        device.send_signal(signal.SIGKILL)  # no goodbye, mid-transaction perhaps
        device.wait(5)
    finally:
        if device.poll() is None:
            device.kill()
        device.stdout.close()
        device.stderr.close()
    left = depth(db_path)
    assert 0 < left < 1000, "the kill should land in the middle of the upload"
    # the broker noticed the vanished connection and published the last will
    wait_until(lambda: any(s.state == "offline" for s in relay.received(protocol.STATUS)),
               what="the last will (status offline)")
    device = start_device(config, db_path)  # the same device, restarted
    try:
        wait_until(lambda: depth(db_path) == 0, timeout=60, what="the outbox to empty")
    finally:
        device.kill()
        device.wait(5)
        device.stdout.close()
        device.stderr.close()
    received = relay.ids()
    assert set(received) == set(ids)  # every one arrived, nothing else
    assert relay.invalid == []


def test_broker_down_with_hundreds_queued_all_arrive(broker, relay, tmp_path):
    db_path = tmp_path / "breathe.db"
    settings = device_settings(broker, tmp_path)
    first = queue_sessions(db_path, 150)
    client = SyncClient(settings, db_path, controls=Controls(), window=40, resend_s=1,
                        max_resend_s=2, reconnect_max_s=1, poll_s=0.05)
    try:
        client.start()
        wait_until(lambda: sum(relay.ids().values()) >= 40, what="the first sessions")
        broker.kill()  # a crash: no clean shutdown, in-memory state gone
        wait_until(lambda: client.state == "disconnected", what="the device to notice")
        later = queue_sessions(db_path, 250)  # sessions keep finishing meanwhile
        time.sleep(1.5)  # down for a while: the device retries with backoff
        assert client.state == "disconnected" and depth(db_path) >= 250
        broker.start()
        wait_until(lambda: depth(db_path) == 0, timeout=60, what="the outbox to empty")
    finally:
        client.stop()
    assert set(relay.ids()) == set(first + later)
    assert client.sender.acked == 400
