"""``breathe run``: the appliance daemon — camera, breath, pacing, button, web app, sync.

The parts live in :class:`device.daemon.Daemon`; this command checks the input, starts it,
prints what was chosen (demo camera, mock pins, the web address, the claim code while the
device has no owner) and runs until Ctrl-C or SIGTERM (systemd's stop).
"""

from __future__ import annotations

import logging
import signal
import sys

import click

from device.cli.session_cmd import MIN_MINUTES, MINUTES, StatusPrinter, stop_on_signals
from device.session.appliance import DEFAULT_PATTERN
from device.session.engine import MAX_MINUTES


@click.command("run")
@click.option("--demo", is_flag=True,
              help="Use the demo camera (a synthetic breathing person) whatever the config says.")
@click.option("--pattern", "pattern_id", default=DEFAULT_PATTERN, show_default=True,
              help="Pattern the button (and --start) begins: a built-in or custom id "
                   "('breathe patterns list').")
@click.option("--minutes", type=MINUTES, default=10.0, show_default=True,
              help=f"Length of a session the button (or --start) begins, {MIN_MINUTES:g} to "
                   f"{MAX_MINUTES:g} minutes.")
@click.option("--start", "start_now", is_flag=True,
              help="Begin a session right away instead of waiting for the button or web app.")
@click.option("--no-camera", is_flag=True, help="Pace only; do not measure the breath.")
@click.option("--host", default=None, help="Web app address (default: web.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Web app port (default: web.port; 0 picks a free one).")
@click.option("--no-web", is_flag=True, help="Do not serve the web app.")
@click.option("--no-sync", is_flag=True, help="Do not sync over MQTT even if [mqtt] enabled.")
@click.pass_context
def run(ctx: click.Context, demo: bool, pattern_id: str, minutes: float, start_now: bool,
        no_camera: bool, host: str | None, port: int | None, no_web: bool,
        no_sync: bool) -> None:
    """Run the appliance until Ctrl-C: pacing, measuring, the web app and sync.

    Open the printed address from a phone on the same network to start sessions and see
    history; while the device has no owner the log shows the setup code. Without Pi hardware
    the demo person and mock GPIO pins stand in, and it says so. The button starts / pauses /
    resumes (press) and stops (hold 2 s).
    """
    from device.cli.context import data_dir
    from device.cli.context import settings as load_settings
    from device.daemon import Daemon

    printer = StatusPrinter(sys.stderr) if sys.stderr.isatty() else None
    daemon = Daemon(load_settings(ctx), data_dir(ctx), demo=demo, camera=not no_camera,
                    web=not no_web, sync=not no_sync, host=host, port=port,
                    pattern_id=pattern_id, minutes=minutes, on_state=printer)
    daemon.start()
    try:
        for note in daemon.notes:
            click.echo(note, err=True)
        if start_now:
            daemon.start_session(pattern_id, minutes)
        click.echo(f"running; open {daemon.url} — Ctrl-C to stop", err=True)
        logging.getLogger("device").info("breathe %s ready", daemon.url)
        with stop_on_signals(daemon.stop_event, (signal.SIGINT, signal.SIGTERM)):
            daemon.wait()
    finally:
        if printer is not None:
            printer.done()
        daemon.close()
    click.echo("stopped", err=True)


COMMANDS = [run]
