"""``breathe web-cert``: the device's own certificate authority and a web certificate it signs.

On the home network nobody can hand the device a certificate from a public CA, and browsers
will not install an app (or run its service worker) from a certificate they merely clicked
through. So setup makes a small CA of the device's own (``ca.crt``, kept for years: a phone
trusts it once) and a server certificate signed by it (``web.crt``) for every name a phone will
use: the hostname, ``<hostname>.local`` (mDNS), localhost and every LAN address. The web app
offers ``ca.crt`` for download at ``/trust`` with short steps per phone. A new server
certificate (``--force``, after the device got a new address) is signed by the same CA, so
phones keep trusting it; ``--new-ca`` starts over (every phone must trust the new CA).

``openssl`` (on every Raspberry Pi OS image) does the work, so no extra Python package is needed.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import click

from common.errors import BadInput, BreatheError

CA_DAYS = 3650
# Apple refuses a server certificate valid longer than 825 days even under a CA the owner
# installed; Android and desktop browsers accept it.
SERVER_DAYS = 825
CA_NAME, CA_KEY, CERT_NAME, KEY_NAME = "ca.crt", "ca.key", "web.crt", "web.key"


def default_names() -> list[str]:
    """The hostname, its mDNS name, localhost, 127.0.0.1 and every LAN address."""
    from webui.lan import host_names, lan_addresses

    return list(dict.fromkeys([*host_names(), "localhost", "127.0.0.1", *lan_addresses()]))


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


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BreatheError("openssl is not installed (apt-get install openssl)")
    done = subprocess.run([openssl, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BreatheError(f"openssl could not make the certificate: {done.stderr.strip()}")


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(path))
    path.chmod(0o600)


def make_ca(directory: Path, label: str) -> Path:
    """``ca.crt`` + ``ca.key`` (0600): a CA that can sign server certificates and nothing else."""
    cert, key = directory / CA_NAME, directory / CA_KEY
    _new_key(key)
    _openssl("req", "-x509", "-new", "-key", str(key), "-days", str(CA_DAYS),
             "-subj", f"/O=Breathe/CN=Breathe device {label}",
             "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", str(cert))
    cert.chmod(0o644)
    return cert


def make_certificate(directory: Path, names: list[str], *, force: bool = False,
                     new_ca: bool = False) -> tuple[Path, Path]:
    """Write ``web.crt`` and ``web.key`` (0600) signed by the device CA in ``directory``
    (made first if missing, or with ``new_ca``); never replace a certificate unless ``force``."""
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    if not force and (cert.exists() or key.exists()):
        raise BadInput(f"{cert} or {key} already exists; use --force to replace them (phones "
                       "that trust this device's CA keep trusting the new one)")
    san = subject_alt_names(names)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / CA_NAME, directory / CA_KEY
    if new_ca or not (ca_cert.exists() and ca_key.exists()):
        make_ca(directory, names[0])
    old_umask = os.umask(0o077)
    try:
        _new_key(key)
        with tempfile.TemporaryDirectory() as work:
            csr, ext = Path(work) / "web.csr", Path(work) / "web.ext"
            ext.write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                           "keyUsage=critical,digitalSignature\n"
                           "extendedKeyUsage=serverAuth\n", encoding="ascii")
            _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={names[0]}",
                     "-out", str(csr))
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey",
                     str(ca_key), "-set_serial", str(secrets.randbits(63)),
                     "-days", str(SERVER_DAYS), "-extfile", str(ext), "-out", str(cert))
    finally:
        os.umask(old_umask)
    cert.chmod(0o644)
    return cert, key


@click.command("web-cert")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where to write ca.crt, web.crt and their keys (default: "
                                 "DATA_DIR/tls).")
@click.option("--name", "names", multiple=True,
              help="Hostname or IP the phone will use (repeatable; default: this host's name, "
                   "NAME.local, localhost and every LAN address).")
@click.option("--force", is_flag=True, help="Replace an existing web certificate (same CA).")
@click.option("--new-ca", is_flag=True, help="Also make a new CA: every phone must trust it "
                                             "again.")
@click.pass_context
def web_cert(ctx: click.Context, directory: Path | None, names: tuple[str, ...],
             force: bool, new_ca: bool) -> None:
    """Make the device's CA and an HTTPS certificate it signs; print the [web] lines to use.

    Phones trust the CA once, from the web app's /trust page (ca.crt, with steps for
    Android, iOS and desktop browsers); the app then installs and works offline.
    """
    from device.cli.context import data_dir

    target = directory or data_dir(ctx) / "tls"
    chosen = list(names) or default_names()
    cert, key = make_certificate(target, chosen, force=force, new_ca=new_ca)
    click.echo(f'[web]\ntls_cert = "{cert}"\ntls_key = "{key}"\nport = 8443\n'
               "redirect_port = 8080")
    click.echo(f"certificate for {', '.join(chosen)}, signed by {target / CA_NAME}; add the "
               "lines above to the config and restart, then open http://<device>:8080/trust "
               "on each phone to trust the device's CA", err=True)


COMMANDS = [web_cert]
