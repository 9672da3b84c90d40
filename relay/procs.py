"""Stopping a child process the polite way first: the local broker, anvil and relay processes
that tests, benchmarks and the one-box demos start all stop like this."""

from __future__ import annotations

import signal
import socket
import subprocess


def stop_process(process: subprocess.Popen, timeout: float) -> int | None:
    """SIGTERM (so it can save its state), then SIGKILL if it lingers; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a broker, a database
    or a web server started by a test or a demo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
