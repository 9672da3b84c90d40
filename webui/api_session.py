"""Driving the live session from the web app: start, pause, resume, stop, and the SSE stream.

The daemon's ``Appliance`` (``app.config["APPLIANCE"]``) owns the one ``SessionEngine``; these
views call its commands, which are thread-safe. Without an appliance (the web app running on
its own) every view here answers 503 saying so.

``GET /api/live`` is a Server-Sent Events stream: ``retry: <ms>`` first, then one
``event: state`` per engine publish (10 Hz) with ``id:`` a counter, and a ``: heartbeat``
comment every ``SSE_HEARTBEAT_S`` seconds so proxies and the browser see a live connection.
The stream subscribes to the engine when it starts and unsubscribes when the client goes away
(the server closes the generator on its next failed write) or the app stops.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, current_app, jsonify
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.wrappers import Response

from device.session.live_state import LiveState
from device.store.patterns_repo import get_pattern
from device.store.settings_repo import get_setting, set_setting
from device.store.transaction import write_transaction
from webui.auth import login_required
from webui.context import get_db
from webui.openapi import documented
from webui.payloads import FieldError, InvalidInput, SessionStart

bp = Blueprint("api_session", __name__, url_prefix="/api")

DEFAULT_PATTERN_KEY = "session.default_pattern"
DEFAULT_MINUTES_KEY = "session.default_minutes"
DEFAULT_PATTERN = "coherent"
DEFAULT_MINUTES = 10.0
NO_APPLIANCE = ("session control is not available: this web app runs without the breathing "
                "appliance (start the device with 'breathe run')")


def _engine() -> Any:
    appliance = current_app.config.get("APPLIANCE")
    if appliance is None:
        raise ServiceUnavailable(NO_APPLIANCE)
    return appliance.engine


def _state(state: LiveState, status: int = 200) -> Response:
    response = jsonify(state.to_dict())
    response.status_code = status
    return response


def defaults(db: Any) -> tuple[str, float]:
    """The default pattern (falling back to coherent breathing once it is deleted) and
    minutes a session starts with."""
    pattern_id = get_setting(db, DEFAULT_PATTERN_KEY) or DEFAULT_PATTERN
    try:
        get_pattern(db, pattern_id)
    except LookupError:
        pattern_id = DEFAULT_PATTERN
    return pattern_id, float(get_setting(db, DEFAULT_MINUTES_KEY) or DEFAULT_MINUTES)


@bp.get("/session")
@login_required
@documented("live state", tag="session", responses={200: LiveState}, errors=(503,),
            description="The session in progress, or status idle.")
def live_state() -> Response:
    return _state(_engine().state)


@bp.post("/session")
@login_required
@documented("start session", tag="session", body=SessionStart, responses={201: LiveState},
            errors=(409, 503),
            description="Start a session; the device's light and motor start pacing it. "
                        "409 while one is running or paused.")
def start(body: SessionStart) -> Response:
    engine = _engine()
    db = get_db()
    default_pattern, default_minutes = defaults(db)
    pattern_id = body.pattern_id or default_pattern
    try:
        record = get_pattern(db, pattern_id)
    except LookupError:
        raise InvalidInput([FieldError(field="pattern_id", message=(
            f"no pattern with id {pattern_id!r}; GET /api/patterns lists them"))]) from None
    minutes = body.minutes or default_minutes
    state = engine.start(pattern_id, minutes)
    current_app.config["APPLIANCE"].follow(record.pattern)
    with write_transaction(db):  # Home offers the last choice next time
        set_setting(db, DEFAULT_PATTERN_KEY, pattern_id)
        set_setting(db, DEFAULT_MINUTES_KEY, minutes)
    return _state(state, 201)


def _command(name: str) -> Response:
    return _state(getattr(_engine(), name)())


@bp.post("/session/pause")
@login_required
@documented("pause session", tag="session", responses={200: LiveState}, errors=(409, 503))
def pause() -> Response:
    return _command("pause")


@bp.post("/session/resume")
@login_required
@documented("resume session", tag="session", responses={200: LiveState}, errors=(409, 503))
def resume() -> Response:
    return _command("resume")


@bp.post("/session/stop")
@login_required
@documented("stop session", tag="session", responses={200: LiveState}, errors=(409, 503),
            description="End the session early; it is kept, with its metrics, as stopped.")
def stop() -> Response:
    return _command("stop")


def sse_event(counter: int, state: LiveState) -> str:
    data = json.dumps(state.to_dict(), separators=(",", ":"), allow_nan=False)
    return f"id: {counter}\nevent: state\ndata: {data}\n\n"


def live_events(engine: Any, *, retry_ms: int, heartbeat_s: float,
                stop: threading.Event | None = None) -> Iterator[str]:
    """The SSE stream: the current state at once, then every published one.

    Ends (and unsubscribes) when the consumer closes it, or when ``stop`` is set.
    """
    q = engine.subscribe()
    try:
        yield f"retry: {retry_ms}\n\n"
        counter = 1
        yield sse_event(counter, engine.state)
        next_beat = time.monotonic() + heartbeat_s
        while stop is None or not stop.is_set():
            wait = max(0.0, min(next_beat - time.monotonic(), 1.0))
            try:
                state = q.get(timeout=wait)
            except queue.Empty:
                state = None
            if state is not None:
                counter += 1
                yield sse_event(counter, state)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + heartbeat_s
                yield ": heartbeat\n\n"
    finally:
        engine.unsubscribe(q)


@bp.get("/live")
@login_required
@documented("live stream", tag="session", responses={200: {"text/event-stream": None}},
            errors=(503,),
            description="Server-Sent Events: `event: state` with the live state (as GET "
                        "/api/session) at 10 Hz, `id:` a counter, `retry: 1000`, a "
                        "`: heartbeat` comment every 15 s.")
def live() -> Response:
    engine = _engine()
    config = current_app.config
    events = live_events(engine, retry_ms=int(config["SSE_RETRY_MS"]),
                         heartbeat_s=float(config["SSE_HEARTBEAT_S"]),
                         stop=config.get("SHUTDOWN"))
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must not buffer it
    return response

