# ruff: noqa: F811  (the fixtures of webui_api_support, imported by name)
"""What a person reads when something is off: plain error texts, a styled 404 with the menu,
a delete that checks the password before asking "are you sure?", refused wallet addresses,
names refused (never silently cut), and Home remembering the last choice."""

from __future__ import annotations

from webui_api_support import (  # noqa: F401 - fixtures
    PASSWORD,
    api,
    app,
    appliance,
    clock,
    db,
    logged_in,
    owner_id,
)

from device.store.sessions_repo import list_sessions


def test_pattern_errors_say_what_to_do_in_plain_words(api):
    refused = api.post("/api/patterns", json={"name": "", "inhale": -4, "exhale": 4})
    problems = {p["field"]: p["message"] for p in refused.get_json()["errors"]}
    assert problems == {"name": "Enter a name.",
                        "inhale": "Use 1 to 30 seconds, in steps of 0.25 s (you entered -4)."}
    long = api.post("/api/patterns", json={"name": "x" * 10_000, "inhale": 4, "exhale": 4})
    assert long.status_code == 400
    message = long.get_json()["message"]
    assert "at most 50 characters" in message and "10000" in message and "cut" in message
    assert all(p["name"] != "x" * 50 for p in api.get("/api/patterns").get_json()["patterns"])


def test_other_errors_read_as_sentences_without_developer_syntax(api):
    empty = api.put("/api/profile", json={"display_name": ""}).get_json()
    assert empty["message"] == "This must not be empty."
    short = api.put("/api/settings", json={"default_minutes": 0.1}).get_json()
    assert short["message"] == "Use a number of at least 0.5 (you entered 0.1)."
    for body in (empty, short):
        assert "(got" not in body["message"] and "string should" not in body["message"]


def test_the_all_zero_wallet_is_refused(api):
    zero = api.put("/api/profile", json={"wallet_address": "0x" + "0" * 40})
    assert zero.status_code == 400
    assert "belongs to nobody" in zero.get_json()["message"]
    assert api.get("/api/profile").get_json()["wallet_address"] is None


def test_unknown_pages_get_a_styled_page_with_the_menu(api):
    page = api.get("/no/such/page")
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Page not found" in html and 'class="site-nav"' in html and "/static/css/app.css" in html
    assert api.get("/api/no/such").get_json()["error"] == "not_found"  # the API stays JSON


def test_delete_checks_the_password_first_and_deletes_nothing_then(api, db):
    from webui_api_support import stored_session

    stored_session(db)
    wrong = api.post("/api/account/delete", json={"password": "nope", "check_only": True})
    assert wrong.status_code == 403
    right = api.post("/api/account/delete", json={"password": PASSWORD, "check_only": True})
    assert right.status_code == 200 and right.get_json()["deleted"] == {}
    assert len(list_sessions(db)) == 1  # nothing deleted by the check
    assert api.post("/api/account/delete", json={"password": PASSWORD}).status_code == 200
    assert list_sessions(db) == []


def test_starting_a_session_remembers_pattern_and_minutes_for_home(data_dir, appliance):
    api = logged_in(data_dir, APPLIANCE=appliance)
    assert api.post("/api/session", json={"pattern_id": "box", "minutes": 3}).status_code == 201
    settings = api.get("/api/settings").get_json()
    assert (settings["default_pattern"], settings["default_minutes"]) == ("box", 3)


def test_with_sync_off_the_catalog_message_is_for_people(api):
    off = api.get("/api/catalog").get_json()["message"]
    assert "sync is off" in off.lower() and "[mqtt]" not in off
