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
from test_base_install import _python

from relay import fleetsim

ROOT = Path(__file__).resolve().parents[1]
# the device's own dependencies: a relay server carries none of them
DEVICE_ONLY = ("ai-edge-litert", "opencv-python-headless", "opencv-python",
               "gpiozero", "flask", "flask-wtf", "sqlite-utils", "sdnotify")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def relay_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("relay") / "venv"
    subprocess.run([_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    done = subprocess.run([*pip, str(ROOT / "packaging" / "breathe-relay")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def _python_in(venv: Path, code: str) -> str:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                          text=True, timeout=300, cwd=venv.parent)  # not the checkout
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_relay_installs_without_the_device_and_imports_every_module(relay_venv):
    listed = json.loads(_python_in(relay_venv, (
        "import json, importlib.metadata as m;"
        "print(json.dumps(sorted(d.metadata['Name'].lower() for d in m.distributions())))")))
    assert "breathe-relay" in listed and "breathe" not in listed
    assert [name for name in DEVICE_ONLY if name in listed] == []
    report = json.loads(_python_in(relay_venv, """
import importlib, importlib.util, json, pkgutil
import common, relay, wire
failed = {}
for package in (common, wire, relay):
    assert "site-packages" in package.__file__, package.__file__  # the installed copy
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            importlib.import_module(module.name)
        except Exception as exc:
            failed[module.name] = repr(exc)
absent = [name for name in ("device", "webui", "cv2", "ai_edge_litert", "gpiozero", "flask")
          if importlib.util.find_spec(name) is not None]
print(json.dumps({"failed": failed, "present": absent}))
"""))
    assert report == {"failed": {}, "present": []}


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
