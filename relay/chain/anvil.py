"""A local anvil chain from npm's ``@foundry-rs/anvil``: for the demo, the tests and the bench.

anvil prints its dev accounts and ``Listening on HOST:PORT`` when ready; with ``--port 0`` it
picks a free port, which is how tests avoid clashes. Its dev keys come from ``--config-out``
(never hard-coded here). Only the process this module started is ever stopped.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relay.chain.errors import ChainError
from relay.procs import stop_process

ROOT = Path(__file__).resolve().parents[2]
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_LISTENING = re.compile(r"Listening on ([0-9.]+):(\d+)")


def anvil_binary(root: Path = ROOT) -> Path | None:
    """The anvil executable: ``$BREATHE_ANVIL``, else node_modules' package for this platform
    (``@foundry-rs/anvil-<os>-<amd64|arm64>``), else ``anvil`` on PATH; None when absent."""
    override = os.environ.get("BREATHE_ANVIL")
    if override:
        return Path(override) if os.access(override, os.X_OK) else None
    system, arch = platform.system().lower(), _ARCH.get(platform.machine().lower())
    if arch:
        package = root / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}"
        candidate = package / "bin" / "anvil"
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("anvil")
    return Path(found) if found else None


@dataclass
class Anvil:
    """A running anvil: its URL, dev keys and process (``stop()`` or use as a context)."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    private_keys: list[str] = field(repr=False)
    chain_id: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (anvil dumps ``--state`` on the way out), then SIGKILL if it lingers."""
        stop_process(self.process, timeout)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the thread that started us dies, so a killed
    test run leaves no chain behind (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def start_anvil(workdir: Path, *, host: str = "127.0.0.1", port: int = 0,
                chain_id: int = 31337, state: Path | None = None,
                extra_args: Sequence[str] = (), detach: bool = False,
                timeout: float = 20.0) -> Anvil:
    """Start anvil writing its log and config under ``workdir``; return once it listens.

    ``port=0``: a free port. ``state``: load and save the chain there (survives restarts).
    ``detach``: own session, so it outlives the caller (the demo script); otherwise it is
    stopped when the calling thread's process dies, even by SIGKILL.
    """
    binary = anvil_binary()
    if binary is None:
        raise ChainError("anvil not found: run `npm ci` in the project root (package.json has "
                         "@foundry-rs/anvil), or set BREATHE_ANVIL to an anvil executable")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path, config_path = workdir / "anvil.log", workdir / "anvil-config.json"
    config_path.unlink(missing_ok=True)
    args = [str(binary), "--host", host, "--port", str(port), "--chain-id", str(chain_id),
            "--config-out", str(config_path), *extra_args]
    if state is not None:
        args += ["--state", str(state)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=detach,
            preexec_fn=None if detach or sys.platform != "linux" else _die_with_parent)
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace")
        match = _LISTENING.search(text)
        if match and config_path.exists():
            try:
                keys = json.loads(config_path.read_text())["private_keys"]
            except (ValueError, KeyError):
                keys = None  # still being written
            if keys:
                return Anvil(process, match.group(1), int(match.group(2)), keys, chain_id,
                             log_path)
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait()
            tail = "\n".join(text.splitlines()[-5:])
            raise ChainError(f"anvil did not start on {host}:{port} (exit code "
                             f"{process.returncode}); last lines of {log_path}:\n{tail}")
        time.sleep(0.05)
