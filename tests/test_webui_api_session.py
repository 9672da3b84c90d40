# ruff: noqa: F811 - pytest fixtures are imported from webui_api_support by name
"""Session control and the live stream, on a real Appliance (mock GPIO pins, fake or real
clock), and a finished session's summary as the summary page reads it."""

from __future__ import annotations

import http.client
import json
import threading
import time

from webui_api_support import (  # noqa: F401 - fixtures
    api,
    app,
    appliance,
    clock,
    logged_in,
    owner_id,
    step,
)
from werkzeug.serving import make_server

from common.config import Settings
from device.clock import MonotonicClock
from device.session.appliance import build_appliance
from device.store import db_path_for
from webui.api_session import live_events

CONTROL = [("GET", "/api/session"), ("POST", "/api/session"), ("POST", "/api/session/pause"),
           ("POST", "/api/session/resume"), ("POST", "/api/session/stop"), ("GET", "/api/live")]


def test_without_an_appliance_session_control_answers_503_and_says_why(api):
    for method, path in CONTROL:
        response = api.client.open(path, method=method, json={},
                                   headers={"X-CSRFToken": api.token})
        assert response.status_code == 503, path
        body = response.get_json()
        assert body["error"] == "service_unavailable"
        assert "runs without the breathing appliance" in body["message"]
        assert "breathe run" in body["message"]


def control_app(data_dir, appliance):
    api = logged_in(data_dir, APPLIANCE=appliance, SSE_HEARTBEAT_S=0.05)
    return api.client.application, api


def test_start_pause_resume_stop_drive_the_engine_and_the_light(data_dir, appliance, clock,
                                                                factory):
    _, api = control_app(data_dir, appliance)
    followed = []
    appliance.follow = followed.append  # the demo person's hook: called with the pattern
    assert api.get("/api/session").get_json()["status"] == "idle"
    started = api.post("/api/session", json={"pattern_id": "box", "minutes": 1})
    assert started.status_code == 201
    state = started.get_json()
    assert state["status"] == "running" and state["pattern_id"] == "box"
    assert state["remaining"] == 60
    assert [p.name for p in followed] == ["Box breathing"]
    step(appliance.engine, clock, 2.0)
    assert max(s.state for s in factory.pin(18).states) > 0  # the guide LED lit up
    live = api.get("/api/session").get_json()
    assert live["target_phase"] == "inhale" and live["elapsed"] > 1.5

    again = api.post("/api/session", json={"pattern_id": "box", "minutes": 1})
    assert again.status_code == 409
    assert "stop it first" in again.get_json()["message"]
    paused = api.post("/api/session/pause")
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    assert api.post("/api/session/pause").status_code == 409
    step(appliance.engine, clock, 5.0)
    assert api.get("/api/session").get_json()["elapsed"] < 2.5  # pauses do not count
    assert api.post("/api/session/resume").get_json()["status"] == "running"
    stopped = api.post("/api/session/stop").get_json()
    assert stopped["status"] == "stopped"
    assert api.post("/api/session/stop").status_code == 409
    listed = api.get("/api/sessions").get_json()["sessions"]
    assert [(s["id"], s["status"]) for s in listed] == [(stopped["session_id"], "stopped")]


def test_start_validates_and_falls_back_to_the_default_pattern_and_minutes(
        data_dir, appliance, clock):
    _, api = control_app(data_dir, appliance)
    unknown = api.post("/api/session", json={"pattern_id": "nope", "minutes": 5})
    assert unknown.status_code == 400 and unknown.get_json()["field"] == "pattern_id"
    short = api.post("/api/session", json={"pattern_id": "box", "minutes": 0.1})
    assert short.status_code == 400 and short.get_json()["field"] == "minutes"
    assert appliance.engine.status == "idle"
    api.put("/api/settings", json={"default_pattern": "relaxation", "default_minutes": 3})
    state = api.post("/api/session").get_json()
    assert state["pattern_id"] == "relaxation" and state["remaining"] == 180


