"""What a request handler needs besides Flask: this request's database, the API's one error
shape, and the setup-code announcement. The blueprints import these from here (the app factory
in ``webui/__init__.py`` imports the blueprints)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import current_app, g, jsonify, request
from sqlite_utils import Database
from werkzeug.wrappers import Response

from common.errors import BadInput
from device.store import open_db
from device.store.db import db_path_for
from device.store.owner_codes import issue_claim_code

log = logging.getLogger("webui")  # the service log line people grep for their setup code


def get_db() -> Database:
    """This request's database connection, opened on first use."""
    if "db" not in g:
        g.db = open_db(db_path_for(current_app.config["DATA_DIR"]))
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def wants_json() -> bool:
    """API paths answer in JSON, pages in HTML."""
    return request.path == "/api" or request.path.startswith("/api/")


def api_error(status: int, error: str, message: str, field: str | None = None,
              errors: list[dict[str, Any]] | None = None) -> Response:
    """The one error shape of the API (``webui.payloads.ApiError``)."""
    body: dict[str, Any] = {"error": error, "field": field, "message": message}
    if errors is not None:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    return response


_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.DOTALL)


def bad_input_error(exc: BadInput, status: int, error: str) -> Response:
    """A device error (``field: message ...``) as an API error naming its field."""
    text = str(exc)
    match = _FIELD_PREFIX.match(text)
    field, message = (match.group(1), match.group(2)) if match else (None, text)
    return api_error(status, error, message, field)


def announce_claim_code(db: Database) -> str:
    """Issue a fresh setup code and put it in the service log (the device has no owner)."""
    code = issue_claim_code(db)
    log.warning("this device has no owner yet: open /claim in the web app and enter "
                "setup code %s ('breathe claim-code' prints a new one)", code)
    return code
