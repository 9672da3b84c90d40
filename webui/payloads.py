"""What the JSON API accepts: one pydantic model per request body or query, and the error shape.

Every API error is ``{"error", "field", "message"}`` (:class:`ApiError`); a validation error
also lists every problem in ``errors`` so a form can show each message next to its field.
Bodies are strict (JSON ``"5"`` is not the number 5, ``1`` is not ``true``); queries come as
text, so they are converted. The OpenAPI document (``webui.openapi``) is generated from these
same models, so the documentation cannot drift from what is enforced.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from device.session.engine import MAX_MINUTES
from webui.eip55 import is_checksum_address, to_checksum_address
from webui.messages import field_message, pattern_message
from webui.security import PASSWORD_MAX
from wire.patterns import PHASE_NAMES, RESOLUTION_S, Pattern

MIN_MINUTES = 0.5  # as ``breathe session start``: a shorter session says nothing about the breath
PATTERN_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Retention = Literal["30d", "1y", "forever"]

M = TypeVar("M", bound=BaseModel)


class FieldError(BaseModel):
    field: str | None = Field(description="Dotted path of the field, e.g. benefits.1")
    message: str


class ApiError(BaseModel):
    """The body of every 4xx/5xx answer under /api."""

    error: str = Field(description="Machine-readable kind: invalid, csrf, unauthorized, "
                                   "not_found, conflict, mint_unavailable, unavailable, ...")
    field: str | None = Field(description="The request field at fault, or null")
    message: str = Field(description="What is wrong and what to do, for a person")
    errors: list[FieldError] | None = Field(
        None, description="Validation errors only: every problem, one per field")


class InvalidInput(Exception):
    """A request the API refuses (400 unless ``status`` says otherwise)."""

    def __init__(self, problems: list[FieldError], *, status: int = 400,
                 error: str = "invalid") -> None:
        super().__init__(problems[0].message)
        self.problems = problems
        self.status = status
        self.error = error


def _dotted(loc: tuple[Any, ...]) -> str | None:
    return ".".join(str(part) for part in loc) or None


def _problems(exc: ValidationError) -> list[FieldError]:
    problems = []
    for error in exc.errors(include_url=False):
        field = _dotted(error["loc"])
        problems.append(FieldError(field=field, message=field_message(error, field)))
    return problems


def _pattern_problems(exc: ValidationError) -> list[FieldError]:
    """A pattern's problems in plain words (``webui.messages``), with dotted fields."""
    problems = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        field = ctx.get("field") or _dotted(error["loc"]) or "pattern"
        problems.append(FieldError(field=field, message=pattern_message(error, field)))
    return problems


def validate(model: type[M], data: Any) -> M:
    """``data`` as ``model``, or :class:`InvalidInput` naming every field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = _pattern_problems(exc) if issubclass(model, Pattern) else _problems(exc)
        raise InvalidInput(problems) from None


def json_body() -> dict[str, Any]:
    """The request's JSON object; an empty body counts as ``{}``."""
    if not request.is_json:
        # (a form body is already parsed by the CSRF check: look at the length, not the data)
        if request.content_length or request.form or request.files:
            raise InvalidInput([FieldError(field=None, message="send JSON with Content-Type: "
                                                                "application/json")],
                               status=415, error="unsupported_media_type")
        return {}
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput([FieldError(field=None, message=f"the body is not valid JSON "
                                                            f"({exc})")]) from None
    if not isinstance(data, dict):
        raise InvalidInput([FieldError(field=None, message=f"the body must be a JSON object "
                                                            f"(got {type(data).__name__})")])
    return data


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def query_args(model: type[M]) -> M:
    """The query string as ``model``; a repeated key counts as its last value."""
    return validate(model, request.args.to_dict())


# -- inputs ---------------------------------------------------------------------------------

