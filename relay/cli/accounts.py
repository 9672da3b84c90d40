"""``breathe-relay accounts ...``: the broker's fleet accounts (mosquitto dynamic security).

A thin layer over relay/accounts.py: write the plugin's file before the broker first starts,
add accounts to that file, or add them to a running broker through its admin account.
"""

from __future__ import annotations

from pathlib import Path

import click

from common.cli import config_path
from common.errors import BadInput
from relay.settings import load_relay_settings

_FILE = click.Path(dir_okay=False, path_type=Path)
_SECRET = click.Path(exists=True, dir_okay=False, path_type=Path)


def _secret(path: Path) -> str:
    lines = path.read_text().splitlines()
    if not lines or not lines[0].strip():
        raise BadInput(f"{path}: empty (allowed: the password on the first line)")
    return lines[0].strip()


@click.group("accounts")
def accounts() -> None:
    """Broker accounts (mosquitto dynamic security): one per device, pinned to its client id
    and its own topics; one per relay instance; operators for the CLI; an admin account."""


@accounts.command("init")
@click.argument("file", type=_FILE)
@click.option("--admin-user", default="breathe-admin", show_default=True,
              help="Username of the admin account (for adding accounts later).")
@click.option("--admin-password-file", type=_SECRET, required=True,
              help="File whose first line is the admin password.")
@click.option("--share-group", default="relay", show_default=True,
              help="The relays' shared-subscription group ([relay] share_group).")
def init(file: Path, admin_user: str, admin_password_file: Path, share_group: str) -> None:
    """Write a new plugin file FILE (plugin_opt_config_file) with the roles and the admin."""
    from relay.accounts import Account, add_to_document, empty_document, write_document

    if file.exists():
        raise BadInput(f"{file} exists; add accounts with 'breathe relay accounts add-device "
                       f"--file {file}' (allowed: a new file)")
    document = empty_document(share_group)
    add_to_document(document, Account(admin_user, _secret(admin_password_file), "admin"))
    write_document(document, file)
    click.echo(f"wrote {file} (roles, admin {admin_user!r})")


def _add(ctx: click.Context, account, file: Path | None, admin_user: str,
         admin_password_file: Path | None) -> None:
    from relay.accounts import LiveAccounts, add_to_document, read_document, write_document

    if file is not None:  # the broker is stopped: edit its plugin file
        if not file.exists():
            raise BadInput(f"{file} does not exist (run 'breathe relay accounts init' first)")
        write_document(add_to_document(read_document(file), account), file)
        click.echo(f"{account.kind} account {account.username!r} added to {file}")
        return
    if admin_password_file is None:
        raise BadInput("accounts: give --file (broker stopped) or --admin-password-file "
                       "(running broker at [relay.mqtt] host and port)")
    import uuid

    from relay.mqtt import connected

    broker = load_relay_settings(config_path(ctx)).mqtt.model_copy(
        update={"username": admin_user, "password_file": admin_password_file})
    with connected(broker, f"breathe-admin-{uuid.uuid4().hex[:8]}") as client:
        LiveAccounts(client).add(account)
    click.echo(f"{account.kind} account {account.username!r} added to the running broker")


_TARGET = [
    click.option("--file", type=_FILE, default=None,
                 help="Edit this plugin file (broker stopped) instead of the running broker."),
    click.option("--admin-user", default="breathe-admin", show_default=True,
                 help="The admin account, for a running broker."),
    click.option("--admin-password-file", type=_SECRET, default=None,
                 help="File with the admin password, for a running broker."),
]


def _target(fn):
    for option in reversed(_TARGET):
        fn = option(fn)
    return fn


@accounts.command("add-device")
@click.argument("device_id")
@click.option("--password-file", type=_SECRET, required=True,
              help="File whose first line is the device's broker password.")
@_target
@click.pass_context
def add_device(ctx: click.Context, device_id: str, password_file: Path, file: Path | None,
               admin_user: str, admin_password_file: Path | None) -> None:
    """Add device DEVICE_ID: username and only client id = DEVICE_ID, its own topics only."""
    from relay.accounts import device_account

    _add(ctx, device_account(device_id, _secret(password_file)), file, admin_user,
         admin_password_file)


@accounts.command("add-relay")
@click.argument("username")
@click.option("--password-file", type=_SECRET, required=True,
              help="File whose first line is this relay account's password.")
@click.option("--instance", default=None,
              help="Pin the account to client id breathe-relay-INSTANCE ('relay run "
                   "--instance'); without it any client id (development only: such an "
                   "account can take over a relay instance's session).")
@_target
@click.pass_context
def add_relay(ctx: click.Context, username: str, password_file: Path, instance: str | None,
              file: Path | None, admin_user: str, admin_password_file: Path | None) -> None:
    """Add relay account USERNAME (reads the fleet through the shared group, answers it)."""
    from relay.accounts import relay_account
    from relay.service import check_instance

    client_id = None if instance is None else f"breathe-relay-{check_instance(instance)}"
    _add(ctx, relay_account(username, _secret(password_file), client_id), file, admin_user,
         admin_password_file)


@accounts.command("add-operator")
@click.argument("username")
@click.option("--password-file", type=_SECRET, required=True,
              help="File whose first line is this operator's password.")
@_target
@click.pass_context
def add_operator(ctx: click.Context, username: str, password_file: Path, file: Path | None,
                 admin_user: str, admin_password_file: Path | None) -> None:
    """Add operator USERNAME for 'breathe relay cmd' and 'config set' ([relay.operator]):
    pinned to client id breathe-operator-USERNAME; sends commands and desired config, reads
    replies and reports, never a share of what the relays store."""
    from relay.accounts import operator_account

    _add(ctx, operator_account(username, _secret(password_file)), file, admin_user,
         admin_password_file)
