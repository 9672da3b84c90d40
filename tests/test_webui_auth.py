"""The web app's front door: claiming, login, rate limiting, CSRF, cookies, JSON errors."""

from __future__ import annotations

import logging
import re
import stat

import pytest

from common.errors import BadInput
from device.clock import FakeClock
from device.store import db_path_for, open_db
from device.store.owner_codes import AlreadyClaimed, claim_code
from device.store.sessions_repo import create_session, finish_session
from device.store.settings_repo import all_settings
from webui import create_app
from webui.security import SECRET_KEY_FILE, LoginLimiter, claim

NAME = "Ada"
PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token"[^>]* value="([^"]+)"')


@pytest.fixture
def clock():
    return FakeClock(start=1000.0)


@pytest.fixture
def app(data_dir, clock):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "CLOCK": clock,
                       "ISSUE_CLAIM_CODE": False})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def code(app, data_dir):
    return claim_code(data_dir)


def token_from(client, path: str, **extra) -> str:
    page = client.get(path, **extra)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}: {page.status_code}"
    return match.group(1)


def post_claim(client, code: str, name: str = NAME, password: str = PASSWORD,
               confirm: str | None = None, **extra):
    return client.post("/claim", data={
        "csrf_token": token_from(client, "/claim", **extra), "code": code, "display_name": name,
        "password": password, "confirm": password if confirm is None else confirm,
    }, **extra)


def post_login(client, name: str = NAME, password: str = PASSWORD, path: str = "/login",
               **extra):
    return client.post(path, data={"csrf_token": token_from(client, "/login"), "name": name,
                                   "password": password}, **extra)


@pytest.fixture
def claimed(client, code):
    """A claimed device, then a fresh (logged-out) client."""
    assert post_claim(client, code).status_code == 302
    client.post("/logout", data={"csrf_token": token_from(client, "/account")})
    return code


@pytest.fixture
def logged_in(client, claimed):
    assert post_login(client).status_code == 302
    return client


def error_text(html: str, field: str) -> str:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else ""


# --- claiming -------------------------------------------------------------------------------

