"""Past sessions: the list, one session's summary (metrics, insights, chart rows, achievements),
deleting one, and the history page's streaks, per-pattern stats and weekly aggregates.

All of it is computed by ``device.session`` (history, insights, metrics); this module only
reads the store and shapes the answers. Opening a finished session's summary also stores the
achievements the history has earned (idempotent: each kind once), so the summary can offer
Mint even when nothing else awarded them yet.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

from flask import Blueprint, current_app
from werkzeug.wrappers import Response

from device.session.appliance import history_of, session_outcome
from device.session.history import HistoryEntry, counted, pattern_stats, streak_stats, totals
from device.store import NotFound
from device.store.db import db_path_for
from device.store.patterns_repo import find_pattern
from device.store.sessions_repo import (
    FINAL_STATUSES,
    SessionRecord,
    delete_session,
    get_session,
    list_sessions,
    session_timeline,
)
from webui.api_achievements import achievements_of_session
from webui.api_models import (
    History,
    InsightsOut,
    PatternUse,
    SessionDetail,
    SessionList,
    SessionSummary,
    Week,
    reply,
)
from webui.auth import login_required
from webui.context import api_error, get_db
from webui.openapi import documented
from webui.payloads import HistoryQuery, SessionQuery

bp = Blueprint("api_sessions", __name__, url_prefix="/api")


def session_summary(record: SessionRecord) -> SessionSummary:
    return SessionSummary(
        id=record.id,
        pattern_id=record.pattern_id,
        pattern_name=record.pattern.name if record.pattern else None,
        started=record.started,
        ended=record.ended,
        duration_s=record.duration_s,
        status=record.status,
        metrics=record.metrics,
    )


@bp.get("/sessions")
@login_required
@documented("list sessions", tag="sessions", query=SessionQuery, responses={200: SessionList},
            description="Every session on this device, newest first.")
def sessions(query: SessionQuery) -> Response:
    records = list_sessions(get_db(), limit=query.limit, offset=query.offset)
    return reply(SessionList(sessions=[session_summary(r) for r in records],
                             limit=query.limit, offset=query.offset))


@bp.get("/sessions/<session_id>")
@login_required
@documented("session detail", tag="sessions", responses={200: SessionDetail},
            description="One session's record, metrics, insights, per-second timeline and "
                        "the achievements it earned.")
def session_detail(session_id: str) -> Response:
    db = get_db()
    record = get_session(db, session_id)  # NotFound: 404
    finished = record.status in FINAL_STATUSES
    outcome = session_outcome(db_path_for(current_app.config["DATA_DIR"]), session_id,
                              award=finished)
    summary = session_summary(outcome.record).model_dump()
    return reply(SessionDetail(
        # the timeline is sent once, at the top level, not again inside the metrics
        **{**summary, "metrics": outcome.metrics.model_copy(update={"timeline": ()})},
        pattern=outcome.record.pattern,
        insights=InsightsOut(sentences=list(outcome.insights.sentences),
                             next_step=outcome.insights.next_step),
        timeline=session_timeline(db, session_id),
        achievements=achievements_of_session(db, session_id),
    ))


@bp.delete("/sessions/<session_id>")
@login_required
@documented("delete session", tag="sessions", responses={204: None}, errors=(409,),
            description="Delete one session and its timeline; a running one must be "
                        "stopped first (409).")
def forget_session(session_id: str) -> Response | tuple[str, int]:
    db = get_db()
    try:
        running = get_session(db, session_id).status == "running"
    except NotFound as exc:
        return api_error(404, "not_found", str(exc), "session_id")
    if running:
        return api_error(409, "conflict", "session is still running; stop it first", "session_id")
    delete_session(db, session_id)
    return "", 204


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def weekly(entries: list[HistoryEntry], today: date, weeks: int) -> list[Week]:
    """Counted sessions per local week (Monday first), the last ``weeks`` weeks up to
    ``today``'s, empty weeks included so a chart's axis has no gaps."""
    this_monday = today - timedelta(days=today.weekday())
    starts = [this_monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    groups: dict[date, list[HistoryEntry]] = {start: [] for start in starts}
    for entry in counted(entries):
        monday = entry.day - timedelta(days=entry.day.weekday())
        if monday in groups:
            groups[monday].append(entry)
    return [
        Week(
            week_start=start,
            sessions=len(group),
            minutes=round(sum(e.duration_s for e in group) / 60.0, 2),
            median_adherence=_median([e.metrics.adherence for e in group
                                      if e.metrics.adherence is not None]),
            median_rate_bpm=_median([e.metrics.rate.median for e in group
                                     if e.metrics.rate.median is not None]),
        )
        for start, group in groups.items()
    ]


@bp.get("/history")
@login_required
@documented("history", tag="sessions", query=HistoryQuery, responses={200: History},
            description="Totals, streaks (one missed day is forgiven), per-pattern stats and "
                        "weekly aggregates over finished sessions of at least a minute.")
def history(query: HistoryQuery) -> Response:
    db = get_db()
    entries = history_of(db, None)
    today = datetime.now().astimezone().date()
    uses = []
    for stats in pattern_stats(entries):
        stored = find_pattern(db, stats.pattern_key)
        uses.append(PatternUse(pattern_key=stats.pattern_key,
                               name=stored.pattern.name if stored else stats.pattern_key,
                               sessions=stats.sessions, minutes=stats.minutes,
                               median_adherence=stats.median_adherence))
    return reply(History(totals=totals(entries), streaks=streak_stats(entries, today),
                         patterns=uses, weeks=weekly(entries, today, query.weeks)))
