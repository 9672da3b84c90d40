"""``breathe run``: the appliance — camera, breath measurement, pacing and a session, live.

The wiring lives in :func:`device.session.appliance.build_appliance`, so the web app (a later
issue) can take the same engine; until it exists, ``run`` paces one session in the terminal.
"""

from __future__ import annotations

import click

from device.cli.session_cmd import MIN_MINUTES, MINUTES, live_session, summary_text
from device.session.appliance import DEFAULT_PATTERN
from device.session.engine import MAX_MINUTES


@click.command("run")
@click.option("--demo", is_flag=True,
              help="Use the demo camera (a synthetic breathing person) whatever the config says.")
@click.option("--pattern", "pattern_id", default=DEFAULT_PATTERN, show_default=True,
              help="Breathing pattern to pace: a built-in or custom id ('breathe patterns "
                   "list').")
@click.option("--minutes", type=MINUTES, default=None,
              help=f"Session length in minutes, {MIN_MINUTES:g} to {MAX_MINUTES:g} (default: "
                   "until Ctrl-C).")
@click.option("--no-camera", is_flag=True, help="Pace only; do not measure the breath.")
@click.pass_context
def run(ctx: click.Context, demo: bool, pattern_id: str, minutes: float | None,
        no_camera: bool) -> None:
    """Run the appliance: pace a pattern with LED and motor, measure the breath, summarise.

    Without Pi hardware the demo person and mock GPIO pins are used, and it says so. The
    button starts / pauses / resumes (press) and stops (hold 2 s).
    """
    outcome = live_session(ctx, pattern_id, minutes or MAX_MINUTES, demo=demo,
                           no_camera=no_camera, button_minutes=minutes or 10.0)
    click.echo(summary_text(outcome))


COMMANDS = [run]
