"""A throwaway mosquitto for tests, benchmarks and the one-box fleet demo, configured from
firmware_config/mosquitto/ (the shipped sample).

The sample's config is used as written, with the accounts and roles of relay/accounts.py; only
what must differ per test run changes: the port (a free one), the file paths (a temp dir), the
plugin's path on this architecture, ``user root`` when run as root (mosquitto
refuses to drop to a user it cannot write as, see FACTS.md) and the persistence directory. So a
test passing here also proves the sample a fleet operator copies. A real fleet runs its own
broker with the sample installed as its README says.

``Broker`` can be stopped and started again on the same port with its persistent sessions, or
frozen (SIGSTOP) and killed, for the fault tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from relay.accounts import Account, Fleet, LiveAccounts, device_account, operator_account
from relay.accounts import relay_account as relay_account_of
from relay.procs import free_port, stop_process

SAMPLES = Path(__file__).resolve().parent.parent / "firmware_config" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
RELAY_USER = "relay"
ADMIN_USER = "breathe-admin"
DYNSEC_PLUGIN = next(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"),
                     Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"))


@dataclass(frozen=True)
class Certs:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / n for n in
                                  ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=breathe-test-ca", "-keyout", str(ca_key), "-out", str(ca))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
            str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return Certs(ca=ca, cert=cert, key=key)


class Broker:
    """mosquitto with the sample's TLS listener and dynamic-security accounts, on a free port.

    ``add_user(name)`` makes a device account (pinned to client id = device id, its own
    topics only), or, for :data:`RELAY_USER` / ``relay_account=True``, a relay account. Added
    before the start they go into the plugin's JSON file; while running, through the admin
    account on ``$CONTROL`` (no restart, as a fleet operator would)."""

    def __init__(self, directory: Path, certs: Certs, *, port: int | None = None) -> None:
        self.directory = directory
        self.certs = certs
        self.port = port or free_port()
        self.host = "localhost"  # the certificate's name
        self.passwords: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.dynsec_file = directory / "breathe-dynsec.json"
        self.conf_file = directory / "mosquitto.conf"
        self.log_file = directory / "mosquitto.log"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "persist").mkdir(exist_ok=True)
        self.fleet = Fleet()
        self.fleet.add(Account(ADMIN_USER, f"pw-admin-{os.urandom(6).hex()}", "admin"))
        self.fleet.write(self.dynsec_file)
        self._write_conf()

    def _write_conf(self) -> None:
        replace = {
            "/etc/mosquitto/breathe-dynsec.json": str(self.dynsec_file),
            "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so": str(DYNSEC_PLUGIN),
            "/etc/mosquitto/certs/ca.crt": str(self.certs.ca),
            "/etc/mosquitto/certs/server.crt": str(self.certs.cert),
            "/etc/mosquitto/certs/server.key": str(self.certs.key),
            "listener 8883": f"listener {self.port} 127.0.0.1",
        }
        text = (SAMPLES / "mosquitto.conf").read_text()
        for old, new in replace.items():
            assert old in text, f"the sample mosquitto.conf no longer has {old!r}"
            text = text.replace(old, new)
        text += (f"\npersistence_location {self.directory / 'persist'}/\n"
                 f"log_dest file {self.log_file}\nlog_type all\n")
        if os.geteuid() == 0:
            text += "user root\n"
        self.conf_file.write_text(text)

    def add_user(self, username: str, password: str | None = None, *,
                 relay_account: bool = False, client_id: str | None = None) -> str:
        """Add a broker account: a device (username = device id = its only client id) or a
        relay (``RELAY_USER`` or ``relay_account``; pinned to ``client_id`` if given)."""
        password = password or f"pw-{username}-{os.urandom(4).hex()}"
        if relay_account or username == RELAY_USER:
            return self.add_account(relay_account_of(username, password, client_id))
        return self.add_account(device_account(username, password))

    def add_operator(self, username: str, password: str | None = None) -> str:
        """An operator account for the CLI, pinned to ``breathe-operator-<username>``."""
        return self.add_account(operator_account(
            username, password or f"pw-{username}-{os.urandom(4).hex()}"))

    def add_account(self, account: Account) -> str:
        """Add ``account`` to the plugin file (broker stopped) or the running broker."""
        self.fleet.add(account)
        self.passwords[account.username] = account.password
        if self.process is None:
            self.fleet.write(self.dynsec_file)
        else:
            with self.admin() as live:
                live.add(account)
        return account.password

    @contextmanager
    def admin(self) -> Iterator[LiveAccounts]:
        """The admin account connected, for dynamic-security commands."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"admin-{os.urandom(3).hex()}",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(ADMIN_USER, self.fleet_password(ADMIN_USER))
        client.tls_set(ca_certs=str(self.certs.ca))
        client.connect(self.host, self.port)
        client.loop_start()
        try:
            yield LiveAccounts(client)
        finally:
            client.disconnect()
            client.loop_stop()

    def fleet_password(self, username: str) -> str:
        return next(a.password for a in self.fleet.accounts if a.username == username)

    def password_file_for(self, username: str, directory: Path) -> Path:
        """A one-line password file, as [mqtt] password_file expects."""
        path = directory / f"{username}.password"
        path.write_text(self.passwords[username] + "\n")
        path.chmod(0o600)
        return path

    def start(self, timeout: float = 10.0) -> Broker:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_file)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited {self.process.returncode}: {err}"
                                   f"{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {timeout} s")

    def stop(self) -> None:
        """Graceful stop (persistent sessions are written out)."""
        if self.process is None:
            return
        stop_process(self.process, 5)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def kill(self) -> None:
        """Crash it: SIGSTOP then SIGKILL, as a power cut would."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGSTOP)
        self.process.kill()
        self.process.wait(5)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
