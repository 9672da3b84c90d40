"""The relay as an operator installs it on a server: ``pip install ./packaging/breathe-relay``
in a fresh venv, nothing of the device (no OpenCV, LiteRT, gpiozero, Flask), then
``breathe-relay run`` against the real mosquitto, storing and acking a device's sessions.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from relay_support import sim_device, write_relay_config
from test_base_install import (
    _run,
    fresh_venv,
    import_failures,
    installed_distributions,
    project_copy,
)

from relay import fleetsim

ROOT = Path(__file__).resolve().parents[1]
# the device's own dependencies: a relay server carries none of them
DEVICE_ONLY = ("ai-edge-litert", "opencv-python-headless", "opencv-python",
               "gpiozero", "flask", "flask-wtf", "sqlite-utils", "sdnotify")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def relay_venv(tmp_path_factory) -> Path:
    source = project_copy(tmp_path_factory.mktemp("source"), "packaging/breathe-relay",
                          "common", "wire", "relay")
    return fresh_venv(tmp_path_factory.mktemp("relay") / "venv",
                      source / "packaging" / "breathe-relay")


def test_the_relay_installs_without_the_device_and_imports_every_module(relay_venv):
    listed = installed_distributions(relay_venv)
    assert "breathe-relay" in listed and "breathe" not in listed
    assert [name for name in DEVICE_ONLY if name in listed] == []
    assert import_failures(relay_venv, "common", "wire", "relay") == {}
    present = json.loads(_run(relay_venv, (
        "import importlib.util, json; print(json.dumps([n for n in ('device', 'webui', 'cv2', "
        "'ai_edge_litert', 'gpiozero', 'flask') if importlib.util.find_spec(n)]))")))
    assert present == []


def test_breathe_relay_run_stores_and_acks_a_devices_sessions(relay_venv, broker, tmp_path):
    config = write_relay_config(broker, tmp_path)
    command = [str(relay_venv / "bin" / "breathe-relay"), "--config", str(config)]
    relay = subprocess.Popen([*command, "-v", "run", "--instance", "server"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    try:
        # a shared subscription holds nothing for a group before its first member subscribes
        for line in relay.stderr:
            err += line
            if "subscribed to the fleet's messages" in line:
                break
        device = sim_device(broker, "kitchen")
        ids = [uuid.uuid4().hex for _ in range(5)]
        for session_id in ids:
            device.publish("sessions", fleetsim.session_message("kitchen", session_id))
        acks = device.wait_acks(ids, timeout=60)
        device.client.disconnect()
    finally:
        relay.send_signal(signal.SIGTERM)
        err += relay.communicate(timeout=30)[1]
    assert sorted(acks) == sorted(ids), err[-2000:]
    assert all(ack.ok and not ack.duplicate for ack in acks.values())
    assert relay.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    stats = subprocess.run([*command, "stats", "--json"], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["sessions"] == 5
