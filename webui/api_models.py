"""What the JSON API answers: one pydantic model per response body.

Views build these models and ``reply`` dumps them, so every answer is checked against the
same schema the OpenAPI document publishes. Plain-data types from the device package
(``LiveState``, ``TimelinePoint``, ``Insight``, the history dataclasses, ``SessionMetrics``)
are used as they are rather than copied.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import jsonify
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.wrappers import Response

from device.session.history import StreakStats, Totals
from device.session.insights import Insight, NextStep
from device.sharing.mint import MintRequestRecord, MintStatus
from webui.payloads import Retention
from wire.metrics import SessionMetrics, TimelinePoint
from wire.patterns import Pattern


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def reply(body: BaseModel, status: int = 200) -> Response:
    response = jsonify(body.model_dump(mode="json"))
    response.status_code = status
    return response


class Health(Out):
    status: Literal["ok", "degraded"]
    reasons: list[str] = Field(description="Why degraded; nothing personal")


class Stats(BaseModel):
    """Device numbers for the Settings page (``device.status.DeviceStatus.stats``)."""

    model_config = ConfigDict(extra="allow")

    uptime_s: float | None = None
    version: str | None = None
    camera: dict[str, Any] | None = None
    inference_ms: float | None = None
    cpu_temp_c: float | None = None
    memory: dict[str, Any] | None = None
    outbox_depth: int | None = None
    mqtt: Any = None
    last_sync: str | None = None


class CsrfToken(Out):
    csrf_token: str = Field(description="Send it back in the X-CSRFToken header")


class SessionSummary(Out):
    id: str
    pattern_id: str | None
    pattern_name: str | None
    started: str
    ended: str | None
    duration_s: float
    status: Literal["running", "completed", "stopped", "interrupted"]
    metrics: dict[str, Any]


class SessionList(Out):
    sessions: list[SessionSummary]
    limit: int
    offset: int


class InsightsOut(Out):
    sentences: list[Insight]
    next_step: NextStep


class MintState(Out):
    request_id: str
    status: MintStatus
    token_id: str | None = None
    tx_hash: str | None = None
    error: str | None = None
    updated: str | None = None


class Achievement(Out):
    id: int
    kind: str
    title: str
    earned_at: str
    session_id: str | None
    mintable: bool
    mint: MintState | None = Field(description="The latest mint request, or null")
    can_mint: bool = Field(description="Whether POST .../mint would be accepted now")
    mint_unavailable: str | None = Field(description="Why not, for the disabled button")


class AchievementList(Out):
    achievements: list[Achievement]


class SessionDetail(SessionSummary):
    pattern: Pattern | None = Field(description="The pattern as it was when the session ran")
    metrics: SessionMetrics  # type: ignore[assignment]
    insights: InsightsOut
    timeline: list[TimelinePoint] = Field(description="One row per second, for the charts")
    achievements: list[Achievement] = Field(description="Achievements this session earned")


class PatternUse(Out):
    pattern_key: str = Field(description="The pattern id (or its old name once deleted)")
    name: str
    sessions: int
    minutes: float
    median_adherence: float | None


class Week(Out):
    week_start: date = Field(description="Monday of the week (local time)")
    sessions: int
    minutes: float
    median_adherence: float | None
    median_rate_bpm: float | None


class History(Out):
    totals: Totals
    streaks: StreakStats
    patterns: list[PatternUse]
    weeks: list[Week] = Field(description="Oldest first; weeks without practice included")


class PatternSummary(Out):
    id: str
    name: str
    inhale: float
    hold_in: float
    exhale: float
    hold_out: float
    cycle_s: float
    built_in: bool


class PatternList(Out):
    patterns: list[PatternSummary]


class PatternDetail(PatternSummary):
    description: str
    benefits: list[str]
    breaths_per_minute: float
    owner: str | None
    is_public: bool
    created: str
    updated: str | None


class Profile(Out):
    id: str
    display_name: str
    wallet_address: str | None
    created: str


class Privacy(Out):
    retention: Retention
    share_metrics: bool
    allow_analytics: bool


class SettingsOut(Out):
    privacy: Privacy
    default_pattern: str
    default_minutes: float
    sync_enabled: bool = Field(description="Read-only: sync with the relay is on (device "
                                           "config mqtt.enabled)")


class SettingsSaved(SettingsOut):
    deleted_sessions: int = Field(description="Sessions deleted now because the retention "
                                              "got shorter")


class MintAccepted(Out):
    request_id: str
    status: MintStatus


class PasswordChanged(Out):
    message: str


class AccountDeleted(Out):
    deleted: dict[str, int] = Field(description="Rows deleted, per kind")
    message: str


class ExportSession(SessionSummary):
    pattern: Pattern | None
    timeline: list[TimelinePoint]


class MintRequestOut(MintRequestRecord):
    """A mint request as stored, with the salt and summary that open its commitment."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class Export(Out):
    """Everything personal this device keeps (never the password hash or setup code)."""

    exported_at: str
    device_id: str
    profile: Profile | None
    settings: dict[str, Any] = Field(description="Stored settings by key, except auth.*")
    privacy: Privacy
    sessions: list[ExportSession]
    patterns: list[PatternDetail] = Field(description="Custom patterns only")
    achievements: list[Achievement]
    mint_requests: list[MintRequestOut]
