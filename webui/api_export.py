"""Export all my data: one JSON document, or a zip of CSV files (one per kind of record).

Everything personal the device keeps: the profile, every session with its metrics, pattern
snapshot and per-second timeline, custom patterns, achievements, mint requests and the stored
settings, except ``auth.*`` (the password hash and setup code are secrets, not data about the
person). A year of daily sessions is a few hundred thousand timeline rows, so neither format
is built in memory: the JSON is streamed session by session and the zip is written to a
spooled temporary file.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, send_file
from sqlite_utils import Database
from werkzeug.wrappers import Response

from device.privacy import effective_privacy
from device.store.achievements_repo import list_achievements
from device.store.db import db_path_for, open_db
from device.store.owner_codes import AUTH_KEY_PREFIX
from device.store.patterns_repo import list_patterns
from device.store.sessions_repo import SessionRecord, list_sessions, session_timeline
from device.store.settings_repo import all_settings
from webui.api_achievements import achievement_views
from webui.api_models import Export, ExportSession, MintRequestOut, PatternDetail, Privacy, Profile
from webui.api_sessions import session_summary
from webui.auth import current_owner, login_required
from webui.context import get_db
from webui.openapi import documented
from webui.payloads import ExportQuery

bp = Blueprint("api_export", __name__, url_prefix="/api")
PAGE = 200
SPOOL_BYTES = 4 * 1024 * 1024


def _sessions(db: Database) -> Iterator[SessionRecord]:
    offset = 0
    while True:
        page = list_sessions(db, limit=PAGE, offset=offset)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def _export_session(db: Database, record: SessionRecord) -> ExportSession:
    return ExportSession(**session_summary(record).model_dump(), pattern=record.pattern,
                         timeline=session_timeline(db, record.id))


def _head(db: Database) -> dict[str, Any]:
    """Everything but the sessions, as JSON-ready data."""
    owner = current_owner()
    profile = owner.profile if owner else None
    owner_id = profile.id if profile else None
    return {
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device_id": current_app.config["DEVICE_ID"],
        "profile": Profile(**vars(profile)) if profile else None,
        "settings": {k: v for k, v in all_settings(db).items()
                     if not k.startswith(AUTH_KEY_PREFIX)},
        "privacy": Privacy(**effective_privacy(current_app.config["SETTINGS"], db).model_dump()),
        "sessions": [],
        "patterns": [PatternDetail(**r.detail()) for r in list_patterns(db, owner=owner_id)
                     if not r.built_in],
        "achievements": achievement_views(db, list_achievements(db)),
        "mint_requests": [MintRequestOut(**row) for row in db.query(
            f"SELECT {', '.join(MintRequestOut.model_fields)} FROM mint_requests "
            "ORDER BY created, rowid")],
    }


def _json_stream(head: dict[str, Any], data_dir: Any) -> Iterator[str]:
    """The Export document with its sessions last, streamed one by one from a connection of
    our own (the request's is closed by the time the body is sent)."""
    document = Export(**head).model_dump(mode="json")
    del document["sessions"]
    yield json.dumps(document, ensure_ascii=False)[:-1] + ', "sessions": ['
    db = open_db(db_path_for(data_dir))
    try:
        for n, record in enumerate(_sessions(db)):
            yield ("," if n else "") + "\n" + _export_session(db, record).model_dump_json()
    finally:
        db.close()
    yield "]}"


def _csv(archive: zipfile.ZipFile, name: str, header: list[str],
         rows: Iterable[Iterable[Any]]) -> None:
    with archive.open(name, "w") as raw, io.TextIOWrapper(raw, "utf-8", newline="") as text:
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(rows)


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def _zip(head: dict[str, Any], db: Database) -> Any:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # send_file closes it
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
        profile = head["profile"]
        _csv(archive, "profile.csv", list(Profile.model_fields),
             [[getattr(profile, f) for f in Profile.model_fields]] if profile else [])
        _csv(archive, "settings.csv", ["key", "value"],
             ([k, json.dumps(v, ensure_ascii=False)] for k, v in head["settings"].items()))
        _csv(archive, "sessions.csv",
             ["id", "pattern_id", "pattern_name", "pattern_phases", "started", "ended",
              "status", "duration_s", "adherence", "coverage", "rate_median_bpm", "metrics"],
             ([r.id, r.pattern_id, r.pattern.name if r.pattern else None,
               r.pattern.label if r.pattern else None, r.started, r.ended, r.status,
               r.duration_s, r.metrics.get("adherence"), r.metrics.get("coverage"),
               (r.metrics.get("rate") or {}).get("median"), _cell(r.metrics)]
              for r in _sessions(db)))
        timeline_fields = ["second", "target_phase", "measured_phase", "rate", "quality",
                           "displacement"]
        _csv(archive, "timeline.csv", ["session_id", *timeline_fields],
             ([r.id, *(getattr(p, f) for f in timeline_fields)]
              for r in _sessions(db) for p in session_timeline(db, r.id)))
        pattern_fields = ["id", "name", "inhale", "hold_in", "exhale", "hold_out",
                          "description", "benefits", "created", "updated"]
        _csv(archive, "patterns.csv", pattern_fields,
             ([_cell(getattr(p, f)) for f in pattern_fields] for p in head["patterns"]))
        _csv(archive, "achievements.csv",
             ["id", "kind", "title", "earned_at", "session_id", "mintable", "mint_status",
              "token_id"],
             ([a.id, a.kind, a.title, a.earned_at, a.session_id, a.mintable,
               a.mint.status if a.mint else None, a.mint.token_id if a.mint else None]
              for a in head["achievements"]))
        _csv(archive, "mint_requests.csv", list(MintRequestOut.model_fields),
             ([getattr(m, f) for f in MintRequestOut.model_fields]
              for m in head["mint_requests"]))
    spool.seek(0)
    return spool


@bp.get("/export")
@login_required
@documented("export", tag="account", query=ExportQuery,
            responses={200: {"application/json": Export, "application/zip": None}},
            description="All your data as a download: format=json (the Export schema) or "
                        "format=csv (a zip: profile, settings, sessions, timeline, patterns, "
                        "achievements, mint_requests). Never includes auth.* settings.")
def export(query: ExportQuery) -> Response:
    db = get_db()
    head = _head(db)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    if query.format == "csv":
        return send_file(_zip(head, db), mimetype="application/zip", as_attachment=True,
                         download_name=f"breathe-export-{stamp}.zip")
    response = Response(_json_stream(head, current_app.config["DATA_DIR"]),
                        mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="breathe-export-{stamp}.json"'
    return response
