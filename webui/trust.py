"""Trusting the device on a phone: its CA certificate for download, with short steps per OS,
and the plain-http listener that sends everything else to https.

``breathe web-cert`` makes ``ca.crt`` beside the web certificate (``device.cli.webcert_cmd``).
A phone that trusts it sees the app as a secure site: the service worker registers, the app
installs and works offline. The CA certificate is public (it holds no key), so ``/trust`` and
``/ca.crt`` need no login, and they are served over plain http too: a new phone has to get the
certificate before it can trust the https site.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, current_app, render_template, send_file
from werkzeug.utils import redirect

from webui.lan import web_urls

bp = Blueprint("trust", __name__)

CA_FILE = "ca.crt"
DOWNLOAD_NAME = "breathe-device-ca.crt"
# Served as they are on the plain-http port (the page's own style and script included).
PLAIN_HTTP_PATHS = ("/trust", "/ca.crt", "/static/")


def ca_path() -> Path | None:
    """The device CA next to the web certificate, or None (no https, or not made by web-cert)."""
    web = current_app.config["SETTINGS"].web
    if web.tls_cert is None:
        return None
    path = Path(web.tls_cert).parent / CA_FILE
    return path if path.is_file() else None


def fingerprint(pem: str) -> str:
    """SHA-256 of the certificate, as phones and browsers show it (AA:BB:...)."""
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


@bp.get("/trust")
def page() -> str:
    """How to trust this device on a phone or computer, with the certificate to download."""
    ca = ca_path()
    web = current_app.config["SETTINGS"].web
    host = current_app.config.get("WEB_HOST") or web.host
    port = current_app.config.get("WEB_PORT") or web.port
    return render_template(
        "trust.html", page="trust", has_ca=ca is not None, https=web.tls_cert is not None,
        fingerprint=fingerprint(ca.read_text(encoding="ascii")) if ca else None,
        urls=web_urls("https", host, port))


@bp.get("/ca.crt")
def ca_certificate() -> Any:
    ca = ca_path()
    if ca is None:
        abort(404)
    # This type makes iOS offer the profile and Android the certificate installer.
    return send_file(ca, mimetype="application/x-x509-ca-cert", as_attachment=True,
                     download_name=DOWNLOAD_NAME, max_age=0)


class HttpsRedirect:
    """WSGI app for the plain-http port: the trust page and certificate as they are, every
    other address to the same path on https (307: the method is kept, nothing is cached for
    good, so turning https off later leaves no stuck browser)."""

    def __init__(self, app: Any, https_port: int) -> None:
        self.app, self.https_port = app, https_port

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path.startswith(PLAIN_HTTP_PATHS):
            return self.app(environ, start_response)
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "localhost")
        name = host.rsplit("]", 1)[0] + "]" if host.startswith("[") else host.split(":")[0]
        query = environ.get("QUERY_STRING")
        target = f"https://{name}:{self.https_port}{quote(path)}" + (f"?{query}" if query
                                                                     else "")
        return redirect(target, 307)(environ, start_response)

