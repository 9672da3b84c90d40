"""``breathe run``: the daemon serves the web app, runs sessions, awards and stops in order."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from common.config import load_config
from device.daemon import Daemon
from device.store import db_path_for, open_db
from device.store.achievements_repo import list_achievements
from device.store.sessions_repo import list_sessions


def _get_json(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
def settings(clean_env, data_dir):
    return load_config(None)


def test_the_daemon_serves_health_and_keeps_a_stopped_session(settings, data_dir, factory):
    daemon = Daemon(settings, data_dir, camera=False, sync=False, host="127.0.0.1", port=0)
    daemon.start()
    try:
        status, health = _get_json(daemon.url + "api/health")
        assert status == 200 and health["status"] in ("ok", "degraded")
        assert "web app: " + daemon.url in daemon.notes
        state = daemon.start_session("box", 5.0)
        assert state["status"] == "running" and state["pattern_id"] == "box"
        time.sleep(0.3)
    finally:
        daemon.close()
    db = open_db(db_path_for(data_dir))
    sessions = list_sessions(db)
    assert [(s.pattern_id, s.status) for s in sessions] == [("box", "stopped")]
    assert not factory.pin(18).state  # LED off after stop


def test_a_session_that_ends_earns_its_achievement(settings, data_dir, factory, fake_clock):
    daemon = Daemon(settings, data_dir, camera=False, web=False, sync=False, clock=fake_clock)
    daemon.start()
    try:
        daemon.start_session("coherent", 1.0)  # the fake clock runs it to the end at once
        db = open_db(db_path_for(data_dir))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not list_achievements(db, None):
            time.sleep(0.1)
        kinds = [a.kind for a in list_achievements(db, None)]
    finally:
        daemon.close()
    assert kinds == ["first_session"]
    assert [s.status for s in list_sessions(db)] == ["completed"]


def test_a_taken_port_is_bad_input_naming_it(settings, data_dir, factory):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(settings, data_dir, camera=False, sync=False, host="127.0.0.1",
                        port=port)
        with pytest.raises(ValueError, match=f"web.port: cannot listen on 127.0.0.1:{port}"):
            daemon.start()
    assert daemon.appliance is None  # everything started was closed again


@pytest.mark.timeout(120)
def test_breathe_run_demo_serves_until_sigterm(tmp_path, clean_env):
    """The README's demo command, as a real process: demo person, web app, clean stop."""
    env = {**os.environ, "BREATHE_DATA_DIR": str(tmp_path / "data"),
           "GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("breathe")), "run", "--demo", "--host",
         "127.0.0.1", "--port", "0", "--start", "--pattern", "box"],
        env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            lines.append(line)
            found = re.search(r"running; open (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url = found.group(1)
                break
        assert url, "".join(lines)
        assert any("setup code" in line for line in lines)  # how a newcomer claims it
        assert any("the demo person" in line for line in lines)
        time.sleep(3)
        status, health = _get_json(url + "api/health")
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(lines) + rest
    assert "stopped" in rest
    db = open_db(db_path_for(Path(tmp_path / "data")))
    assert [(s.pattern_id, s.status) for s in list_sessions(db)] == [("box", "stopped")]