class Body(BaseModel):
    """Base of request bodies: unknown fields refused, JSON types taken literally."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionQuery(Query):
    limit: int = Field(50, ge=1, le=500, description="How many sessions, newest first")
    offset: int = Field(0, ge=0, le=1_000_000, description="How many to skip")


class HistoryQuery(Query):
    weeks: int = Field(12, ge=1, le=104, description="How many weeks of aggregates, up to "
                                                     "this one")


class ExportQuery(Query):
    format: Literal["json", "csv"] = Field("json", description="json: one document; csv: a "
                                                               "zip of CSV files")


def _minutes() -> Any:
    return Field(None, ge=MIN_MINUTES, le=MAX_MINUTES, allow_inf_nan=False,
                 description=f"Session length, {MIN_MINUTES:g}–{MAX_MINUTES:g} minutes")


class SessionStart(Body):
    """Start a session; either field left out takes the default from Settings."""

    pattern_id: str | None = Field(None, pattern=PATTERN_ID, description="A pattern id from "
                                                                         "GET /api/patterns")
    minutes: float | None = _minutes()


def _document_steps(schema: dict[str, Any]) -> None:
    """Say in the schema what the pattern's validator enforces: phases in 0.25 s steps."""
    for name in PHASE_NAMES:
        schema["properties"][name]["multipleOf"] = RESOLUTION_S


class PatternBody(Pattern):
    """A custom pattern (POST creates, PUT replaces): the same rules as the built-ins; one
    cycle (the four phases together) at most 120 s."""

    model_config = ConfigDict(json_schema_extra=_document_steps)


class ProfileUpdate(Body):
    """Change the profile; a field left out stays as it is."""

    display_name: str | None = Field(None, min_length=1, max_length=50,
                                     description="Your name; it is also the login name")
    wallet_address: str | None = Field(
        None, description="Ethereum address (0x + 40 hex digits) for achievement tokens; "
                          "EIP-55 mixed case is checked, all-lower-case is accepted and "
                          "stored checksummed; null removes it")

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or not value.isprintable():
            raise PydanticCustomError("name", "must be 1–50 printable characters")
        return value

    @field_validator("wallet_address")
    @classmethod
    def _wallet(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else checksummed(value.strip())


def checksummed(address: str) -> str:
    """The EIP-55 form of ``address``; a mixed-case address must already carry the checksum."""
    digits = address[2:] if address[:2] in ("0x", "0X") else None
    if digits is None or len(digits) != 40 or any(c not in "0123456789abcdefABCDEF"
                                                  for c in digits):
        raise PydanticCustomError("wallet", "must be 0x followed by 40 hex digits")
    if int(digits, 16) == 0:
        raise PydanticCustomError(
            "wallet_zero", "the all-zero address belongs to nobody: tokens sent there are "
            "lost for good; enter your own wallet's address")
    if digits in (digits.lower(), digits.upper()):
        return to_checksum_address("0x" + digits)
    if not is_checksum_address("0x" + digits):
        raise PydanticCustomError(
            "wallet_checksum", "the upper/lower case letters do not match the EIP-55 "
            "checksum, so the address has a typo; copy it from your wallet again")
    return "0x" + digits


class PrivacyUpdate(Body):
    retention: Retention | None = Field(None, description="How long sessions are kept")
    share_metrics: bool | None = Field(None, description="Send session metrics (never video) "
                                                         "to the relay")
    allow_analytics: bool | None = Field(None, description="Allow anonymous usage counts")


class SettingsUpdate(Body):
    """Change settings; a field left out stays as it is."""

    privacy: PrivacyUpdate | None = None
    default_pattern: str | None = Field(None, pattern=PATTERN_ID,
                                        description="Pattern a session starts with by default")
    default_minutes: float | None = _minutes()


class AccountDelete(Body):
    password: str = Field(min_length=1, max_length=PASSWORD_MAX,
                          description="The owner's password, asked again")
    check_only: bool = Field(False, description="Only check the password (so the app asks "
                                                "'are you sure?' after it): nothing is deleted")


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX,
                                  description="The owner's password now")
    new_password: str = Field(min_length=1, max_length=PASSWORD_MAX,
                              description="The new password: at least 10 characters")
