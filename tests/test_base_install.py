"""The appliance as a new user gets it: ``pip install .`` with no extras, in a fresh venv on the
newest supported Python (3.13 where it exists, as on Raspberry Pi OS Trixie), then the README's
``breathe run --demo`` claimed and used over HTTP like a phone would.

The dev venv the other tests run in has every extra; this one has none, so a module that
imports a dev-only package, a model file left out of the package or a demo photo that comes
from scikit-image shows up here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from relay.procs import free_port

ROOT = Path(__file__).resolve().parents[1]
# what the base install must not carry (issue 12): the appliance imports none of them
HEAVY = ("mediapipe", "jax", "jaxlib", "scipy", "scikit-image", "matplotlib", "pillow",
         "opencv-contrib-python", "opencv-python", "web3", "psycopg")
_CODE = re.compile(r"setup code (\S+)")
_TOKEN = re.compile(r'name="csrf_token"[^>]* value="([^"]+)"')

pytestmark = pytest.mark.slow


def _python() -> str:
    """The interpreter scripts/setup would choose (3.13 here when pyenv has it)."""
    found = subprocess.run([str(ROOT / "scripts" / "find-python")], capture_output=True,
                           text=True, check=False)
    return found.stdout.strip() if found.returncode == 0 else sys.executable


def project_copy(target: Path, *names: str) -> Path:
    """The project's files as a fresh clone has them (pip builds in the source tree, and a
    ``build/`` left by an earlier build would carry modules that no longer exist)."""
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build"))
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def fresh_venv(venv: Path, project: Path) -> Path:
    """A new venv on the Python setup would choose, with ``project`` pip-installed into it."""
    subprocess.run([_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", str(project)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    source = project_copy(tmp_path_factory.mktemp("source"), "pyproject.toml", "README.md",
                          "common", "wire", "device", "webui", "relay")
    return fresh_venv(tmp_path_factory.mktemp("base") / "venv", source)


def _run(venv: Path, code: str) -> str:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                          text=True, timeout=300, cwd=venv.parent)  # not the checkout
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def installed_distributions(venv: Path) -> list[str]:
    return json.loads(_run(venv, (
        "import json, importlib.metadata as m;"
        "print(json.dumps(sorted(d.metadata['Name'].lower() for d in m.distributions())))")))


def import_failures(venv: Path, *packages: str) -> dict[str, str]:
    """Every module of ``packages``, imported from the venv's site-packages: what failed."""
    return json.loads(_run(venv, f"""
import importlib, json, pkgutil
failed = {{}}
for name in {list(packages)!r}:
    package = importlib.import_module(name)
    assert "site-packages" in package.__file__, package.__file__  # the installed copy
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        if not module.name.endswith("__main__"):
            try:
                importlib.import_module(module.name)
            except Exception as exc:
                failed[module.name] = repr(exc)
print(json.dumps(failed))
"""))


def test_the_base_install_has_no_extras_and_imports_every_module(base_venv):
    listed = installed_distributions(base_venv)
    assert "breathe" in listed and "ai-edge-litert" in listed
    assert [name for name in HEAVY if name in listed] == []
    assert import_failures(base_venv, "common", "wire", "device", "webui") == {}
    # the models and photos are inside the installed package, checked against their pins
    _run(base_venv, "from device.vision.models import MODELS, model_path\n"
                    "[model_path(name) for name in MODELS]\n"
                    "from device.simulator.scene import load_photo\n"
                    "assert load_photo('grace_hopper').mask.max() > 0.9")


def test_a_missing_extra_or_an_altered_model_is_named_with_exit_2(base_venv, tmp_path):
    from device.simulator.synth import ScenarioSpec, write_video

    video = tmp_path / "clip.mp4"
    write_video(ScenarioSpec(name="clip", duration=2, fps=10, width=320, height=240), video)
    analyze = [str(base_venv / "bin" / "breathe"), "analyze", str(video)]
    done = subprocess.run([*analyze, "--plot", str(tmp_path / "out.png")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert "pip install 'breathe[plot]'" in done.stderr and "--plot" in done.stderr
    assert done.stderr.count("\n") <= 2, done.stderr  # one line, no traceback
    assert not (tmp_path / "out.png").exists()
    # a model file damaged on the SD card: refused by its sha256, the fix named
    [model] = base_venv.glob("lib/python3.*/site-packages/device/vision/tflite/"
                             "pose_landmark_full.tflite")
    original = model.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    model.write_bytes(bytes(damaged))
    try:
        done = subprocess.run(analyze, capture_output=True, text=True, timeout=300)
    finally:
        model.write_bytes(original)
    assert done.returncode == 2
    assert str(model) in done.stderr and "sha256" in done.stderr and "reinstall" in done.stderr
    assert "Traceback" not in done.stderr


def _wait_for_code(log: Path, proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        found = _CODE.search(log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no setup code in the log:\n{log.read_text()[-3000:]}")


def test_run_demo_claims_and_runs_a_one_minute_session_over_http(base_venv, tmp_path):
    data, log = tmp_path / "data", tmp_path / "run.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BREATHE", "GPIOZERO"))}
    env.update(BREATHE_DATA_DIR=str(data), HOME=str(tmp_path))
    with log.open("w") as out:
        proc = subprocess.Popen([str(base_venv / "bin" / "breathe"), "run", "--demo", "--port",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    web = requests.Session()
    health: list[int] = []

    def check_health() -> dict:
        answer = web.get(f"{base}/api/health", timeout=10)
        health.append(answer.status_code)
        return answer.json()

    try:
        code = _wait_for_code(log, proc, 120)
        page = web.get(f"{base}/claim", timeout=10)
        token = _TOKEN.search(page.text).group(1)
        claimed = web.post(f"{base}/claim", data={
            "csrf_token": token, "code": code, "display_name": "Ada",
            "password": "correct horse battery", "confirm": "correct horse battery"},
            allow_redirects=False, timeout=30)
        assert claimed.status_code == 302, claimed.text[-2000:]
        csrf = web.get(f"{base}/api/csrf", timeout=10).json()["csrf_token"]
        started = web.post(f"{base}/api/session", json={"pattern_id": "box", "minutes": 1},
                           headers={"X-CSRFToken": csrf}, timeout=30)
        assert started.status_code == 201, started.text
        rates = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            check_health()
            state = web.get(f"{base}/api/session", timeout=10).json()
            if state["status"] not in ("running", "paused"):
                break
            rates.append(state["rate"])
            time.sleep(1.0)
        else:
            raise AssertionError("the one-minute session did not end")
        assert state["status"] == "completed"
        assert health and set(health) == {200}
        assert check_health()["status"] in ("ok", "degraded")
        assert any(r is not None for r in rates), "the demo person's breath was never measured"
        [item] = web.get(f"{base}/api/sessions", timeout=10).json()["sessions"]
        assert item["pattern_id"] == "box" and item["status"] == "completed"
        assert 55 <= item["duration_s"] <= 75
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code_at_exit = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code_at_exit == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    db = sqlite3.connect(data / "breathe.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
    finally:
        db.close()
