"""The ``breathe`` command. Each command group lives in its own module here."""

from __future__ import annotations

import logging
import sys

import click

from device.errors import BadInput, BreatheError, NotYetAvailable
from device.logs import setup_logging


class BreatheGroup(click.Group):
    """Maps our exceptions to exit codes: 2 bad input, 1 failure."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BadInput as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except NotYetAvailable as exc:
            click.echo(f"not available yet: {exc}", err=True)
            ctx.exit(1)
        except BreatheError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=BreatheGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="BREATHE_CONFIG",
    default=None,
    help="Config file (TOML). Default: $BREATHE_CONFIG, else built-in defaults.",
)
@click.pass_context
def main(ctx: click.Context, verbose: int, config_path: str | None) -> None:
    """Breathe: see a person breathe and help them breathe better."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose
    setup_logging(verbose, _configured_level(config_path))


def _configured_level(config_path: str | None) -> str | None:
    """The log level from the config, if it loads; a broken config is reported by the command."""
    from device.config import load_config
    from device.errors import ConfigError

    try:
        return load_config(config_path).device.log_level
    except ConfigError:
        return None


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
