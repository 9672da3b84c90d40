"""The JSON API's core: health (open), device stats, the CSRF token and the OpenAPI document.

The other areas have their own blueprints (``api_session``, ``api_sessions``, ``api_patterns``,
``api_account``, ``api_export``, ``api_achievements``), all under /api.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from device.status import DeviceStatus
from webui.api_models import CsrfToken, Health, Stats, reply
from webui.auth import login_required
from webui.openapi import build_document, documented

bp = Blueprint("api", __name__, url_prefix="/api")


def device_status() -> DeviceStatus:
    """The daemon's ``DeviceStatus``, or one made for this data dir (web app on its own)."""
    status = current_app.config.get("STATUS")
    if status is None:
        status = current_app.config["STATUS"] = DeviceStatus(current_app.config["DATA_DIR"])
    return status


@bp.get("/health")
@documented("health", tag="device", responses={200: Health},
            description="Whether the device can do its job; open to anyone, says nothing "
                        "about who uses it.")
def health() -> Response:
    return reply(Health.model_validate(device_status().health()))


@bp.get("/stats")
@login_required
@documented("stats", tag="device", responses={200: Stats},
            description="Uptime, camera, inference time, temperature, memory, outbox, sync.")
def stats() -> Response:
    return reply(Stats.model_validate(device_status().stats()))


@bp.get("/csrf")
@login_required
@documented("csrf token", tag="auth", responses={200: CsrfToken})
def csrf_token() -> Response:
    """The token JSON clients send back in the X-CSRFToken header on POST/PUT/DELETE."""
    return reply(CsrfToken(csrf_token=generate_csrf()))


@bp.get("/openapi.json")
@documented("openapi document", tag="meta", responses={200: dict},
            description="This document (OpenAPI 3.1), generated from the API's models.")
def openapi_document() -> Response:
    document = current_app.extensions.get("breathe.openapi")
    if document is None:
        document = current_app.extensions["breathe.openapi"] = build_document(current_app)
    return jsonify(document)
