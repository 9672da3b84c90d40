"""``breathe session``: headless sessions from a terminal, and the sessions already stored.

The live status and summary printing here is shared with ``breathe run``.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from device.session.engine import MAX_MINUTES, STEP_HZ
from device.session.live_state import LiveState

MIN_MINUTES = 0.5  # a shorter "session" says nothing about the breath
PHASE_WORDS = {"inhale": "INHALE", "hold_in": "HOLD (full)", "exhale": "EXHALE",
               "hold_out": "HOLD (empty)"}


class _Minutes(click.FloatRange):
    """A session length from ``MIN_MINUTES`` to ``MAX_MINUTES``, a real number (not nan)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a number of minutes ({MIN_MINUTES:g} to "
                      f"{MAX_MINUTES:g})", param, ctx)
        return number


MINUTES = _Minutes(MIN_MINUTES, MAX_MINUTES)
PLAIN_EVERY_S = 5.0  # without a terminal, a status line this often (and on every change)
TTY_EVERY_S = 0.2


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _pct(share: float | None) -> str:
    return "--" if share is None else f"{round(100 * share)} %"


def status_line(state: LiveState) -> str:
    """One line: time, target phase, measured phase, rate, quality, adherence, mode."""
    if state.status == "idle" or state.target_phase is None:
        return f"{state.status}"
    target = PHASE_WORDS.get(state.target_phase, state.target_phase)
    if state.status == "paused":
        target = "PAUSED"
    total = state.elapsed + state.remaining
    # an open-ended run (breathe run without --minutes) shows only the time so far
    when = (_clock(state.elapsed) if total >= MAX_MINUTES * 60 - 1
            else f"{_clock(state.elapsed)}/{_clock(total)}")
    head = f"{when} cycle {state.cycle + 1:3d}  {target:<12}"
    if state.mode == "measuring":
        rate = "--" if state.rate is None else f"{state.rate:4.1f}/min"
        quality = "--" if state.quality is None else f"{state.quality:.2f}"
        measured = (f"measured {state.measured_phase or '--':<7} rate {rate} "
                    f"quality {quality}")
    else:
        measured = f"pacing only: {state.reason or 'no reading'}"
    return f"{head} | {measured} | adherence {_pct(state.adherence)}"


class StatusPrinter:
    """Feeds ``status_line`` to the terminal: rewritten in place on a tty, else every few
    seconds and whenever the mode, reason or status changes."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_t: float | None = None
        self._last_key: tuple[Any, ...] | None = None
        self._width = 0

    def __call__(self, state: LiveState) -> None:
        key = (state.status, state.mode, state.reason)
        every = TTY_EVERY_S if self.tty else PLAIN_EVERY_S
        due = self._last_t is None or state.t - self._last_t >= every or key != self._last_key
        if not due:
            return
        self._last_t, self._last_key = state.t, key
        line = status_line(state)
        if self.tty:
            self._width = max(self._width, len(line))
            self.stream.write("\r" + line.ljust(self._width))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._last_t is not None:
            self.stream.write("\n")
            self.stream.flush()


def summary_text(outcome: Any) -> str:
    """The summary, insights and newly earned achievements, for people."""
    from wire.achievements import ACHIEVEMENTS

    r, m = outcome.record, outcome.metrics
    name = r.pattern.name if r.pattern else (r.pattern_id or "unknown pattern")
    rate = "--" if m.rate.median is None else f"{m.rate.median:.1f}/min"
    lines = [
        f"Session {r.id} {r.status}: {name}, {_clock(r.duration_s)}, "
        f"{m.cycles_completed} cycle{'' if m.cycles_completed == 1 else 's'}",
        f"  adherence {_pct(m.adherence)}, camera coverage {_pct(m.coverage)}, "
        f"measured rate {rate} (median)",
        "Insights:",
        *(f"  - {s.text}" for s in outcome.insights.sentences),
        f"  {outcome.insights.next_step.text}",
    ]
    if outcome.achievements:
        lines.append("New achievements:")
        lines += [f"  * {ACHIEVEMENTS.get(a.kind, a.kind)}" + (" (mintable)" if a.mintable
                                                              else "")
                  for a in outcome.achievements]
    return "\n".join(lines)


@contextmanager
def stop_on_signals(stop: threading.Event,
                    signals: tuple[int, ...] = (signal.SIGTERM,)) -> Iterator[None]:
    """systemd stops with SIGTERM (the daemon also takes Ctrl-C this way): set ``stop`` so
    the session ends as ``stopped`` rather than die mid-way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def live_session(ctx: click.Context, pattern_id: str, minutes: float, *, demo: bool,
                 no_camera: bool, button_minutes: float | None = None,
                 status_to_stderr: bool = False) -> Any:
    """Check the pattern, build the appliance, run one session with a live status line."""
    from device.cli.context import data_dir
    from device.cli.context import settings as load_settings
    from device.session.appliance import build_appliance, run_session
    from device.store import db_path_for, open_db
    from device.store.patterns_repo import get_pattern

    settings = load_settings(ctx)
    db_path = db_path_for(data_dir(ctx))
    db = open_db(db_path)
    try:
        pattern = get_pattern(db, pattern_id).pattern  # NotFound (exit 2) lists the valid ids
    finally:
        db.close()
    app = build_appliance(settings, db_path, pattern=pattern, pattern_id=pattern_id,
                          minutes=button_minutes or minutes, camera=not no_camera, demo=demo)
    for note in app.notes:
        click.echo(note, err=True)
    hz = max(STEP_HZ, settings.pacing.led_update_hz) if app.outputs is not None else STEP_HZ
    click.echo(f"pacing {pattern.name} ({pattern.label}) for up to {minutes:g} min; "
               "Ctrl-C to stop", err=True)
    printer = StatusPrinter(sys.stderr if status_to_stderr else None)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            return run_session(app.engine, pattern_id, minutes, on_state=printer,
                               on_start=lambda: app.follow(pattern), stop=stop, hz=hz)
    finally:
        printer.done()
        app.close()


