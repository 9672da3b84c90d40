# ruff: noqa: F811 - pytest fixtures are imported from webui_api_support by name
"""The JSON API as a whole: login and CSRF on every path, the error shape, the OpenAPI
document, device health and stats, and custom patterns."""

from __future__ import annotations

import re

from webui_api_support import (  # noqa: F401 - fixtures
    NAME,
    ApiClient,
    api,
    app,
    claim_device,
    db,
    make_app,
    owner_id,
    stored_session,
)

from device.store.patterns_repo import find_pattern
from device.store.sessions_repo import get_session
from webui.openapi import build_document

OPEN_PATHS = {"/api/health", "/api/openapi.json"}


def operations(app) -> list[tuple[str, str]]:
    """(method, concrete path) of every documented operation, ids filled with dummies."""
    doc = build_document(app)
    found = []
    for path, methods in doc["paths"].items():
        concrete = re.sub(r"\{achievement_id\}", "1", path)
        concrete = re.sub(r"\{[a-z_]+\}", "box", concrete)
        found += [(method.upper(), concrete) for method in methods]
    return found


def test_every_api_path_but_health_and_the_document_needs_a_login(app, owner_id):
    client = app.test_client()
    # a logged-out browser has a CSRF token from the login form, so only the login is missing
    token = re.search(r'name="csrf_token"[^>]* value="([^"]+)"',
                      client.get("/login").get_data(as_text=True)).group(1)
    checked = 0
    for method, path in operations(app):
        response = client.open(path, method=method, json={}, headers={"X-CSRFToken": token})
        if path in OPEN_PATHS:
            assert response.status_code == 200, path
            continue
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.get_json() == {"error": "unauthorized", "field": None,
                                       "message": "log in first (POST /login)"}
        checked += 1
    assert checked >= 20


def test_every_state_changing_path_refuses_a_request_without_the_csrf_token(app, api):
    checked = 0
    for method, path in operations(app):
        if method not in ("POST", "PUT", "DELETE"):
            continue
        response = api.client.open(path, method=method, json={"password": "x"})
        assert response.status_code == 400, (method, path)
        assert response.get_json()["error"] == "csrf", (method, path)
        forged = api.client.open(path, method=method, json={},
                                 headers={"X-CSRFToken": "forged"})
        assert forged.get_json()["error"] == "csrf"
        checked += 1
    assert checked >= 11
    assert api.get("/api/profile").get_json()["display_name"] == NAME  # nothing changed