def test_a_finished_session_has_a_summary_with_charts_insights_and_achievements(
        data_dir, appliance, clock):
    _, api = control_app(data_dir, appliance)
    session_id = api.post("/api/session", json={"pattern_id": "box",
                                                "minutes": 1}).get_json()["session_id"]
    step(appliance.engine, clock, 61.0)
    assert appliance.engine.status == "completed"
    detail = api.get(f"/api/sessions/{session_id}").get_json()
    assert detail["status"] == "completed" and detail["duration_s"] >= 60
    assert detail["pattern"]["name"] == "Box breathing"
    assert detail["metrics"]["cycles_completed"] >= 3
    assert len(detail["timeline"]) >= 59
    assert detail["timeline"][0] == {"second": 0, "target_phase": "inhale",
                                     "measured_phase": None, "rate": None, "quality": 0.0,
                                     "displacement": None}
    assert len(detail["insights"]["sentences"]) >= 2
    assert detail["insights"]["next_step"]["minutes"] >= 1
    earned = detail["achievements"]
    assert [a["kind"] for a in earned] == ["first_session"]
    assert earned[0]["can_mint"] is False
    assert earned[0]["mint_unavailable"] == "set a wallet address in Settings"
    again = api.get(f"/api/sessions/{session_id}").get_json()["achievements"]
    assert [a["id"] for a in again] == [earned[0]["id"]]  # stored once
    assert api.get("/api/sessions/nope").status_code == 404


def _read_events(chunks, count=None):
    """Parse SSE text from byte chunks until ``count`` state events (None: until the first
    heartbeat comment, i.e. until the stream has nothing more to say)."""
    buffer, events, comments, retry = "", [], 0, None
    for chunk in chunks:
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.startswith(":"):
                comments += 1
            elif block.startswith("retry:"):
                retry = int(block.split(":")[1])
            else:
                fields = dict(line.split(": ", 1) for line in block.splitlines())
                events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
        if (len(events) >= count) if count is not None else comments:
            break
    return retry, events, comments


def test_live_stream_sends_every_published_state_and_unsubscribes_when_closed(
        data_dir, appliance, clock):
    _, api = control_app(data_dir, appliance)
    engine = appliance.engine
    response = api.get("/api/live", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    chunks = iter(response.response)
    retry, events, _ = _read_events(chunks, 1)
    assert retry == 1000 and events[0][:2] == (1, "state")
    assert len(engine._subscribers) == 1
    witness = engine.subscribe()  # sees what the engine publishes, to compare
    api.post("/api/session", json={"pattern_id": "box", "minutes": 1})
    step(engine, clock, 2.0)
    published = [witness.get_nowait().to_dict() for _ in range(witness.qsize())]
    assert len(published) >= 20  # 10 Hz for 2 s, plus the start
    _, more, comments = _read_events(chunks)
    assert comments == 1  # then a heartbeat: nothing else to send
    assert [i for i, _, _ in more] == list(range(2, 2 + len(published)))
    assert [data for _, _, data in more] == published
    assert more[0][2]["status"] == "running"
    response.close()
    assert engine._subscribers == [witness]


def test_live_stream_ends_when_the_app_shuts_down(appliance):
    stop = threading.Event()
    events = live_events(appliance.engine, retry_ms=1000, heartbeat_s=15.0, stop=stop)
    assert next(events) == "retry: 1000\n\n"
    assert next(events).startswith('id: 1\nevent: state\ndata: {"status":"idle"')
    stop.set()
    assert list(events) == []
    assert appliance.engine._subscribers == []


def test_live_stream_over_a_real_server_at_10_hz_ends_when_the_client_goes(data_dir, factory):
    appliance = build_appliance(Settings(), db_path_for(data_dir), pattern=None, camera=False,
                                gpio=True, clock=MonotonicClock())
    stop = threading.Event()
    loop = threading.Thread(target=appliance.engine.run_forever, args=(stop,), daemon=True)
    loop.start()
    api = logged_in(data_dir, APPLIANCE=appliance, SSE_HEARTBEAT_S=0.2)
    app = api.client.application
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        api.post("/api/session", json={"pattern_id": "box", "minutes": 1})
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
        cookie = api.client.get_cookie("breathe_session")
        conn.request("GET", "/api/live", headers={"Cookie": f"breathe_session={cookie.value}"})
        reply = conn.getresponse()
        assert reply.status == 200
        started = time.monotonic()
        _, events, _ = _read_events(iter(lambda: reply.read1(4096), b""), 21)
        took = time.monotonic() - started
        assert all(e[2]["status"] == "running" for e in events[1:])
        rate = (len(events) - 2) / (events[-1][2]["t"] - events[1][2]["t"])
        assert 8.5 <= rate <= 11.5, rate
        assert took < 4.0
        assert len(appliance.engine._subscribers) == 1
        reply.close()  # the phone walks away: the socket closes
        conn.close()
        deadline = time.monotonic() + 3
        while appliance.engine._subscribers and time.monotonic() < deadline:
            time.sleep(0.02)
        assert appliance.engine._subscribers == []
    finally:
        server.shutdown()
        stop.set()
        loop.join(timeout=5)
        appliance.close()
