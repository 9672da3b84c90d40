"""The app over HTTPS on the LAN, as a phone that trusted the device's CA sees it.

``breathe web-cert`` makes the CA and the server certificate; Chromium trusts the CA the way a
Linux desktop does, through the NSS database in its HOME (``certutil`` from libnss3-tools), not
through a flag that switches checking off. The device is reached by its ``.local`` name (mapped
to 127.0.0.1 by a host-resolver rule): on plain http such a name is not a secure context and no
service worker would register, so a registered worker and an offline reload prove the trust.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_webui_browser import (
    BREATHE,
    CHROMIUM,
    CHROMIUM_ARGS,
    NAME,
    PASSWORD,
    free_port,
    log_in,
)

NAME_LOCAL = "breathe-test.local"
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not BREATHE.exists() or shutil.which("certutil") is None,
    reason="needs /usr/bin/chromium, the breathe CLI and certutil (apt libnss3-tools)")


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    from device.cli.webcert_cmd import make_certificate
    from device.store import db_path_for, open_db
    from device.store.owner_codes import claim_code
    from webui.security import claim

    root = tmp_path_factory.mktemp("https")
    data_dir = root / "data"
    cert, key = make_certificate(root / "tls", [NAME_LOCAL, "localhost", "127.0.0.1"])
    db = open_db(db_path_for(data_dir))
    try:
        claim(db, claim_code(data_dir), NAME, PASSWORD)
    finally:
        db.close()
    port, plain = free_port(), free_port()
    env = {**os.environ, "BREATHE_DATA_DIR": str(data_dir), "GPIOZERO_PIN_FACTORY": "mock",
           "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin", "BREATHE__WEB__TLS_CERT": str(cert),
           "BREATHE__WEB__TLS_KEY": str(key), "BREATHE__WEB__REDIRECT_PORT": str(plain)}
    env.pop("BREATHE_CONFIG", None)
    log = (root / "run.log").open("wb")
    proc = subprocess.Popen([str(BREATHE), "run", "--no-camera", "--no-sync", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    trusting = ssl.create_default_context(cafile=str(root / "tls" / "ca.crt"))
    deadline = time.monotonic() + 40
    while True:
        try:
            with urllib.request.urlopen(f"https://localhost:{port}/api/health",
                                        context=trusting, timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((root / "run.log").read_text()) from None
            time.sleep(0.2)
    try:
        yield {"url": f"https://{NAME_LOCAL}:{port}", "plain": f"http://{NAME_LOCAL}:{plain}",
               "ca": root / "tls" / "ca.crt", "root": root}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def nss_home(root: Path, ca: Path | None) -> Path:
    """A HOME whose NSS database trusts ``ca`` for websites (or nothing, with None)."""
    home = root / ("home-trusting" if ca else "home-plain")
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    if ca is not None:
        subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "Breathe device CA",
                        "-t", "C,,", "-i", str(ca)], check=True)
    return home


def phone(pw, root: Path, home: Path):
    return pw.chromium.launch_persistent_context(
        str(root / f"profile-{home.name}"), executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {NAME_LOCAL} 127.0.0.1"],
        env={**os.environ, "HOME": str(home)}, viewport={"width": 390, "height": 844},
        is_mobile=True, has_touch=True, device_scale_factor=3)


def test_a_phone_that_trusts_the_ca_installs_the_app_and_uses_it_offline(device):
    from playwright.sync_api import Error, sync_playwright

    root = device["root"]
    with sync_playwright() as pw:
        stranger = phone(pw, root, nss_home(root, None))
        try:
            with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
                stranger.new_page().goto(device["url"] + "/login")
        finally:
            stranger.close()

        ctx = phone(pw, root, nss_home(root, device["ca"]))
        ctx.set_default_timeout(15_000)
        try:
            page = ctx.new_page()
            page.goto(device["plain"] + "/history")  # plain http leads to https
            assert page.url.startswith(device["url"] + "/login")
            page.goto(device["plain"] + "/trust")  # ... except the trust page itself
            assert page.url == device["plain"] + "/trust"
            assert page.inner_text("#ca-fingerprint").count(":") == 31

            log_in(page, SimpleNamespace(url=device["url"]))
            page.wait_for_url(device["url"] + "/")
            worker = page.evaluate("navigator.serviceWorker.ready.then(r => r.active.scriptURL)")
            assert worker == device["url"] + "/sw.js"
            assert page.evaluate("window.isSecureContext")
            page.goto(device["url"] + "/history")
            page.wait_for_function("() => navigator.serviceWorker.controller !== null")
            page.wait_for_load_state("networkidle")
            ctx.set_offline(True)
            try:
                page.reload()
                page.wait_for_selector("#offline-banner")
                assert "History" in page.inner_text("h1")
            finally:
                ctx.set_offline(False)
        finally:
            ctx.close()
