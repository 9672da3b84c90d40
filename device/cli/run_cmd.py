"""``breathe run``: the appliance — camera, breath measurement and pacing, live."""

from __future__ import annotations

import logging
import sys
import time

import click

from device.clock import MonotonicClock

log = logging.getLogger("breathe.run")

PHASE_WORDS = {"inhale": "INHALE", "hold_in": "HOLD (full)", "exhale": "EXHALE",
               "hold_out": "HOLD (empty)"}


def _bar(level: float, width: int = 20) -> str:
    filled = int(round(level * width))
    return "#" * filled + "." * (width - filled)


@click.command("run")
@click.option("--demo", is_flag=True,
              help="Use the demo camera (a synthetic breathing person) whatever the config says.")
@click.option("--pattern", "pattern_id", default="coherent", show_default=True,
              help="Breathing pattern to pace (see 'breathe patterns list').")
@click.option("--minutes", type=click.FloatRange(0.5, 180), default=None,
              help="Stop after this long (default: until Ctrl-C).")
@click.option("--no-camera", is_flag=True, help="Pace only; do not measure the breath.")
@click.pass_context
def run(ctx: click.Context, demo: bool, pattern_id: str, minutes: float | None,
        no_camera: bool) -> None:
    """Run the appliance: pace a breathing pattern and measure the breath, until Ctrl-C."""
    from device.cli.context import data_dir
    from device.cli.context import settings as load_settings
    from device.pacing.engine import PacingEngine
    from device.store import db_path_for, open_db
    from device.store.patterns_repo import get_pattern

    settings = load_settings(ctx)
    with open_db(db_path_for(data_dir(ctx))) as db:
        pattern = get_pattern(db, pattern_id).pattern  # NotFound (exit 2) lists the valid ids
    live = None if no_camera else _start_measuring(settings, demo, pattern)
    engine = PacingEngine(pattern, MonotonicClock(),
                          duration_s=minutes * 60 if minutes else None)
    engine.start()
    click.echo(f"pacing {pattern.name} ({pattern.label}); Ctrl-C to stop", err=True)
    tty = sys.stdout.isatty()
    last_phase = None
    try:
        while not engine.finished:
            state = engine.state()
            measured = _measured(live)
            line = (f"cycle {state.cycle + 1:3d}  {PHASE_WORDS[state.phase]:<12} "
                    f"[{_bar(state.level)}] next in {state.time_to_next:4.1f}s | {measured}")
            if tty:
                click.echo("\r" + line.ljust(110), nl=False)
            elif state.phase != last_phase:
                click.echo(f"{state.elapsed:7.1f}s {line}")
            last_phase = state.phase
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
        if live is not None:
            live.stop()
        if tty:
            click.echo("")
    click.echo(f"stopped after {engine.elapsed():.0f} s", err=True)


def _measured(live) -> str:
    if live is None:
        return "pacing only (no camera)"
    status = live.status()
    if status.error:
        return f"pacing only: {status.error}"
    reading = live.latest()
    if reading is None:
        return "camera starting..."
    if reading.phase is None and reading.rate_bpm is None:
        return "no reading - move into view" if not reading.present else "measuring..."
    rate = "--" if reading.rate_bpm is None else f"{reading.rate_bpm:4.1f}/min"
    return f"measured {reading.phase or '--':<7} rate {rate} quality {reading.quality:.2f}"


def _start_measuring(settings, demo: bool, pattern):
    """Camera + landmarks + breath pipeline in a thread; None (pacing only) if it cannot."""
    from device.breath.live import LiveBreath
    from device.breath.pipeline import BreathPipeline
    from device.camera.factory import open_source
    from device.vision.factory import backend_from_settings

    cam = settings.camera
    spec = "demo" if demo else cam.source
    phases = tuple(seconds for _, seconds in pattern.phases)
    try:
        source = open_source(spec, width=cam.width, height=cam.height, fps=cam.fps,
                             demo_pattern=phases if spec == "demo" else None)
        backend = backend_from_settings(settings.vision)
    except Exception as exc:  # pacing goes on without a camera, and says why
        log.warning("camera unavailable, pacing only: %s", exc)
        click.echo(f"camera unavailable ({exc}); pacing only", err=True)
        return None
    click.echo(f"camera: {source.name}", err=True)
    pipeline = BreathPipeline.from_settings(settings, source.stats.fps or cam.fps, backend)
    return LiveBreath(source, pipeline).start()


COMMANDS = [run]
