"""What every command needs from the main group: the settings and the data directory."""

from __future__ import annotations

from pathlib import Path

import click

from common.cli import settings


def data_dir(ctx: click.Context) -> Path:
    """$BREATHE_DATA_DIR if set, else the config's ``device.data_dir``; ``~`` expanded."""
    from common.config import data_dir as resolve

    return resolve(settings(ctx))
