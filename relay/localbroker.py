"""A throwaway mosquitto for tests, benchmarks and the one-box fleet demo, configured from
firmware_config/mosquitto/ (the shipped sample).

The sample's config and ACL are used as written; only what must differ per test run changes:
the port (a free one), the file paths (a temp dir), ``user root`` when run as root (mosquitto
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
from dataclasses import dataclass
from pathlib import Path

from relay.procs import stop_process

SAMPLES = Path(__file__).resolve().parent.parent / "firmware_config" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
RELAY_USER = "relay"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    """mosquitto with the sample's TLS listener, password file and ACL, on a free port."""

    def __init__(self, directory: Path, certs: Certs, *, port: int | None = None) -> None:
        self.directory = directory
        self.certs = certs
        self.port = port or free_port()
        self.host = "localhost"  # the certificate's name
        self.passwords: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.passwd_file = directory / "breathe.passwd"
        self.acl_file = directory / "breathe.acl"
        self.conf_file = directory / "mosquitto.conf"
        self.log_file = directory / "mosquitto.log"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "persist").mkdir(exist_ok=True)
        shutil.copyfile(SAMPLES / "breathe.acl", self.acl_file)
        self.passwd_file.write_text("")
        self._write_conf()

    def _write_conf(self) -> None:
        replace = {
            "/etc/mosquitto/breathe.passwd": str(self.passwd_file),
            "/etc/mosquitto/breathe.acl": str(self.acl_file),
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

    def add_user(self, username: str, password: str | None = None) -> str:
        """Add a broker account (device id, or ``relay``); takes effect at the next start."""
        password = password or f"pw-{username}-{os.urandom(4).hex()}"
        subprocess.run(["mosquitto_passwd", "-b", str(self.passwd_file), username, password],
                       check=True, capture_output=True)
        self.passwords[username] = password
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)  # mosquitto reloads password + ACL files
            time.sleep(0.2)
        return password

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
