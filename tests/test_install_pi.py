"""scripts/install-pi: the plan it prints, the files it writes into a prefix, idempotence.

``--root DIR`` writes every file under DIR and only prints what would touch the machine (apt,
users, the venv, systemctl); the real install runs in tests/test_arm64.py's arm64 chroot.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from common.config import check_config, load_config
from common.config.models import PacingSettings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-pi"
FRAGMENT = ROOT / "firmware_config" / "config.txt"
BEGIN = "# >>> breathe (scripts/install-pi): camera and LED PWM >>>"
END = "# <<< breathe <<<"
PI_CONFIG = "dtparam=audio=on\n[pi4]\narm_boost=1\n[all]\n"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def install(*args: str, check: bool = True, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def prefix(tmp_path):
    """An empty target with a Raspberry Pi OS boot partition's config.txt."""
    root = tmp_path / "pi"
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/config.txt").write_text(PI_CONFIG)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind, mode, mtime and content (or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = ("link", os.readlink(path))
        elif path.is_dir():
            what = ("dir",)
        else:
            what = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        out[str(path.relative_to(root))] = (*what, st.st_mode, st.st_mtime_ns)
    return out


def test_dry_run_prints_every_step_and_writes_nothing(prefix):
    before = snapshot(prefix)
    out = install("--dry-run", "--root", str(prefix)).stdout
    assert snapshot(prefix) == before
    for expected in [
        "apt-get install -y --no-install-recommends python3 python3-venv python3-pip "
        "ca-certificates\n",
        "python3-picamera2 python3-lgpio (each when the Raspberry Pi archive has it)",
        "useradd --system --user-group --home-dir /var/lib/breathe",
        "usermod --append --groups gpio,video breathe",
        "python3 -m venv --system-site-packages /opt/breathe/venv",
        f"/opt/breathe/venv/bin/pip install {ROOT}",
        "would write /etc/breathe/device.toml (mode 0644)",
        "would write /etc/breathe/mqtt-password (mode 0600)",
        "breathe config check /etc/breathe/device.toml",
        "would update /boot/firmware/config.txt",
        "would write /etc/systemd/system/breathe.service (mode 0644)",
        "enable breathe.service",
        "BREATHE_DATA_DIR=/var/lib/breathe /opt/breathe/venv/bin/breathe claim-code",
        "dry run: nothing was changed",
    ]:
        assert expected in out, f"missing from the plan: {expected}\n{out}"


@pytest.mark.skipif(os.geteuid() != 0 or Path("/etc/breathe").exists()
                    or Path("/opt/breathe").exists(),
                    reason="needs root and a machine without breathe installed")
def test_dry_run_on_this_machine_changes_nothing():
    out = install("--dry-run").stdout
    assert not Path("/etc/breathe").exists() and not Path("/opt/breathe").exists()
    assert "would run: python3 -m venv --system-site-packages /opt/breathe/venv" in out
    # plain Debian has no Raspberry Pi archive: reported and skipped, not fatal
    policy = subprocess.run(["apt-cache", "policy", "python3-picamera2"], capture_output=True,
                            text=True).stdout
    if "Candidate:" not in policy or "Candidate: (none)" in policy:
        assert "skipped python3-picamera2: not in this system's apt sources" in out


def test_install_into_a_prefix_writes_exactly_these_files(prefix):
    out = install("--root", str(prefix)).stdout
    files = {p for p, v in snapshot(prefix).items() if v[0] != "dir"}
    assert files == {
        "boot/firmware/config.txt",
        "etc/breathe/device.toml",
        "etc/breathe/mqtt-password",
        "etc/systemd/system/breathe.service",
        "etc/systemd/system/multi-user.target.wants/breathe.service",
        "opt/breathe/README.md",
    }
    unit = prefix / "etc/systemd/system/breathe.service"
    assert unit.read_bytes() == (ROOT / "systemd/breathe.service").read_bytes()
    assert oct(unit.stat().st_mode & 0o777) == "0o644"
    wants = prefix / "etc/systemd/system/multi-user.target.wants/breathe.service"
    assert os.readlink(wants) == "/etc/systemd/system/breathe.service"
    password = prefix / "etc/breathe/mqtt-password"
    assert password.read_bytes() == b"" and oct(password.stat().st_mode & 0o777) == "0o600"
    data = prefix / "var/lib/breathe"
    assert data.is_dir() and oct(data.stat().st_mode & 0o777) == "0o750"
    # the machine-side steps are printed, not done
    assert "planned: useradd --system" in out
    assert "planned: python3 -m venv --system-site-packages /opt/breathe/venv" in out


