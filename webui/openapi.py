"""The OpenAPI 3.1 document of /api, generated from the views and their pydantic models.

Each API view is wrapped by :func:`documented`, which both *does* the work (validates the query
string and JSON body into the declared models, passed to the view as ``query=`` / ``body=``)
and *records* it (summary, models, answers). :func:`build_document` walks the app's URL map and
turns those records into the document, with every schema from ``model_json_schema``: one source
of truth. A view under /api without a record makes the build fail, so nothing goes undocumented.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel, TypeAdapter

from webui.payloads import ApiError, json_body, query_args, validate

View = TypeVar("View", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>\w+)>")


@dataclasses.dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    responses: Mapping[int, Any]  # status -> model, None (no body) or {media type: model}
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    description: str = ""
    errors: tuple[int, ...] = ()  # extra 4xx/5xx answers with an ApiError body


def documented(summary: str, *, tag: str, responses: Mapping[int, Any],
               body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
               description: str = "", errors: tuple[int, ...] = ()) -> Callable[[View], View]:
    """Validate the declared query/body and record the operation for the document."""
    operation = Operation(summary, tag, responses, body, query, description, errors)

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = query_args(query)
            if body is not None:
                kwargs["body"] = validate(body, json_body())
            return view(*args, **kwargs)

        wrapped.openapi = operation  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return wrap


class _Schemas:
    """Component schemas, each model once, referenced as ``#/components/schemas/<name>``."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, tp: Any, mode: str = "serialization") -> dict[str, Any]:
        schema = TypeAdapter(tp).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        if not _named(tp):
            return schema
        self.components.setdefault(tp.__name__, schema)
        return {"$ref": REF.format(model=tp.__name__)}


def _named(tp: Any) -> bool:
    """Models and dataclasses get a component of their own; plain types are inlined."""
    return isinstance(tp, type) and (issubclass(tp, BaseModel) or dataclasses.is_dataclass(tp))


def _path_and_params(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for match in _PARAM.finditer(rule):
        kind = "integer" if match["converter"] == "int" else "string"
        params.append({"name": match["name"], "in": "path", "required": True,
                       "schema": {"type": kind}})
    return _PARAM.sub(r"{\g<name>}", rule), params


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop,
             **({"description": prop["description"]} if "description" in prop else {})}
            for name, prop in schema["properties"].items()]


def _error(schemas: _Schemas, text: str) -> dict[str, Any]:
    return {"description": text,
            "content": {"application/json": {"schema": schemas.ref(ApiError)}}}


ERROR_TEXT = {
    400: "Invalid input (or a missing CSRF token on a state-changing request)",
    401: "Not logged in, or the device has no owner yet",
    403: "Refused",
    404: "No such resource",
    409: "Conflicts with the current state",
    415: "The body is not JSON",
    429: "Too many attempts; see Retry-After",
    503: "Not available on this device right now",
}


def _response(schemas: _Schemas, kind: Any) -> dict[str, Any]:
    """None: no body; a model: JSON; a dict: media type -> model, or None for text/bytes."""
    if kind is None:
        return {"description": "No content"}
    if not isinstance(kind, dict):
        kind = {"application/json": kind}
    content = {media: {"schema": schemas.ref(model) if model is not None
                       else {"type": "string"}}
               for media, model in kind.items()}
    first = next(iter(kind.values()))
    text = (first.__doc__ or "").strip() if _named(first) else ""
    return {"description": text.split("\n")[0] or "OK", "content": content}


def _operation(schemas: _Schemas, method: str, op: Operation, login: bool,
               path_params: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                           "operationId": f"{method.lower()}_{op.summary}".replace(" ", "_")}
    if op.description:
        out["description"] = op.description
    params = path_params + (_query_params(op.query) if op.query else [])
    if method in STATE_CHANGING:
        params.append({"name": "X-CSRFToken", "in": "header", "required": True,
                       "schema": {"type": "string"},
                       "description": "The token from GET /api/csrf"})
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": schemas.ref(op.body, mode="validation")}}}
    responses: dict[str, Any] = {}
    for status, kind in op.responses.items():
        responses[str(status)] = _response(schemas, kind)
    codes = set(op.errors)
    if op.body is not None or op.query is not None or method in STATE_CHANGING:
        codes.add(400)
    if op.body is not None:
        codes.add(415)
    if login:
        codes.add(401)
        out["security"] = [{"session": []}]
    if path_params:
        codes.add(404)
    for code in sorted(codes):
        responses.setdefault(str(code), _error(schemas, ERROR_TEXT.get(code, "Error")))
    out["responses"] = responses
    return out


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api route of ``app``."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/"):
            continue
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, "openapi", None)
        if op is None:
            raise RuntimeError(f"{rule.rule} ({rule.endpoint}) has no OpenAPI record: wrap "
                               "the view in webui.openapi.documented")
        path, params = _path_and_params(rule.rule)
        login = bool(getattr(view, "login_required", False))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                schemas, method, op, login, params)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Breathe device API",
            "version": "1",
            "description": "The JSON API of the Breathe appliance's web app. Log in with the "
                           "owner's name and password (POST /login, a form) to get the "
                           "session cookie; send the token from GET /api/csrf in the "
                           "X-CSRFToken header on every POST, PUT and DELETE. Errors are "
                           '{"error", "field", "message"}.',
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                            "name": app.config["SESSION_COOKIE_NAME"]}},
        },
    }
