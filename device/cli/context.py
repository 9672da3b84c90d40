"""What every command needs from the main group: the settings and the data directory."""

from __future__ import annotations

from pathlib import Path

import click


def settings(ctx: click.Context):
    """The effective settings for this invocation (``--config`` / ``$BREATHE_CONFIG``)."""
    from device.config import load_config

    return load_config((ctx.find_root().obj or {}).get("config_path"))


def data_dir(ctx: click.Context) -> Path:
    """$BREATHE_DATA_DIR if set, else the config's ``device.data_dir``; ``~`` expanded."""
    from device.config import data_dir as resolve

    return resolve(settings(ctx))