@click.group("session")
def session() -> None:
    """Headless sessions from a terminal, and the sessions stored on this device."""


@session.command("start")
@click.argument("pattern_id", metavar="PATTERN")
@click.option("--minutes", type=MINUTES, default=5.0, show_default=True,
              help=f"Session length in minutes ({MIN_MINUTES:g} to {MAX_MINUTES:g}).")
@click.option("--demo", is_flag=True,
              help="Use the demo camera (a synthetic person following the pattern).")
@click.option("--no-camera", is_flag=True, help="Pace only; do not measure the breath.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def start(ctx: click.Context, pattern_id: str, minutes: float, demo: bool, no_camera: bool,
          as_json: bool) -> None:
    """Run one session of PATTERN with a live status line; summary and insights at the end."""
    outcome = live_session(ctx, pattern_id, minutes, demo=demo, no_camera=no_camera,
                           status_to_stderr=as_json)  # stdout: the JSON alone
    _print_outcome(outcome, as_json)


def _print_outcome(outcome: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(summary_text(outcome))


@session.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="How many sessions, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The sessions stored on this device, newest first."""
    from device.cli.context import data_dir
    from device.store import db_path_for, open_db
    from device.store.sessions_repo import list_sessions

    db = open_db(db_path_for(data_dir(ctx)))
    try:
        records = list_sessions(db, limit=limit)
    finally:
        db.close()
    rows = [{"id": r.id, "started": r.started, "pattern_id": r.pattern_id, "status": r.status,
             "duration_s": r.duration_s, "adherence": r.metrics.get("adherence")}
            for r in records]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no sessions yet; start one with 'breathe session start coherent'")
        return
    for row in rows:
        click.echo(f"{row['id']}  {row['started'][:19]}  {row['pattern_id'] or '-':<12} "
                   f"{row['status']:<11} {_clock(row['duration_s'])}  "
                   f"adherence {_pct(row['adherence'])}")


@session.command("show")
@click.argument("session_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def show(ctx: click.Context, session_id: str, as_json: bool) -> None:
    """One stored session: its metrics and insights."""
    from device.cli.context import data_dir
    from device.session.appliance import session_outcome
    from device.store import db_path_for

    outcome = session_outcome(db_path_for(data_dir(ctx)), session_id, award=False)
    _print_outcome(outcome, as_json)


COMMANDS = [session]
