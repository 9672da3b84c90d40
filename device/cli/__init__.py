"""The ``breathe`` command. Each command group lives in its own module here."""

from __future__ import annotations

import logging
import sys

import click

from common.cli import BreatheGroup, config_option, configured_level
from common.logs import setup_logging


@click.group(cls=BreatheGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@config_option
@click.pass_context
def main(ctx: click.Context, verbose: int, config_path: str | None) -> None:
    """Breathe: see a person breathe and help them breathe better."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose
    setup_logging(verbose, configured_level(config_path))


def _register() -> None:
    from device.cli import commands

    for command in commands.ALL:
        main.add_command(command)


_register()


def run() -> None:
    """The console script: ``breathe``. Ctrl-C ends quietly with exit code 130."""
    try:
        main(prog_name="breathe")
    except KeyboardInterrupt:
        logging.getLogger("breathe").info("interrupted")
        sys.exit(130)
