"""What the ``breathe`` and ``breathe-relay`` commands share: exit codes and the settings."""

from __future__ import annotations

import logging
import sys

import click

from common.config import load_config
from common.errors import BadInput, BreatheError, ConfigError, NotYetAvailable


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


def config_option(function):
    """``--config FILE`` (else ``$BREATHE_CONFIG``, else built-in defaults)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="BREATHE_CONFIG",
        default=None,
        help="Config file (TOML). Default: $BREATHE_CONFIG, else built-in defaults.",
    )(function)


def configured_level(config_path: str | None) -> str | None:
    """The log level from the config, if it loads; a broken config is reported by the command."""
    try:
        return load_config(config_path).device.log_level
    except ConfigError:
        return None


def config_path(ctx: click.Context) -> str | None:
    """The file ``--config`` (or ``$BREATHE_CONFIG``) named for this invocation, if any."""
    return (ctx.find_root().obj or {}).get("config_path")


def settings(ctx: click.Context):
    """The effective settings for this invocation (``--config`` / ``$BREATHE_CONFIG``)."""
    return load_config(config_path(ctx))


def run_console(group: click.Group, prog_name: str) -> None:
    """Run a console script's group; Ctrl-C ends quietly with exit code 130."""
    try:
        group(prog_name=prog_name)
    except KeyboardInterrupt:
        logging.getLogger("breathe").info("interrupted")
        sys.exit(130)
