"""What every command needs from the main group: the settings and the data directory."""

from __future__ import annotations

import os
from pathlib import Path

import click

DATA_DIR_ENV = "BREATHE_DATA_DIR"  # a shortcut for BREATHE__DEVICE__DATA_DIR (tests, scripts)


def settings(ctx: click.Context):
    """The effective settings for this invocation (``--config`` / ``$BREATHE_CONFIG``)."""
    from device.config import load_config

    return load_config((ctx.find_root().obj or {}).get("config_path"))


def data_dir(ctx: click.Context) -> Path:
    """$BREATHE_DATA_DIR if set, else the config's ``device.data_dir``; ``~`` expanded."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(settings(ctx).device.data_dir).expanduser()
