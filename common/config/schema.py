"""Docs derived from the models' JSON schema: what each key takes, in words, and its description.

Shared by error messages (``problems``) and the generated ``device.toml`` (``field_docs``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from common.config.models import Settings

_SCHEMA = Settings.model_json_schema()


def schema_at(path: list[str | int]) -> tuple[dict | None, dict | None]:
    """(schema of the model holding the last key, schema of that key) for a key path."""
    parent, node = None, _SCHEMA
    for part in path:
        if isinstance(part, int):
            continue
        node = _SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node
        parent, node = node, node.get("properties", {}).get(part)
        if node is None:
            return parent, None
    return parent, node


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def allowed_text(prop: dict) -> str:
    """What a schema property accepts, in words."""
    if "allowed" in prop:
        return prop["allowed"]
    if "anyOf" in prop:
        inner = [p for p in prop["anyOf"] if p.get("type") != "null"]
        return f"{allowed_text(inner[0])}, or empty" if inner else "empty"
    if "enum" in prop:
        return "one of " + ", ".join(map(str, prop["enum"]))
    kind = prop.get("type")
    if kind == "boolean":
        return "true or false"
    if kind in ("integer", "number"):
        lo, hi = prop.get("minimum", prop.get("exclusiveMinimum")), prop.get("maximum")
        even = prop.get("multipleOf") == 2
        noun = "a number" if kind == "number" else "an even number" if even else "a whole number"
        return f"{noun} {_num(lo)}..{_num(hi)}"
    if kind == "string":
        if prop.get("format") == "path":
            return "a file path"
        if "pattern" in prop:
            return f"text matching {prop['pattern']}"
        return f"text of {prop.get('minLength', 0)}..{prop.get('maxLength', 'any')} characters"
    return "a table of settings" if "$ref" in prop else str(kind)


def field_docs() -> dict[str, tuple[str, str]]:
    """Every leaf key (``"mqtt.port"``), in model order, with its description and what it takes."""
    docs: dict[str, tuple[str, str]] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key, sub = prefix + name, section_model(field.annotation)
            if sub is not None:
                walk(sub, key + ".")
            else:
                prop = schema_at(key.split("."))[1] or {}
                docs[key] = (field.description or "", allowed_text(prop))

    walk(Settings, "")
    return docs


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The model class when a field holds a whole (sub)section, else None."""
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None
