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

from flask import Flask, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from common.errors import BadInput
from device.session.engine import SessionConflict
from device.store import NotFound, open_db
from device.store.db import db_path_for
from device.store.owner_codes import is_claimed
from webui import (
    api,
    api_account,
    api_achievements,
    api_catalog,
    api_export,
    api_patterns,
    api_session,
    api_sessions,
    auth,
    pages,
    pages_catalog,
    trust,
)
from webui.context import (
    announce_claim_code,
    api_error,
    bad_input_error,
    close_db,
    get_db,
    wants_json,
)
from webui.payloads import InvalidInput
from webui.security import LoginLimiter, secret_key

log = logging.getLogger(__name__)

csrf = CSRFProtect()
# Reachable before the device has an owner: the claim page, static files, health, API docs.
_OPEN_WHILE_UNCLAIMED = {"auth.claim", "auth.recover", "static", "api.health",
                         "api.openapi_document", "pages.manifest", "pages.service_worker",
                         "trust.page", "trust.ca_certificate"}


def config_from_settings(settings: Any) -> dict[str, Any]:
    """The app config the device settings give (data dir, cookies over https, sync, id)."""
    from common.config import data_dir

    return {
        "SETTINGS": settings,
        "DATA_DIR": data_dir(settings),
        "SESSION_COOKIE_SECURE": settings.web.tls_cert is not None,
        "WEB_HOST": settings.web.host,
        "WEB_PORT": settings.web.port,
        "SYNC_ENABLED": settings.mqtt.enabled,
        "DEVICE_ID": settings.device.id,
    }


def _config_from_settings() -> dict[str, Any]:
    from common.config import load_config

    return config_from_settings(load_config())


def _resolve_config(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    """Settings from the device config, unless ``test_config`` replaces them. A ``test_config``
    that carries ``SETTINGS`` but no ``DATA_DIR`` (the daemon's) takes the rest from them."""
    if test_config is None:
        app.config.update(_config_from_settings())
    else:
        if test_config.get("SETTINGS") is not None and "DATA_DIR" not in test_config:
            app.config.update(config_from_settings(test_config["SETTINGS"]))
        app.config.update(dict(test_config))
    if app.config["SETTINGS"] is None:
        from common.config import Settings

        app.config["SETTINGS"] = Settings()  # the defaults, for tests without a config
    settings = app.config["SETTINGS"]
    if app.config["SYNC_ENABLED"] is None:
        app.config["SYNC_ENABLED"] = settings.mqtt.enabled
    if app.config["DEVICE_ID"] is None:
        app.config["DEVICE_ID"] = settings.device.id


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The web app. ``test_config`` (DATA_DIR, SECRET_KEY, TESTING, CLOCK, ...) replaces the
    device settings; without SECRET_KEY the key is made once and kept in the data dir.

    The daemon passes ``{"SETTINGS": settings, "APPLIANCE": ..., "STATUS": ...,
    "SHUTDOWN": event}``: the data dir, sync switch and device id then come from SETTINGS."""
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
        SETTINGS=None,  # common.config.Settings: privacy defaults, device id, sync
        SYNC_ENABLED=None,  # None: from SETTINGS.mqtt.enabled
        SYNC=None,  # device.sync.client.SyncClient; None: no catalog browsing (503)
        DEVICE_ID=None,  # None: from SETTINGS.device.id
        APPLIANCE=None,  # device.session.appliance.Appliance; None: no session control (503)
        STATUS=None,  # device.status.DeviceStatus; None: one made for the data dir
        SHUTDOWN=None,  # a threading.Event: when set, /api/live streams end
        SSE_HEARTBEAT_S=15.0,
        SSE_RETRY_MS=1000,
    )
    _resolve_config(app, test_config)
    app.config["DATA_DIR"] = Path(app.config["DATA_DIR"]).expanduser()
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(app.config["DATA_DIR"])

    app.extensions["breathe.login_limiter"] = LoginLimiter(
        max_failures=app.config["LOGIN_MAX_FAILURES"],
        window_s=app.config["LOGIN_WINDOW_S"],
        clock=app.config["CLOCK"],
    )
    csrf.init_app(app)
    app.teardown_appcontext(close_db)

    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(pages_catalog.bp)
    app.register_blueprint(trust.bp)
    for module in (api, api_session, api_sessions, api_patterns, api_account, api_export,
                   api_achievements, api_catalog):
        app.register_blueprint(module.bp)
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
            announce_claim_code(db)
    finally:
        db.close()


def _require_claim() -> Response | None:
    """Until the device is claimed, every page leads to /claim."""
    if request.endpoint in _OPEN_WHILE_UNCLAIMED or is_claimed(get_db()):
        return None
    if wants_json():
        return api_error(401, "unclaimed", "this device has no owner yet; claim it at /claim")
    return redirect(url_for("auth.claim"))


_PAGE_ERRORS = {
    404: ("Page not found", "There is no page at this address. It may have been mistyped, or "
                            "the session it showed was deleted."),
    405: ("Not possible here", "This address cannot be used that way."),
    413: ("Too large", "What was sent is larger than the device accepts (1 MB at most)."),
}


def _register_error_handlers(app: Flask) -> None:

    @app.errorhandler(InvalidInput)
    def _invalid(exc: InvalidInput) -> Response:
        first = exc.problems[0]
        return api_error(exc.status, exc.error, first.message, first.field,
                         [p.model_dump() for p in exc.problems])

    @app.errorhandler(BadInput)
    def _bad_input(exc: BadInput) -> Response | tuple[str, int]:
        if isinstance(exc, NotFound):
            status, error = 404, "not_found"
        elif isinstance(exc, SessionConflict):
            status, error = 409, "conflict"
        else:
            status, error = 400, "invalid"
        if not wants_json():
            return render_template("error.html", status=status, message=str(exc)), status
        return bad_input_error(exc, status, error)

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError) -> Response | tuple[str, int]:
        if wants_json():
            return api_error(400, "csrf", f"{exc.description} Send the token from GET /api/csrf "
                                          "in the X-CSRFToken header.")
        return render_template("error.html", status=400, message=exc.description), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException | tuple[str, int]:
        if exc.code is None or (exc.code < 400 and not wants_json()):
            return exc
        if not wants_json():  # a page like the others, menu included, in plain words
            title, message = _PAGE_ERRORS.get(exc.code, (exc.name, exc.description or ""))
            page = render_template("error.html", status=exc.code, title=title, message=message)
            response = current_app.make_response((page, exc.code))
            for header, value in exc.get_headers():
                if header in ("Retry-After", "Allow"):
                    response.headers[header] = value
            return response
        name = (exc.name or "error").lower().replace(" ", "_")
        response = api_error(exc.code, name, exc.description or exc.name)
        for header, value in exc.get_headers():
            if header in ("Retry-After", "Allow"):
                response.headers[header] = value
        return response
