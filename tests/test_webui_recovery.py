# ruff: noqa: F811  (the fixtures of test_webui_auth, imported by name)
"""The owner's way back in: a new password in Settings, and recovery at the device's console
(``breathe claim-code --reset``) that keeps every session. Both logged and rate-limited."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from test_webui_auth import (  # noqa: F401  (fixtures)
    NAME,
    PASSWORD,
    app,
    claimed,
    client,
    clock,
    code,
    error_text,
    post_claim,
    post_login,
    token_from,
)

from device.cli import main
from device.store import db_path_for, open_db
from device.store.owner_codes import issue_recovery_code
from device.store.sessions_repo import create_session, list_sessions
from webui.security import recover

NEW = "a much better passphrase"


def post_recover(client, code: str, password: str = NEW, confirm: str | None = None):
    return client.post("/recover", data={
        "csrf_token": token_from(client, "/recover"), "code": code, "password": password,
        "confirm": password if confirm is None else confirm})


def reset_code(data_dir) -> str:
    done = CliRunner().invoke(main, ["claim-code", "--reset"],
                              env={"BREATHE_DATA_DIR": str(data_dir)})
    assert done.exit_code == 0, done.output
    return done.stdout.strip().splitlines()[0]


def api_token(client) -> str:
    return client.get("/api/csrf").get_json()["csrf_token"]


def change(client, current: str, new: str):
    return client.post("/api/account/password", json={"current_password": current,
                                                      "new_password": new},
                       headers={"X-CSRFToken": api_token(client)})


# --- password change in Settings ---------------------------------------------------------

def test_password_change_needs_the_current_password_and_ends_other_logins(app, claimed, caplog):
    phone, laptop = app.test_client(), app.test_client()
    assert post_login(phone).status_code == 302 and post_login(laptop).status_code == 302
    wrong = change(phone, "not the password", NEW)
    assert wrong.status_code == 403 and wrong.get_json()["field"] == "current_password"
    short = change(phone, PASSWORD, "short")
    assert short.status_code == 400 and "at least 10" in short.get_json()["message"]
    with caplog.at_level(logging.WARNING, logger="webui"):
        done = change(phone, PASSWORD, NEW)
    assert done.status_code == 200 and "password changed" in caplog.text.lower()
    assert phone.get("/api/profile").status_code == 200  # this login stays
    assert laptop.get("/api/profile").status_code == 401  # the others end
    assert post_login(app.test_client()).status_code == 401  # the old password is gone
    assert post_login(app.test_client(), password=NEW).status_code == 302


def test_guessing_the_current_password_is_rate_limited(client, claimed, clock):
    assert post_login(client).status_code == 302
    for _ in range(5):
        assert change(client, "guess guess guess", NEW).status_code == 403
    locked = change(client, PASSWORD, NEW)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    clock.advance(301)
    assert change(client, PASSWORD, NEW).status_code == 200


# --- recovery at the device ----------------------------------------------------------------

def test_reset_code_sets_a_new_password_and_keeps_every_session(client, claimed, data_dir,
                                                                caplog):
    db = open_db(db_path_for(data_dir))
    create_session(db, pattern_id="box", profile=None)
    with caplog.at_level(logging.WARNING, logger="webui"):
        code = issue_recovery_code(db)  # what 'breathe claim-code --reset' runs (tested below)
    db.close()
    assert "recovery code issued" in caplog.text
    assert client.get("/login").status_code == 200
    assert "/recover" in client.get("/login").get_data(as_text=True)
    with caplog.at_level(logging.WARNING, logger="webui"):
        response = post_recover(client, code)
    assert "password reset with a recovery code" in caplog.text
    assert response.status_code == 302  # logged in with the new password
    assert client.get("/api/profile").get_json()["display_name"] == NAME
    db = open_db(db_path_for(data_dir))
    assert len(list_sessions(db)) == 1  # kept
    db.close()
    assert post_login(client.application.test_client()).status_code == 401
    assert post_login(client.application.test_client(), password=NEW).status_code == 302
    again = post_recover(client.application.test_client(), code, password=NEW + "!")
    assert "not valid" in error_text(again.get_data(as_text=True), "code")  # burnt


def test_a_wrong_recovery_code_is_said_first_and_guessing_is_limited(client, claimed, data_dir,
                                                                      clock):
    code = reset_code(data_dir)
    wrong = "AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB"
    first = post_recover(client, wrong, password="short")
    html = first.get_data(as_text=True)
    assert first.status_code == 400 and "not valid" in error_text(html, "code")
    for _ in range(4):
        post_recover(client, wrong)
    locked = post_recover(client, code)
    assert locked.status_code == 429
    clock.advance(301)
    assert post_recover(client, code).status_code == 302


def test_a_recovery_code_expires_after_30_minutes(claimed, data_dir):
    code = reset_code(data_dir)
    db = open_db(db_path_for(data_dir))
    try:
        later = datetime.now(UTC) + timedelta(minutes=31)
        with pytest.raises(Exception, match="expired"):
            recover(db, code, NEW, now=later)
        assert recover(db, code, NEW).profile.display_name == NAME
    finally:
        db.close()


def test_reset_on_an_unclaimed_device_points_to_the_setup_code(data_dir):
    done = CliRunner().invoke(main, ["claim-code", "--reset"],
                              env={"BREATHE_DATA_DIR": str(data_dir)})
    assert done.exit_code == 2 and "without --reset" in done.output
    plain = CliRunner().invoke(main, ["claim-code"], env={"BREATHE_DATA_DIR": str(data_dir)})
    assert plain.exit_code == 0


def test_claim_form_says_the_setup_code_is_wrong_even_when_other_fields_are_wrong(client, code):
    wrong = "AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB"
    response = post_claim(client, wrong, password="short")
    assert response.status_code == 400
    assert "setup code is not valid" in error_text(response.get_data(as_text=True), "code")


def test_claim_refuses_a_long_name_in_words_and_never_cuts_it(client, code):
    page = client.get("/claim").get_data(as_text=True)
    assert "maxlength" not in page  # the browser would cut a pasted name silently
    response = post_claim(client, code, name="x" * 10_000)
    said = error_text(response.get_data(as_text=True), "display_name")
    assert response.status_code == 400 and "at most 50" in said and "10000" in said
