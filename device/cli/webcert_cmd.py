"""``breathe web-cert``: a self-signed certificate so the web app can be served over HTTPS.

On the home network nobody can hand the device a certificate from a public CA, so setup makes
its own (``openssl``, present on every Raspberry Pi OS image) for the names a phone will use:
the hostname, ``<hostname>.local`` (mDNS), localhost and the machine's addresses. The browser
asks once to trust it; after that the service worker and the login cookie's Secure flag work on
the LAN as they do on localhost.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from pathlib import Path

import click

from device.errors import BadInput, BreatheError

DAYS = 3650


def default_names() -> list[str]:
    """The hostname, its mDNS name, localhost, 127.0.0.1 and the outbound LAN address."""
    host = socket.gethostname()
    names = [host, f"{host}.local", "localhost", "127.0.0.1"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the interface
            names.append(probe.getsockname()[0])
    except OSError:
        pass
    return list(dict.fromkeys(names))


def subject_alt_names(names: list[str]) -> str:
    entries = []
    for name in names:
        try:
            entries.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            if not name or any(c.isspace() or c in ",/" for c in name):
                raise BadInput(f"--name: {name!r} is not a hostname or IP address") from None
            entries.append(f"DNS:{name}")
    return ",".join(entries)


def make_certificate(directory: Path, names: list[str], *, force: bool = False
                     ) -> tuple[Path, Path]:
    """Write ``web.crt`` and ``web.key`` (mode 0600) in ``directory``; never overwrite unless
    ``force`` (a phone that trusted the old one would have to trust it again)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BreatheError("openssl is not installed (apt-get install openssl)")
    cert, key = directory / "web.crt", directory / "web.key"
    if not force and (cert.exists() or key.exists()):
        raise BadInput(f"{cert} or {key} already exists; use --force to replace them")
    directory.mkdir(parents=True, exist_ok=True)
    san = subject_alt_names(names)
    old_umask = os.umask(0o077)
    try:
        done = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", str(DAYS), "-subj", f"/CN={names[0]}", "-addext",
             f"subjectAltName={san}", "-keyout", str(key), "-out", str(cert)],
            capture_output=True, text=True)
    finally:
        os.umask(old_umask)
    if done.returncode != 0:
        raise BreatheError(f"openssl could not make the certificate: {done.stderr.strip()}")
    key.chmod(0o600)
    cert.chmod(0o644)
    return cert, key


@click.command("web-cert")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where to write web.crt and web.key (default: DATA_DIR/tls).")
@click.option("--name", "names", multiple=True,
              help="Hostname or IP the phone will use (repeatable; default: this host's name, "
                   "NAME.local, localhost and its addresses).")
@click.option("--force", is_flag=True, help="Replace an existing certificate.")
@click.pass_context
def web_cert(ctx: click.Context, directory: Path | None, names: tuple[str, ...],
             force: bool) -> None:
    """Make a self-signed certificate for HTTPS and print the [web] lines that use it."""
    from device.cli.context import data_dir

    target = directory or data_dir(ctx) / "tls"
    cert, key = make_certificate(target, list(names) or default_names(), force=force)
    click.echo(f'[web]\ntls_cert = "{cert}"\ntls_key = "{key}"')
    click.echo(f"certificate for {', '.join(names or default_names())}; add the lines above "
               "to the config and restart", err=True)


COMMANDS = [web_cert]
