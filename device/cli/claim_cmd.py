"""``breathe claim-code``: the one-time code that claims the device in its web app, and
``--reset``: the owner's way back in after a forgotten password (needs the device's console)."""

from __future__ import annotations

import click


@click.command("claim-code")
@click.option("--reset", is_flag=True,
              help="On a claimed device: print a recovery code that sets a new owner password "
                   "at /recover (valid 30 minutes; every session is kept).")
@click.pass_context
def claim_code_cmd(ctx: click.Context, reset: bool) -> None:
    """Print a new one-time setup code for claiming this device in its web app.

    Each call replaces the previous code; once the device has an owner it exits 2, unless
    --reset asks for a recovery code for the owner who forgot the password.
    """
    from device.cli.context import data_dir
    from device.store import open_db
    from device.store.db import db_path_for
    from device.store.owner_codes import claim_code, issue_recovery_code

    if not reset:
        click.echo(claim_code(data_dir(ctx)))
        return
    db = open_db(db_path_for(data_dir(ctx)))
    try:
        code = issue_recovery_code(db)
    finally:
        db.close()
    click.echo(code)
    click.echo("recovery code: open /recover in the web app within 30 minutes and choose a new "
               "password; sessions, patterns and settings are kept", err=True)


COMMANDS = [claim_code_cmd]
