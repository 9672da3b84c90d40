"""``breathe web-cert``: the web app over HTTPS with a certificate made on the device."""

from __future__ import annotations

import json
import ssl
import stat
import subprocess
import urllib.request

import pytest
from click.testing import CliRunner

from device.cli import main
from device.cli.webcert_cmd import make_certificate
from device.config import load_config
from device.daemon import Daemon


def test_the_certificate_names_the_device_and_its_key_is_private(tmp_path):
    cert, key = make_certificate(tmp_path, ["breathe", "breathe.local", "192.168.1.20"])
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:breathe, DNS:breathe.local, IP Address:192.168.1.20" in text
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_an_existing_certificate_is_kept_unless_forced(tmp_path, data_dir):
    first = CliRunner().invoke(main, ["web-cert", "--dir", str(tmp_path), "--name", "a.local"])
    assert first.exit_code == 0, first.output
    assert f'tls_cert = "{tmp_path / "web.crt"}"' in first.stdout
    before = (tmp_path / "web.crt").read_bytes()
    again = CliRunner().invoke(main, ["web-cert", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.output
    assert (tmp_path / "web.crt").read_bytes() == before
    forced = CliRunner().invoke(main, ["web-cert", "--dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0 and (tmp_path / "web.crt").read_bytes() != before


def test_a_bad_name_is_bad_input(tmp_path, data_dir):
    result = CliRunner().invoke(main, ["web-cert", "--dir", str(tmp_path), "--name", "a b"])
    assert result.exit_code == 2 and "'a b'" in result.output
    assert not (tmp_path / "web.crt").exists()


@pytest.mark.usefixtures("clean_env")
def test_the_daemon_serves_https_with_it(tmp_path, data_dir, factory, monkeypatch):
    cert, key = make_certificate(tmp_path / "tls", ["localhost", "127.0.0.1"])
    monkeypatch.setenv("BREATHE__WEB__TLS_CERT", str(cert))
    monkeypatch.setenv("BREATHE__WEB__TLS_KEY", str(key))
    daemon = Daemon(load_config(None), data_dir, camera=False, sync=False, host="127.0.0.1",
                    port=0).start()
    try:
        assert daemon.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(daemon.url + "api/health", context=trusting,
                                    timeout=5) as response:
            assert json.loads(response.read())["status"] in ("ok", "degraded")
        with pytest.raises(urllib.error.URLError):  # a browser that does not trust it yet
            urllib.request.urlopen(daemon.url + "api/health", timeout=5)
    finally:
        daemon.close()
