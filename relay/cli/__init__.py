"""The relay's command line: ``breathe-relay`` on a server, ``breathe relay`` beside a device."""

from __future__ import annotations

import logging
import sys

from relay.cli.commands import relay


def run() -> None:
    """The console script: ``breathe-relay``. Ctrl-C ends quietly with exit code 130."""
    try:
        relay(prog_name="breathe-relay")
    except KeyboardInterrupt:
        logging.getLogger("breathe").info("interrupted")
        sys.exit(130)


__all__ = ["relay", "run"]