def test_unclaimed_device_sends_every_page_to_claim(client):
    for path in ("/account", "/login"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == "/claim"
    api = client.get("/api/sessions")
    assert api.status_code == 401
    assert api.get_json()["error"] == "unclaimed"
    assert client.get("/api/health").status_code == 200


def test_claim_code_is_logged_at_start_and_the_newest_one_wins(data_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="webui"):
        create_app({"DATA_DIR": data_dir, "TESTING": True})
    logged = re.search(r"setup code ([A-Z0-9]{4}-[A-Z0-9]{4})", caplog.text).group(1)
    newer = claim_code(data_dir)
    assert newer != logged
    db = open_db(db_path_for(data_dir))
    try:
        with pytest.raises(BadInput, match="setup code is not valid"):
            claim(db, logged, NAME, PASSWORD)
        assert claim(db, newer.lower().replace("-", " "), NAME, PASSWORD).display_name == NAME
    finally:
        db.close()


def test_wrong_code_is_refused_next_to_the_code_field(client, code):
    wrong = "AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB"
    response = post_claim(client, wrong)
    assert response.status_code == 400
    assert "setup code is not valid" in error_text(response.get_data(as_text=True), "code")
    assert client.get("/account").headers["Location"] == "/claim"


def test_short_password_is_refused_with_a_message_next_to_the_field(client, code):
    response = post_claim(client, code, password="short")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "at least 10 characters" in error_text(html, "password")
    assert re.search(r'<input [^>]*aria-invalid="true"[^>]*id="password"', html)
    mismatch = post_claim(client, code, confirm=PASSWORD + "x")
    assert "differ" in error_text(mismatch.get_data(as_text=True), "confirm")
    assert post_claim(client, code).status_code == 302  # the code survived the failures


def test_guessing_setup_codes_is_rate_limited(client, code, clock):
    wrong = "AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB"
    for _ in range(5):
        assert post_claim(client, wrong).status_code == 400
    locked = post_claim(client, code)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    clock.advance(300)
    assert post_claim(client, code).status_code == 302


def test_claim_creates_the_owner_once_and_burns_the_code(client, code, data_dir):
    response = post_claim(client, code)
    assert response.status_code == 302
    assert f"Signed in as <strong>{NAME}</strong>" in client.get("/account").get_data(
        as_text=True)
    assert client.get("/claim").headers["Location"] == "/login"
    db = open_db(db_path_for(data_dir))
    try:
        with pytest.raises(BadInput, match="code"):
            claim(db, code, "Mallory", PASSWORD)
        stored = all_settings(db)
        assert "auth.claim_code" not in stored
        assert PASSWORD not in repr(stored)  # only the hash is kept
        assert stored["auth.owner"]["password_hash"].startswith("scrypt:")
    finally:
        db.close()
    with pytest.raises(AlreadyClaimed):
        claim_code(data_dir)


def test_a_claimed_device_refuses_a_second_claim_post(client, claimed):
    other = client.application.test_client()
    response = other.post("/claim", data={"csrf_token": token_from(other, "/login"),
                                          "code": claimed, "display_name": "Mallory",
                                          "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login"


# --- login, logout, rate limit -----------------------------------------------------------------

def test_login_with_the_right_name_and_password(client, claimed):
    response = post_login(client, name="ada", path="/login?next=/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200


def test_login_refuses_wrong_password_and_wrong_name_alike(client, claimed):
    bad_password = post_login(client, password="wrong password!")
    bad_name = post_login(client, name="Eve")
    assert bad_password.status_code == bad_name.status_code == 401
    texts = [r.get_data(as_text=True) for r in (bad_password, bad_name)]
    assert all("That name and password do not match." in t for t in texts)
    assert client.get("/account").status_code == 302


def test_login_ignores_a_next_that_leaves_the_site(client, claimed):
    response = post_login(client, path="/login?next=//evil.example/steal")
    assert response.headers["Location"] == "/"  # the home page, not the lure


def test_five_failures_lock_the_client_out_with_retry_after(client, claimed, clock):
    for _ in range(5):
        assert post_login(client, password="wrong password!").status_code == 401
    locked = post_login(client)  # even the right password waits
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 300
    other = post_login(client, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 302  # another client is not punished
    clock.advance(301)
    assert post_login(client).status_code == 302


def test_limiter_forgets_failures_outside_its_window():
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        limiter.failed("a")
        clock.advance(10)
    assert limiter.retry_after("a") == 30
    clock.advance(31)
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    limiter.succeeded("a")
    assert limiter.retry_after("a") is None


def test_logout_ends_the_session(logged_in):
    assert logged_in.get("/logout").status_code == 405  # logging out changes state: POST only
    token = token_from(logged_in, "/account")
    assert logged_in.post("/logout", data={"csrf_token": token}).status_code == 302
    assert logged_in.get("/account").headers["Location"].startswith("/login")
    assert logged_in.get("/api/patterns").status_code == 401


# --- login required -------------------------------------------------------------------------

def test_pages_redirect_and_api_answers_401_json_without_login(client, claimed):
    page = client.get("/account")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=/account"
    for path in ("/api/patterns", "/api/sessions", "/api/csrf"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json() == {"error": "unauthorized", "field": None,
                                       "message": "log in first (POST /login)"}


def test_logged_in_owner_reads_patterns_and_sessions(logged_in, data_dir):
    db = open_db(db_path_for(data_dir))
    try:
        running = create_session(db, "box").id
        done = create_session(db, "box").id
        finish_session(db, done, status="completed", duration_s=60.0, metrics={"adherence": 0.9})
    finally:
        db.close()
    patterns = logged_in.get("/api/patterns").get_json()["patterns"]
    box = next(p for p in patterns if p["id"] == "box")
    assert box["built_in"] is True and box["cycle_s"] > 0
    sessions = logged_in.get("/api/sessions").get_json()["sessions"]
    assert {s["id"] for s in sessions} == {running, done}
    finished = next(s for s in sessions if s["id"] == done)
    assert finished["status"] == "completed" and finished["metrics"] == {"adherence": 0.9}
    bad = logged_in.get("/api/sessions?limit=0")
    assert bad.status_code == 400
    assert bad.get_json()["field"] == "limit"


# --- CSRF ------------------------------------------------------------------------------------

def test_form_posts_without_a_csrf_token_are_refused(client, claimed):
    response = client.post("/login", data={"name": NAME, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account").status_code == 302  # not logged in


def test_logout_without_token_keeps_the_session(logged_in):
    assert logged_in.post("/logout").status_code == 400
    assert logged_in.get("/account").status_code == 200


def test_json_api_needs_the_token_in_a_header(logged_in, data_dir):
    db = open_db(db_path_for(data_dir))
    try:
        session_id = create_session(db, "box").id
        finish_session(db, session_id, status="stopped", duration_s=5.0, metrics={})
        running = create_session(db, "box").id
    finally:
        db.close()
    refused = logged_in.delete(f"/api/sessions/{session_id}")
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "csrf"
    token = logged_in.get("/api/csrf").get_json()["csrf_token"]
    headers = {"X-CSRFToken": token}
    assert logged_in.delete(f"/api/sessions/{session_id}", headers=headers).status_code == 204
    gone = logged_in.delete(f"/api/sessions/{session_id}", headers=headers)
    assert gone.status_code == 404 and gone.get_json()["field"] == "session_id"
    assert logged_in.delete(f"/api/sessions/{running}", headers=headers).status_code == 409
    ids = [s["id"] for s in logged_in.get("/api/sessions").get_json()["sessions"]]
    assert ids == [running]


def test_api_errors_are_json(logged_in):
    missing = logged_in.get("/api/nothing-here")
    assert missing.status_code == 404
    assert set(missing.get_json()) == {"error", "field", "message"}
    wrong_method = logged_in.post("/api/health")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]


# --- cookies, escaping, health, secret key ----------------------------------------------------

def test_session_cookie_is_httponly_and_samesite_lax(client, claimed):
    response = post_login(client)
    cookie = next(v for k, v in response.headers.items()
                  if k == "Set-Cookie" and v.startswith("breathe_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in tests; https sets it (see next test)


def test_secure_cookie_when_serving_https(data_dir):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "SESSION_COOKIE_SECURE": True,
                      "ISSUE_CLAIM_CODE": False})
    client = app.test_client()
    code = claim_code(data_dir)
    https = "https://breathe.local"
    # Over https flask-wtf also checks that the Referer is this site, as browsers send it.
    refused = post_claim(client, code, base_url=https)
    assert refused.status_code == 400
    response = post_claim(client, code, base_url=https, headers={"Referer": https + "/claim"})
    assert response.status_code == 302
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie")
    assert "Secure" in cookie


def test_templates_escape_a_display_name_with_markup(client, code):
    evil = "<script>alert(1)</script>"
    assert post_claim(client, code, name=evil).status_code == 302
    html = client.get("/account").get_data(as_text=True)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_health_is_open_and_says_nothing_personal(client, claimed):
    response = client.get("/api/health")
    body = response.get_json()
    assert response.status_code == 200
    assert set(body) == {"status", "reasons"}
    assert body == {"status": "ok", "reasons": []}
    assert NAME not in response.get_data(as_text=True)


def test_secret_key_is_kept_private_and_logins_survive_a_restart(data_dir, monkeypatch):
    monkeypatch.setenv("BREATHE_DATA_DIR", str(data_dir))
    first = create_app()  # settings from the environment, like `breathe run`
    key_file = data_dir / SECRET_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    client = first.test_client()
    assert post_claim(client, claim_code(data_dir)).status_code == 302
    restarted = create_app()
    assert restarted.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    cookie = client.get_cookie("breathe_session")
    again = restarted.test_client()
    again.set_cookie(cookie.key, cookie.value)
    assert again.get("/account").status_code == 200
