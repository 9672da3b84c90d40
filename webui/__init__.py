"""The device's web app: ``create_app`` builds it, one blueprint per area.

Config comes from the device settings (``web`` section, data dir from ``device.data_dir`` or
``$BREATHE_DATA_DIR``) unless ``test_config`` is given. Every request gets its own database
connection (``get_db``), closed when the request ends: SQLite connections are per thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlite_utils import Database
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from device.store import open_db
from device.store.db import db_path_for
from webui.security import LoginLimiter, is_claimed, issue_claim_code, secret_key

log = logging.getLogger(__name__)

csrf = CSRFProtect()
# Reachable before the device has an owner: the claim page itself, static files, health.
_OPEN_WHILE_UNCLAIMED = {"auth.claim", "static", "api.health"}


def get_db() -> Database:
    """This request's database connection, opened on first use."""
    if "db" not in g:
        g.db = open_db(db_path_for(current_app.config["DATA_DIR"]))
    return g.db


def _close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def wants_json() -> bool:
    """API paths answer in JSON, pages in HTML."""
    return request.path == "/api" or request.path.startswith("/api/")


def api_error(status: int, error: str, message: str, field: str | None = None) -> Response:
    response = jsonify({"error": error, "field": field, "message": message})
    response.status_code = status
    return response


def _config_from_settings() -> dict[str, Any]:
    from device.config import data_dir, load_config

    settings = load_config()
    return {
        "DATA_DIR": data_dir(settings),
        "SESSION_COOKIE_SECURE": settings.web.tls_cert is not None,
        "WEB_HOST": settings.web.host,
        "WEB_PORT": settings.web.port,
    }


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The web app. ``test_config`` (DATA_DIR, SECRET_KEY, TESTING, CLOCK, ...) replaces the
    device settings; without SECRET_KEY the key is made once and kept in the data dir."""
    app = Flask(__name__)
    app.config.from_mapping(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,
        SESSION_COOKIE_NAME="breathe_session",
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        # The token lives as long as the login: an installed PWA may stay open for hours.
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=1024 * 1024,
        LOGIN_MAX_FAILURES=5,
        LOGIN_WINDOW_S=300.0,
        CLOCK=None,
        ISSUE_CLAIM_CODE=True,
    )
    app.config.update(_config_from_settings() if test_config is None else dict(test_config))
    app.config["DATA_DIR"] = Path(app.config["DATA_DIR"]).expanduser()
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(app.config["DATA_DIR"])

    app.extensions["breathe.login_limiter"] = LoginLimiter(
        max_failures=app.config["LOGIN_MAX_FAILURES"],
        window_s=app.config["LOGIN_WINDOW_S"],
        clock=app.config["CLOCK"],
    )
    csrf.init_app(app)
    app.teardown_appcontext(_close_db)

    from webui import api, auth

    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.before_request(_require_claim)
    _register_error_handlers(app)
    if app.config["ISSUE_CLAIM_CODE"]:
        _announce_claim_code(app)
    return app


def _announce_claim_code(app: Flask) -> None:
    """Put a fresh setup code in the service log while the device has no owner."""
    db = open_db(db_path_for(app.config["DATA_DIR"]))
    try:
        if not is_claimed(db):
            code = issue_claim_code(db)
            log.warning("this device has no owner yet: open /claim in the web app and enter "
                        "setup code %s ('breathe claim-code' prints a new one)", code)
    finally:
        db.close()


def _require_claim() -> Response | None:
    """Until the device is claimed, every page leads to /claim."""
    if request.endpoint in _OPEN_WHILE_UNCLAIMED or is_claimed(get_db()):
        return None
    if wants_json():
        return api_error(401, "unclaimed", "this device has no owner yet; claim it at /claim")
    return redirect(url_for("auth.claim"))


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError) -> Response | tuple[str, int]:
        if wants_json():
            return api_error(400, "csrf", f"{exc.description} Send the token from GET /api/csrf "
                                          "in the X-CSRFToken header.")
        return render_template("error.html", status=400, message=exc.description), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if not wants_json() or exc.code is None:
            return exc
        name = (exc.name or "error").lower().replace(" ", "_")
        response = api_error(exc.code, name, exc.description or exc.name)
        for header, value in exc.get_headers():
            if header in ("Retry-After", "Allow"):
                response.headers[header] = value
        return response
