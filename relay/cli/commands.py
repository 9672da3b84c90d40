"""``breathe-relay ...`` (also ``breathe relay ...`` where the device is installed too): run the
cloud relay and look after the fleet. A thin layer over the rest of relay/."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click

from common.cli import BreatheGroup, config_option, configured_level
from common.cli import settings as load_settings
from common.logs import setup_logging
from relay.cli.accounts import accounts


def _relay_settings(ctx: click.Context):
    return load_settings(ctx).relay


def _store(ctx: click.Context):
    from relay.store import open_store

    return open_store(_relay_settings(ctx).store_url)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _dash(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


@click.group("relay", cls=BreatheGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@config_option
@click.pass_context
def relay(ctx: click.Context, verbose: int, config_path: str | None) -> None:
    """The cloud relay: stores the fleet's shared sessions, mints achievement tokens, and
    sends config and commands to devices ([relay] settings)."""
    ctx.ensure_object(dict)
    if ctx.parent is None or config_path is not None:  # under `breathe`, its --config counts
        ctx.obj["config_path"] = config_path
    if ctx.parent is None:
        setup_logging(verbose, configured_level(config_path))


@relay.command("run")
@click.option("--instance", metavar="NAME", default=None,
              help="This relay's name (MQTT client id breathe-relay-NAME, mint claims); "
                   "unique per relay process. Default: the host name.")
@click.pass_context
def run(ctx: click.Context, instance: str | None) -> None:
    """Run the relay until Ctrl-C or SIGTERM: consume, validate, store, ack, mint."""
    from relay.service import RelayService

    service = RelayService(_relay_settings(ctx), instance=instance)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    click.echo(f"relay {service.instance}: store {service.store.backend.describe()}, broker "
               f"{service.settings.mqtt.host}:{service.settings.mqtt.port}; Ctrl-C to stop",
               err=True)
    service.run(stop)


@relay.command("devices")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_context
def devices(ctx: click.Context, as_json: bool) -> None:
    """The fleet: status, last seen, version, outbox depth and camera fps of every device."""
    from relay.registry import fleet

    store = _store(ctx)
    try:
        rows = fleet(store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no devices yet: they appear when they first publish")
        return
    click.echo(_table([[r["device"], r["status"], _ago(r["last_seen_s"]), _dash(r["version"]),
                        _dash(r["outbox_depth"]), _dash(r["fps"], "{:.1f}")] for r in rows],
                      ["DEVICE", "STATUS", "LAST SEEN", "VERSION", "OUTBOX", "FPS"]))


@relay.group("config")
def config() -> None:
    """Desired config for a device (retained, applied when it connects) and what it reported."""


@config.command("set")
@click.argument("device")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--replace", is_flag=True,
              help="Replace the desired config instead of adding to it.")
@click.option("--wait", "wait_s", type=click.FloatRange(0, 600), default=0.0, metavar="S",
              help="Wait up to S seconds for the device to report what it applied.")
@click.pass_context
def config_set(ctx: click.Context, device: str, assignments: tuple[str, ...], replace: bool,
               wait_s: float) -> None:
    """Set KEY=VALUE (e.g. pacing.haptic_strength=0.4) in DEVICE's desired config."""
    from relay.registry import parse_assignments, set_config

    changes = parse_assignments(assignments)
    store = _store(ctx)
    try:
        desired, report = set_config(_relay_settings(ctx), store, device, changes,
                                     replace=replace, wait_s=wait_s)
    finally:
        store.close()
    click.echo(f"desired config {desired.id} for {device} (retained): "
               f"{json.dumps(desired.changes, sort_keys=True)}")
    if report is not None:
        click.echo(f"{device} applied: {json.dumps(report.applied, sort_keys=True)}")
        if report.rejected:
            click.echo(f"{device} rejected: {json.dumps(report.rejected, sort_keys=True)}")
            ctx.exit(1)
    elif wait_s > 0:
        click.echo(f"no report from {device} within {wait_s:g} s; it applies the config when "
                   f"it connects (see `breathe relay config show {device}`)", err=True)
        ctx.exit(1)


