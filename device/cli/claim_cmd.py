"""``breathe claim-code``: the one-time code that claims the device in its web app."""

from __future__ import annotations

import click


@click.command("claim-code")
@click.pass_context
def claim_code_cmd(ctx: click.Context) -> None:
    """Print a new one-time setup code for claiming this device in its web app.

    Each call replaces the previous code; once the device has an owner, it exits 2.
    """
    from device.cli.context import data_dir
    from webui.security import claim_code

    click.echo(claim_code(data_dir(ctx)))


COMMANDS = [claim_code_cmd]