def test_openapi_document_describes_every_route_from_the_models(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    api_rules = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule) for r in app.url_map.iter_rules()
                 if r.rule.startswith("/api/")}
    assert api_rules == set(doc["paths"])
    schemas = doc["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', str(doc).replace("'", '"')))
    assert refs <= set(schemas), refs - set(schemas)
    body = schemas["PatternBody"]["properties"]
    assert body["inhale"]["minimum"] == 1 and body["inhale"]["maximum"] == 30
    assert schemas["PatternBody"]["additionalProperties"] is False
    start = doc["paths"]["/api/session"]["post"]
    assert start["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LiveState"}
    assert {"401", "409", "503", "400"} <= set(start["responses"])
    assert any(p["name"] == "X-CSRFToken" for p in start["parameters"])
    assert "security" not in doc["paths"]["/api/health"]["get"]
    live = doc["paths"]["/api/live"]["get"]["responses"]["200"]["content"]
    assert list(live) == ["text/event-stream"]


def test_errors_are_json_with_the_field_at_fault(api):
    not_json = api.client.post("/api/patterns", data="name=x",
                               headers={"X-CSRFToken": api.token,
                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert not_json.status_code == 415
    assert not_json.get_json()["error"] == "unsupported_media_type"
    broken = api.client.post("/api/patterns", data="{", headers={
        "X-CSRFToken": api.token, "Content-Type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.get_json()["message"]
    a_list = api.post("/api/patterns", json=[1, 2])
    assert a_list.status_code == 400 and "JSON object" in a_list.get_json()["message"]
    unknown = api.put("/api/settings", json={"colour": "blue"})
    assert unknown.status_code == 400
    assert unknown.get_json()["field"] == "colour"
    assert unknown.get_json()["message"] == "This field is not known here: leave it out."
    text_number = api.put("/api/settings", json={"default_minutes": "10"})
    assert text_number.get_json()["field"] == "default_minutes"
    assert "valid number" in text_number.get_json()["message"]
    bad_query = api.get("/api/sessions?offset=-1")
    assert bad_query.status_code == 400 and bad_query.get_json()["field"] == "offset"


def test_health_is_open_and_stats_come_from_the_device_status(data_dir):
    class Status:
        def health(self):
            return {"status": "degraded", "reasons": ["camera: no frames for 12 s"]}

        def stats(self):
            return {"uptime_s": 12.5, "version": "0.1", "camera": {"fps": 14.8},
                    "cpu_temp_c": None, "outbox_depth": 3, "mqtt": "connected"}

    app = make_app(data_dir, STATUS=Status())
    claim_device(data_dir)
    client = app.test_client()
    assert client.get("/api/health").get_json() == {
        "status": "degraded", "reasons": ["camera: no frames for 12 s"]}
    assert client.get("/api/stats").status_code == 401
    stats = ApiClient(client).login().get("/api/stats").get_json()
    assert stats["uptime_s"] == 12.5 and stats["camera"] == {"fps": 14.8}
    assert stats["outbox_depth"] == 3 and stats["mqtt"] == "connected"


def test_without_the_daemons_status_health_checks_this_data_dir(app, owner_id):
    body = app.test_client().get("/api/health").get_json()
    assert body == {"status": "ok", "reasons": []}  # store opens, disk has room, no sync
    assert type(app.config["STATUS"]).__name__ == "DeviceStatus"


# -- patterns ---------------------------------------------------------------------------------

CALM = {"name": "Calm 4-6", "inhale": 4, "exhale": 6, "description": "Longer out-breath",
        "benefits": ["Easy"]}


def test_custom_pattern_lifecycle(api, db):
    created = api.post("/api/patterns", json=CALM)
    assert created.status_code == 201
    body = created.get_json()
    assert body["id"] == "my-calm-4-6" and body["built_in"] is False
    assert body["cycle_s"] == 10 and body["breaths_per_minute"] == 6
    listed = [p["id"] for p in api.get("/api/patterns").get_json()["patterns"]]
    assert listed[-1] == "my-calm-4-6" and listed[0] == "box"
    assert api.get("/api/patterns/my-calm-4-6").get_json()["benefits"] == ["Easy"]

    session_id = stored_session(db, pattern_id="my-calm-4-6")
    changed = api.put("/api/patterns/my-calm-4-6", json={**CALM, "exhale": 8})
    assert changed.status_code == 200 and changed.get_json()["exhale"] == 8
    assert changed.get_json()["id"] == "my-calm-4-6"
    assert api.delete("/api/patterns/my-calm-4-6").status_code == 204
    assert api.get("/api/patterns/my-calm-4-6").status_code == 404
    kept = get_session(db, session_id)  # history keeps the pattern it ran
    assert kept.pattern.name == "Calm 4-6" and kept.pattern.exhale == 6
    assert api.get(f"/api/sessions/{session_id}").get_json()["pattern_name"] == "Calm 4-6"


def test_invalid_pattern_lists_every_problem_next_to_its_field(api):
    response = api.post("/api/patterns", json={"name": " ", "inhale": 0.5, "exhale": 4.1,
                                               "hold_in": "4", "benefits": ["ok", ""]})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid"
    problems = {e["field"]: e["message"] for e in body["errors"]}
    assert set(problems) == {"name", "inhale", "exhale", "hold_in", "benefits.1"}
    assert problems["inhale"] == "Use 1 to 30 seconds, in steps of 0.25 s (you entered 0.5)."
    assert "steps of 0.25 s (you entered 4.1)" in problems["exhale"]
    assert (body["field"], body["message"]) == (body["errors"][0]["field"],
                                                body["errors"][0]["message"])
    too_long = api.post("/api/patterns", json={"name": "Long", "inhale": 30, "exhale": 30,
                                               "hold_in": 60, "hold_out": 10})
    assert too_long.get_json()["field"] == "cycle"


def test_pattern_names_are_unique_and_built_ins_cannot_change(api, db):
    assert api.post("/api/patterns", json=CALM).status_code == 201
    again = api.post("/api/patterns", json={**CALM, "name": "calm 4-6"})
    assert again.status_code == 400
    assert again.get_json()["field"] == "name"
    assert "already used" in again.get_json()["message"]
    builtin_name = api.post("/api/patterns", json={**CALM, "name": "Box breathing"})
    assert "built-in" in builtin_name.get_json()["message"]
    edit = api.put("/api/patterns/box", json=CALM)
    assert edit.status_code == 409 and "built-in" in edit.get_json()["message"]
    assert api.delete("/api/patterns/box").status_code == 409
    assert find_pattern(db, "box").pattern.inhale == 4
    assert api.delete("/api/patterns/nope").status_code == 404
    assert api.put("/api/patterns/nope", json=CALM).get_json()["field"] == "pattern_id"


def test_openapi_document_needs_no_login_even_on_an_unclaimed_device(app):
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    assert "ProfileUpdate" in response.get_json()["components"]["schemas"]