@config.command("show")
@click.argument("device")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@click.pass_context
def config_show(ctx: click.Context, device: str, as_json: bool) -> None:
    """DEVICE's desired config and the config it last reported (applied, rejected, current)."""
    from relay.registry import config_view

    store = _store(ctx)
    try:
        view = config_view(store, device)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(view, indent=2, sort_keys=True))
        return
    desired, reported = view["desired"], view["reported"]
    click.echo(f"desired ({desired['id'] or 'none'}, {desired['at'] or '-'}): "
               f"{json.dumps(desired['changes'], sort_keys=True)}")
    if reported is None:
        click.echo("reported: nothing yet")
        return
    click.echo(f"reported ({reported['at']}, for {reported['desired_id'] or '-'}; "
               f"{'in sync' if view['in_sync'] else 'not in sync yet'}):")
    click.echo(f"  applied:  {json.dumps(reported['applied'], sort_keys=True)}")
    click.echo(f"  rejected: {json.dumps(reported['rejected'], sort_keys=True)}")
    click.echo(f"  config:   {json.dumps(reported['config'], sort_keys=True)}")


@relay.command("cmd")
@click.argument("device")
@click.argument("name", metavar="COMMAND")
@click.option("--arg", "args", multiple=True, metavar="K=V",
              help="A command argument (repeatable), e.g. --arg pattern_id=box --arg minutes=5.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True,
              help="Seconds to wait for the reply.")
@click.pass_context
def cmd(ctx: click.Context, device: str, name: str, args: tuple[str, ...],
        timeout: float) -> None:
    """Send COMMAND (ping, sync-now, start-session, stop-session, set-config, reboot) to
    DEVICE and print its reply; exit 1 when it fails or does not answer in time."""
    from relay.commands import parse_args, send_command

    reply = send_command(_relay_settings(ctx), device, name, parse_args(args), timeout=timeout)
    click.echo(json.dumps(reply.model_dump(mode="json", by_alias=True), indent=2))
    if not reply.ok:
        click.echo(f"error: {device} refused {name!r}: {reply.error}", err=True)
        ctx.exit(1)


@relay.command("stats")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Totals: sessions, devices, mint requests by status, rejected messages by reason, catalog."""
    store = _store(ctx)
    try:
        counts = store.stats()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(counts, indent=2))
        return
    click.echo(f"sessions: {counts['sessions']}\ndevices:  {counts['devices']}")
    click.echo("mints:    " + (", ".join(f"{k} {v}" for k, v in counts["mints"].items())
                               or "none"))
    click.echo("rejected: " + (", ".join(f"{k} {v}" for k, v in counts["rejected"].items())
                               or "none"))
    catalog = counts["catalog"]
    click.echo(f"catalog:  {catalog['published']} published, {catalog['unpublished']} "
               f"unpublished, {catalog['ratings']} ratings, {catalog['imports']} imports; "
               f"{catalog['retracted_devices']} devices retracted")


@relay.command("mints")
@click.option("--status", type=click.Choice(["pending", "minted", "failed"]), default=None,
              help="Only requests with this status.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_context
def mints(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """Mint requests: device, request id, status, token, transaction, last error."""
    store = _store(ctx)
    try:
        rows = store.mints(status)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([{k: v for k, v in vars(r).items() if k != "payload"}
                               for r in rows], indent=2))
        return
    if not rows:
        click.echo("no mint requests" + (f" with status {status}" if status else ""))
        return
    click.echo(_table([[r.device, r.id, r.status, _dash(r.token_id), _dash(r.tx_hash),
                        (r.error or "")[:60]] for r in rows],
                      ["DEVICE", "REQUEST", "STATUS", "TOKEN", "TX", "ERROR"]))


@relay.command("report")
@click.option("--since", "since_days", type=click.IntRange(1, 3660), default=7,
              show_default=True, metavar="DAYS",
              help="The last DAYS calendar days (UTC), today included.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table",
              show_default=True, help="table for a terminal, json for programs, html for a "
              "single file with charts that reads offline.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True,
                                                 allow_dash=True), default="-",
              metavar="FILE", help="Write here instead of standard output.")
@click.option("--offline-after", "offline_after", type=click.FloatRange(1, 10080),
              default=15.0, show_default=True, metavar="MINUTES",
              help="A device silent this long counts as offline.")
@click.pass_context
def report(ctx: click.Context, since_days: int, fmt: str, output: str,
           offline_after: float) -> None:
    """How the fleet is used: sessions per day, completion rate, patterns, adherence and
    device health, from the devices whose owner allows analytics only."""
    from relay.report import build_report, format_table

    store = _store(ctx)
    try:
        fleet_report = build_report(store, since_days, offline_after_min=offline_after)
    finally:
        store.close()
    if fmt == "json":
        text = json.dumps(fleet_report.to_dict(), indent=2)
    elif fmt == "html":
        from relay.report_html import render_html

        text = render_html(fleet_report)
    else:
        text = format_table(fleet_report)
    if output == "-":
        click.echo(text)
        return
    with click.open_file(output, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    click.echo(f"report written to {output}", err=True)


relay.add_command(accounts)
