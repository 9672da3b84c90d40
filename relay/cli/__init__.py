"""The relay's command line: ``breathe-relay`` on a server, ``breathe relay`` beside a device."""

from __future__ import annotations

from common.cli import run_console
from relay.cli.commands import relay


def run() -> None:
    """The console script: ``breathe-relay``."""
    run_console(relay, "breathe-relay")


__all__ = ["relay", "run"]