def test_installed_settings_are_the_shipped_defaults_with_the_systemd_data_dir(prefix):
    install("--root", str(prefix))
    installed = prefix / "etc/breathe/device.toml"
    assert check_config(installed, env={}) == []
    settings = load_config(installed, env={})
    assert settings.device.data_dir == Path("/var/lib/breathe")
    shipped = (ROOT / "firmware_config/device.toml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(shipped, installed.read_text().splitlines(), strict=True)
               if a != b]
    assert changed == [('data_dir = "~/.local/share/breathe"', 'data_dir = "/var/lib/breathe"')]


def test_firmware_fragment_is_appended_once_after_the_existing_settings(prefix):
    install("--root", str(prefix))
    text = (prefix / "boot/firmware/config.txt").read_text()
    assert text == f"{PI_CONFIG}{BEGIN}\n{FRAGMENT.read_text()}{END}\n"
    install("--root", str(prefix))
    assert (prefix / "boot/firmware/config.txt").read_text().count(BEGIN) == 1


def test_second_run_changes_nothing(prefix):
    install("--root", str(prefix))
    before = snapshot(prefix)
    out = install("--root", str(prefix)).stdout
    assert snapshot(prefix) == before
    assert "nothing to do: everything was already installed" in out
    assert "planned: systemctl daemon-reload" not in out  # nothing to restart


def test_existing_settings_and_password_are_never_overwritten(prefix):
    etc = prefix / "etc/breathe"
    etc.mkdir(parents=True)
    (etc / "device.toml").write_text('[device]\nid = "kitchen"\n')
    (etc / "mqtt-password").write_text("s3cret\n")
    out = install("--root", str(prefix)).stdout
    assert (etc / "device.toml").read_text() == '[device]\nid = "kitchen"\n'
    assert (etc / "mqtt-password").read_text() == "s3cret\n"
    assert "/etc/breathe/device.toml: kept as it is" in out


def test_an_edited_block_is_replaced_in_place_of_a_second_copy(prefix):
    config = prefix / "boot/firmware/config.txt"
    config.write_text(f"{PI_CONFIG}{BEGIN}\ndtoverlay=pwm,pin=12,func=4\n{END}\nhdmi_group=1\n")
    install("--root", str(prefix))
    text = config.read_text()
    assert text == (f"{PI_CONFIG}hdmi_group=1\n{BEGIN}\n{FRAGMENT.read_text()}{END}\n")


def test_a_changed_unit_is_rewritten(prefix):
    install("--root", str(prefix))
    unit = prefix / "etc/systemd/system/breathe.service"
    unit.write_text(unit.read_text().replace("WatchdogSec=30", "WatchdogSec=5"))
    out = install("--root", str(prefix)).stdout
    assert unit.read_bytes() == (ROOT / "systemd/breathe.service").read_bytes()
    assert "planned: systemctl daemon-reload; systemctl restart breathe.service" in out


def test_without_a_pi_boot_partition_the_firmware_step_is_skipped(tmp_path):
    out = install("--root", str(tmp_path / "debian")).stdout
    assert "skipped: no /boot/firmware/config.txt" in out
    assert not (tmp_path / "debian/boot").exists()


def test_unknown_option_is_refused():
    result = install("--frobnicate", check=False)
    assert result.returncode == 2
    assert "unknown option '--frobnicate'" in result.stderr


