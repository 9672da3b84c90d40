"""Breathing patterns: the built-ins (read only) and the owner's custom patterns (CRUD).

Validation is the pattern model's own (``wire.patterns.Pattern``), so a custom pattern
obeys exactly the rules the built-ins do, and each message says what is allowed. Built-ins
cannot be changed or deleted (409). Editing or deleting a custom pattern never rewrites
history: every session keeps a snapshot of the pattern it ran.
"""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from common.errors import BadInput
from device.sharing.catalog import delete_pattern, update_pattern
from device.store.errors import NotFound
from device.store.patterns_repo import PatternRecord, add_pattern, find_pattern, list_patterns
from webui import api_error, bad_input_error, get_db
from webui.api_models import PatternDetail, PatternList, PatternSummary, reply
from webui.auth import current_owner, login_required
from webui.openapi import documented
from webui.payloads import PatternBody

bp = Blueprint("api_patterns", __name__, url_prefix="/api")


def _owner_id() -> str | None:
    owner = current_owner()
    return owner.profile.id if owner else None


def _visible(pattern_id: str) -> PatternRecord:
    """The pattern if this owner may see it (built-in, the device's, theirs or public)."""
    record = find_pattern(get_db(), pattern_id)
    if record is None or not (record.built_in or record.is_public
                              or record.owner in (None, _owner_id())):
        raise NotFound(f"pattern_id: no pattern with id {pattern_id!r}; GET /api/patterns "
                       "lists them")
    return record


def _refuse_builtin(record: PatternRecord, action: str) -> Response | None:
    if record.built_in:
        return api_error(409, "conflict", f"{record.id!r} is a built-in pattern and cannot be "
                                          f"{action}; save a copy under a new name instead",
                         "pattern_id")
    return None


@bp.get("/patterns")
@login_required
@documented("list patterns", tag="patterns", responses={200: PatternList},
            description="Built-ins first, then custom patterns by name.")
def patterns() -> Response:
    records = list_patterns(get_db(), owner=_owner_id())
    return reply(PatternList(patterns=[PatternSummary(**r.summary()) for r in records]))


@bp.get("/patterns/<pattern_id>")
@login_required
@documented("pattern detail", tag="patterns", responses={200: PatternDetail})
def pattern(pattern_id: str) -> Response:
    return reply(PatternDetail(**_visible(pattern_id).detail()))


@bp.post("/patterns")
@login_required
@documented("create pattern", tag="patterns", body=PatternBody,
            responses={201: PatternDetail},
            description="Phases in seconds: inhale and exhale 1–30, holds 0–60, steps of "
                        "0.25 s, a cycle at most 120 s; the name unique among yours and the "
                        "built-ins'.")
def create(body: PatternBody) -> Response:
    try:
        stored = add_pattern(get_db(), body, owner=_owner_id())
    except BadInput as exc:  # the name is taken: "name: already used by ..."
        return bad_input_error(exc, 400, "invalid")
    return reply(PatternDetail(**stored.detail()), 201)


@bp.put("/patterns/<pattern_id>")
@login_required
@documented("replace pattern", tag="patterns", body=PatternBody,
            responses={200: PatternDetail}, errors=(409,),
            description="Replace a custom pattern (its id stays); built-ins answer 409.")
def replace(pattern_id: str, body: PatternBody) -> Response:
    record = _visible(pattern_id)
    refused = _refuse_builtin(record, "changed")
    if refused is not None:
        return refused
    try:
        stored = update_pattern(get_db(), pattern_id, body)
    except BadInput as exc:
        return bad_input_error(exc, 400, "invalid")
    return reply(PatternDetail(**stored.detail()))


@bp.delete("/patterns/<pattern_id>")
@login_required
@documented("delete pattern", tag="patterns", responses={204: None}, errors=(409,),
            description="Delete a custom pattern; sessions keep their copy of it. Built-ins "
                        "answer 409.")
def delete(pattern_id: str) -> Response | tuple[str, int]:
    record = _visible(pattern_id)
    refused = _refuse_builtin(record, "deleted")
    if refused is not None:
        return refused
    delete_pattern(get_db(), pattern_id)
    return "", 204
