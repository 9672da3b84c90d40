"""``breathe web-cert``: the web app over HTTPS with a certificate made on the device."""

from __future__ import annotations

import json
import ssl
import stat
import subprocess
import urllib.request

import pytest
from click.testing import CliRunner

from common.config import load_config
from device.cli import main
from device.cli.webcert_cmd import make_certificate
from device.daemon import Daemon


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_the_certificate_names_the_device_and_its_key_is_private(tmp_path):
    cert, key = make_certificate(tmp_path, ["breathe", "breathe.local", "192.168.1.20"])
    text = openssl("x509", "-in", str(cert), "-noout", "-text")
    assert "DNS:breathe, DNS:breathe.local, IP Address:192.168.1.20" in text
    assert "TLS Web Server Authentication" in text and "CA:FALSE" in text
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600


def test_it_is_signed_by_the_devices_own_ca(tmp_path):
    cert, _ = make_certificate(tmp_path, ["breathe.local"])
    ca = tmp_path / "ca.crt"
    assert openssl("verify", "-CAfile", str(ca), str(cert)).strip().endswith("OK")
    ca_text = openssl("x509", "-in", str(ca), "-noout", "-text")
    assert "CA:TRUE, pathlen:0" in ca_text and "Certificate Sign" in ca_text
    issuer = openssl("x509", "-in", str(cert), "-noout", "-issuer")
    assert "Breathe device" in issuer


def test_by_default_it_names_the_local_name_and_every_lan_address(tmp_path, monkeypatch):
    from device.cli import webcert_cmd
    from webui import lan

    monkeypatch.setattr(lan, "lan_addresses", lambda: ["192.168.1.20", "10.0.0.7"])
    monkeypatch.setattr(lan, "host_names", lambda: ["breathe", "breathe.local"])
    cert, _ = make_certificate(tmp_path, webcert_cmd.default_names())
    text = openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    for name in ("DNS:breathe.local", "IP Address:192.168.1.20", "IP Address:10.0.0.7",
                 "DNS:localhost", "IP Address:127.0.0.1"):
        assert name in text


def test_a_new_certificate_keeps_the_ca_unless_asked(tmp_path):
    make_certificate(tmp_path, ["a.local"])
    ca = (tmp_path / "ca.crt").read_bytes()
    cert, _ = make_certificate(tmp_path, ["a.local", "192.168.1.30"], force=True)
    assert (tmp_path / "ca.crt").read_bytes() == ca  # phones that trust it keep trusting
    assert openssl("verify", "-CAfile", str(tmp_path / "ca.crt"), str(cert)).strip().endswith("OK")
    make_certificate(tmp_path, ["a.local"], force=True, new_ca=True)
    assert (tmp_path / "ca.crt").read_bytes() != ca


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
        trusting = ssl.create_default_context(cafile=str(cert.parent / "ca.crt"))
        with urllib.request.urlopen(daemon.url + "api/health", context=trusting,
                                    timeout=5) as response:
            assert json.loads(response.read())["status"] in ("ok", "degraded")
        with pytest.raises(urllib.error.URLError):  # a browser that does not trust it yet
            urllib.request.urlopen(daemon.url + "api/health", timeout=5)
    finally:
        daemon.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.usefixtures("clean_env")
def test_plain_http_leads_to_https_and_offers_the_ca(tmp_path, data_dir, factory, monkeypatch):
    cert, key = make_certificate(tmp_path / "tls", ["localhost", "127.0.0.1"])
    monkeypatch.setenv("BREATHE__WEB__TLS_CERT", str(cert))
    monkeypatch.setenv("BREATHE__WEB__TLS_KEY", str(key))
    monkeypatch.setenv("BREATHE__WEB__REDIRECT_PORT", str(free_port()))
    daemon = Daemon(load_config(None), data_dir, camera=False, sync=False, host="127.0.0.1",
                    port=0).start()
    try:
        plain = f"http://127.0.0.1:{daemon.redirect_port}"
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as moved:
            opener.open(plain + "/history?x=1", timeout=5)
        assert moved.value.code == 307
        assert moved.value.headers["Location"] == f"https://127.0.0.1:{daemon.port}/history?x=1"
        with urllib.request.urlopen(plain + "/ca.crt", timeout=5) as download:
            assert download.headers["Content-Type"] == "application/x-x509-ca-cert"
            assert download.read() == (cert.parent / "ca.crt").read_bytes()
        with urllib.request.urlopen(plain + "/trust", timeout=5) as page:
            html = page.read().decode()
        for words in ("Android", "iPhone", "Computer", f"https://127.0.0.1:{daemon.port}/"):
            assert words in html
        # every address a phone may use is logged, and where a new phone starts
        assert f"web app: https://127.0.0.1:{daemon.port}/" in daemon.notes
        assert any(f"{plain}/trust" in note for note in daemon.notes)
    finally:
        daemon.close()


def test_the_log_lists_every_lan_address_when_listening_everywhere(monkeypatch):
    from webui import lan

    monkeypatch.setattr(lan, "lan_addresses", lambda: ["192.168.1.20", "10.0.0.7"])
    monkeypatch.setattr(lan, "host_names", lambda: ["breathe", "breathe.local"])
    assert lan.web_urls("https", "0.0.0.0", 8443) == [
        "https://breathe.local:8443/", "https://192.168.1.20:8443/", "https://10.0.0.7:8443/",
        "https://127.0.0.1:8443/"]
    assert lan.web_urls("http", "192.168.1.20", 8080) == ["http://192.168.1.20:8080/"]


def test_lan_addresses_are_this_machines_own():
    import socket

    from webui.lan import lan_addresses

    addresses = lan_addresses()
    assert "127.0.0.1" not in addresses
    for address in addresses:  # each one can be listened on: it is really ours
        with socket.socket() as sock:
            sock.bind((address, 0))