def test_fragment_turns_on_the_camera_and_pwm_on_the_default_led_pin():
    settings = {}
    for line in FRAGMENT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings[key] = value
    assert settings["camera_auto_detect"] == "1"
    overlay = re.fullmatch(r"pwm,pin=(\d+),func=(\d+)", settings["dtoverlay"])
    assert overlay, settings["dtoverlay"]
    led_pin = PacingSettings().led_pins[0]
    assert int(overlay[1]) == led_pin == 18
    assert overlay[2] == "2"  # ALT5: PWM0 on GPIO18


def test_https_makes_a_certificate_and_the_settings_use_it(prefix):
    """--https: a self-signed certificate (breathe web-cert) readable by the service, and the
    new device.toml serving the web app with it."""
    out = install("--root", str(prefix), "--https").stdout
    assert "breathe web-cert --dir /etc/breathe/tls" in out
    assert "chgrp breathe /etc/breathe/tls/web.key" in out
    toml = tomllib.loads((prefix / "etc/breathe/device.toml").read_text())
    assert toml["web"]["tls_cert"] == "/etc/breathe/tls/web.crt"
    assert toml["web"]["tls_key"] == "/etc/breathe/tls/web.key"
    # https on 8443, and plain http on 8080 (what phones were told) sends them there
    assert (toml["web"]["port"], toml["web"]["redirect_port"]) == (8443, 8080)
    assert toml["mqtt"]["port"] == 1883  # only [web]'s port moved
    plain = prefix.parent / "plain"
    (plain / "boot/firmware").mkdir(parents=True)
    install("--root", str(plain))
    assert tomllib.loads((plain / "etc/breathe/device.toml").read_text())["web"][
        "tls_cert"] == ""  # without --https: plain http, as before


def _os_release(tmp_path: Path, codename: str) -> dict[str, str]:
    path = tmp_path / f"os-release-{codename}"
    path.write_text(f'PRETTY_NAME="Debian ({codename})"\nID=debian\nVERSION_CODENAME={codename}\n')
    return {"OS_RELEASE": str(path)}


def _python_on_path(tmp_path: Path, version: str) -> dict[str, str] | None:
    """PATH whose python3 is a real Python ``version`` (from pyenv), or None if there is none."""
    found = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
                   .glob(f"versions/{version}*/bin/python{version}"))
    if not found:
        return None
    bin_dir = tmp_path / f"py{version}"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(found[-1])
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("codename", ["bullseye", "buster", "sid-unknown"])
def test_an_unsupported_os_is_refused_in_one_line_with_exit_2(tmp_path, codename):
    result = install("--dry-run", check=False, env=_os_release(tmp_path, codename))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"install-pi: {codename} is not supported: Breathe installs on Raspberry Pi OS (or "
        "Debian) trixie bookworm; flash Raspberry Pi OS Trixie 64-bit")
    assert "would run" not in result.stdout  # refused before planning anything


def test_an_unsupported_python_is_refused_in_one_line_with_exit_2(tmp_path):
    path = _python_on_path(tmp_path, "3.10")
    if path is None:
        pytest.skip("no Python 3.10 in pyenv to stand for an old system python3")
    result = install("--dry-run", check=False, env={**_os_release(tmp_path, "trixie"), **path})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("install-pi: the system's python3 is 3.10; Breathe "
                                            "needs one of 3.13 3.12 3.11")


@pytest.mark.parametrize(("codename", "version"), [("trixie", "3.13"), ("bookworm", "3.11")])
def test_trixie_and_bookworm_with_their_python_pass_the_checks(tmp_path, codename, version):
    path = _python_on_path(tmp_path, version)
    if path is None:
        pytest.skip(f"no Python {version} in pyenv")
    result = install("--dry-run", env={**_os_release(tmp_path, codename), **path})
    assert f"system: {codename} on" in result.stdout
    assert f"python3: {version}" in result.stdout
    assert "dry run: nothing was changed" in result.stdout
