"""The JSON API under /api: health (open), the CSRF token, patterns and sessions (login)."""

from __future__ import annotations

import shutil
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_wtf.csrf import generate_csrf
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.wrappers import Response

from device.store import NotFound, StoreError
from device.store.patterns_repo import list_patterns
from device.store.sessions_repo import (
    SessionRecord,
    delete_session,
    get_session,
    list_sessions,
)
from webui import api_error, get_db
from webui.auth import current_owner, login_required

bp = Blueprint("api", __name__, url_prefix="/api")
MIN_FREE_BYTES = 50 * 1024 * 1024  # below this, sessions may fail to save on the SD card


class SessionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


def _bad_query(exc: ValidationError) -> Response:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    return api_error(400, "invalid", f"{first['msg']} (got {first.get('input')!r})", field)


@bp.get("/health")
def health() -> Response:
    """Whether the device can do its job; says nothing about who uses it."""
    reasons: list[str] = []
    try:
        get_db().execute("SELECT 1").fetchone()
    except StoreError:
        reasons.append("database: cannot open the store")
    try:
        free = shutil.disk_usage(current_app.config["DATA_DIR"]).free
        if free < MIN_FREE_BYTES:
            reasons.append(f"disk: only {free // (1024 * 1024)} MB free in the data dir")
    except OSError:
        reasons.append("disk: data dir not readable")
    return jsonify({"status": "degraded" if reasons else "ok", "reasons": reasons})


@bp.get("/csrf")
@login_required
def csrf_token() -> Response:
    """The token JSON clients send back in the X-CSRFToken header on POST/PUT/PATCH/DELETE."""
    return jsonify({"csrf_token": generate_csrf()})


@bp.get("/patterns")
@login_required
def patterns() -> Response:
    owner = current_owner()
    profile = owner.profile.id if owner else None
    return jsonify({"patterns": [r.summary() for r in list_patterns(get_db(), owner=profile)]})


def _session_json(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "pattern_id": record.pattern_id,
        "pattern_name": record.pattern.name if record.pattern else None,
        "started": record.started,
        "ended": record.ended,
        "duration_s": record.duration_s,
        "status": record.status,
        "metrics": record.metrics,
    }


@bp.get("/sessions")
@login_required
def sessions() -> Response:
    """Every session on this device, newest first (the owner is its only account)."""
    try:
        query = SessionQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        return _bad_query(exc)
    records = list_sessions(get_db(), limit=query.limit, offset=query.offset)
    return jsonify({"sessions": [_session_json(r) for r in records],
                    "limit": query.limit, "offset": query.offset})


@bp.delete("/sessions/<session_id>")
@login_required
def forget_session(session_id: str) -> Response | tuple[str, int]:
    """Delete one session and its timeline (CSRF token in the X-CSRFToken header)."""
    db = get_db()
    try:
        running = get_session(db, session_id).status == "running"
    except NotFound as exc:
        return api_error(404, "not_found", str(exc), "session_id")
    if running:
        return api_error(409, "conflict", "session is still running; stop it first", "session_id")
    delete_session(db, session_id)
    return "", 204
