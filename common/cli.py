"""What the ``breathe`` and ``breathe-relay`` commands share: exit codes and the settings."""

from __future__ import annotations

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


def settings(ctx: click.Context):
    """The effective settings for this invocation (``--config`` / ``$BREATHE_CONFIG``)."""
    return load_config((ctx.find_root().obj or {}).get("config_path"))
