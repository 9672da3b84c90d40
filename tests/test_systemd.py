"""The unit files: systemd itself checks them, and they carry what issue 8 asks for.

``systemd-analyze verify`` resolves ExecStart= and every dependency on the machine it runs on,
where /opt/breathe does not exist. So each unit is verified inside a throwaway root holding
this machine's own unit directory, the unit as it would be installed and an executable at its
ExecStart path: everything else (syntax, unknown keys, bad values, specifiers, missing
dependencies) is systemd's own check. systemd exits 0 on unknown keys, so any output fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")

needs_systemd = pytest.mark.skipif(
    not Path(ANALYZE).exists() or not SYSTEM_UNITS.is_dir(),
    reason="systemd-analyze and /usr/lib/systemd/system are needed (apt-get install systemd)")


def directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every line, in order; repeated keys stay separate."""
    section, out = "", []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(path: Path, section: str, key: str) -> list[str]:
    return [v for s, k, v in directives(path) if s == section and k == key]


def one(path: Path, section: str, key: str) -> str:
    found = values(path, section, key)
    assert len(found) == 1, f"{path.name}: [{section}] {key} set {len(found)} times"
    return found[0]


def verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``unit`` installed into a root under ``tmp_path``."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    installed = root / "etc/systemd/system" / unit.name
    installed.parent.mkdir(parents=True)
    shutil.copy(unit, installed)
    program = one(unit, "Service", "ExecStart").split()[0]
    stub = root / program.lstrip("/")
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return subprocess.run(
        [ANALYZE, "verify", "--man=no", f"--root={root}", f"/etc/systemd/system/{unit.name}"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)


@needs_systemd
@pytest.mark.parametrize("name", ["breathe.service", "breathe-relay.service"])
def test_systemd_analyze_verify_accepts_the_unit(name, tmp_path):
    result = verify(UNITS / name, tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_systemd
@pytest.mark.parametrize("mistake, expected", [
    (("Type=notify", "Type=notfy"), "Failed to parse service type"),
    (("WatchdogSec=30", "WatchdogSeconds=30"), "Unknown key"),
    (("After=network-online.target", "After=network-online.target\nRequires=nothere.service"),
     "nothere.service"),
])
def test_verify_catches_real_mistakes(mistake, expected, tmp_path):
    """The check above is not blind: a typo in a copy of the unit is reported."""
    broken = tmp_path / "breathe.service"
    text = (UNITS / "breathe.service").read_text()
    assert mistake[0] in text
    broken.write_text(text.replace(mistake[0], mistake[1], 1))
    result = verify(broken, tmp_path / "v")
    assert expected in result.stdout + result.stderr


@needs_systemd
def test_verify_catches_a_missing_program(tmp_path):
    unit = tmp_path / "breathe.service"
    unit.write_text((UNITS / "breathe.service").read_text())
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(unit, root / "etc/systemd/system")
    result = subprocess.run([ANALYZE, "verify", "--man=no", f"--root={root}",
                             "/etc/systemd/system/breathe.service"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "/opt/breathe/venv/bin/breathe is not executable" in result.stderr


def test_device_unit_has_what_the_appliance_needs():
    unit = UNITS / "breathe.service"
    s = "Service"
    assert one(unit, s, "Type") == "notify"
    assert int(one(unit, s, "WatchdogSec")) >= 10  # pings every half of it
    assert one(unit, s, "Restart") == "on-failure"
    assert int(one(unit, "Unit", "StartLimitIntervalSec")) > 0
    assert int(one(unit, "Unit", "StartLimitBurst")) > 0
    assert one(unit, s, "User") == "breathe"
    assert one(unit, s, "SupplementaryGroups").split() == ["gpio", "video"]
    assert one(unit, s, "StateDirectory") == "breathe"
    assert one(unit, s, "WorkingDirectory") == "/var/lib/breathe"  # lgpio writes here
    assert one(unit, s, "ProtectSystem") == "strict"
    assert one(unit, s, "NoNewPrivileges") == "yes"
    assert values(unit, s, "PrivateDevices") in ([], ["no"])  # camera and GPIO are devices
    assert one(unit, s, "DevicePolicy") == "closed"
    allowed = {v.split()[0] for v in values(unit, s, "DeviceAllow")}
    assert allowed == {"char-gpiochip", "char-video4linux", "char-media", "char-dma_heap"}
    assert one(unit, s, "ExecStart") == "/opt/breathe/venv/bin/breathe run"
    env = dict(v.split("=", 1) for v in values(unit, s, "Environment"))
    assert env["BREATHE_CONFIG"] == "/etc/breathe/device.toml"
    assert env["BREATHE_DATA_DIR"] == "/var/lib/breathe"
    # the MQTT password reaches the daemon only through its credentials directory
    name, _, source = one(unit, s, "LoadCredential").partition(":")
    assert (name, source) == ("mqtt-password", "/etc/breathe/mqtt-password")
    # ...and only once the config names it: a fresh install has no MQTT username, and a
    # password file without one is a config error, so the unit must not force one in
    assert "BREATHE__MQTT__PASSWORD_FILE" not in env
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_relay_unit_runs_the_relay_hardened():
    unit = UNITS / "breathe-relay.service"
    s = "Service"
    assert one(unit, s, "ExecStart").startswith("/opt/breathe/venv/bin/breathe relay")
    assert one(unit, s, "Restart") == "on-failure"
    assert int(one(unit, "Unit", "StartLimitBurst")) > 0
    assert one(unit, s, "StateDirectory") == "breathe-relay"
    assert one(unit, s, "ProtectSystem") == "strict"
    assert one(unit, s, "NoNewPrivileges") == "yes"
    assert one(unit, s, "PrivateDevices") == "yes"  # a server process needs no devices
    credentials = {v.split(":")[0] for v in values(unit, s, "LoadCredential")}
    assert credentials == {"mqtt-password", "minter-key"}
