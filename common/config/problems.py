"""Configuration problems, rendered as ``FILE: section.key: message (got X; allowed Y)``."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from common.config.masking import mask_secrets
from common.config.schema import allowed_text, schema_at
from common.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, rendered as a person can act on it."""

    source: str
    key: str | None
    message: str
    got: str | None = None
    allowed: str | None = None

    def __str__(self) -> str:
        hints = "; ".join(x for x in (self.got and f"got {self.got}",
                                      self.allowed and f"allowed {self.allowed}") if x)
        where = f"{self.key}: " if self.key else ""
        return f"{self.source}: {where}{self.message}" + (f" ({hints})" if hints else "")


class InvalidConfig(ConfigError):
    """Raised by :func:`load_config`; ``problems`` holds every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def _show(value: Any, key: str) -> str:
    shown = mask_secrets(value, key)
    text = json.dumps(shown, default=str) if not isinstance(shown, bool) else str(shown).lower()
    return text if len(text) <= 80 else text[:77] + "..."


def problem_from_error(err: Any, source: str, origins: dict[tuple, str]) -> Problem:
    """One pydantic error as a Problem; blamed on the env variable when an override is involved."""
    ctx = err.get("ctx") or {}
    path: list[str | int] = list(err["loc"])
    if "field" in ctx:
        name, _, index = ctx["field"].partition("[")
        path += [name] + ([int(index.rstrip("]"))] if index else [])
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    strs = tuple(str(p) for p in path if isinstance(p, str))
    involved = [strs] + [strs[:-1] + (other,) for other in ctx.get("also", ())]
    for origin, var in origins.items():
        if any(origin[: len(k)] == k or k[: len(origin)] == origin for k in involved):
            source = f"env {var}"
            break
    parent, prop = schema_at(path)
    name = str(strs[-1]) if strs else ""
    raw = ctx.get("got", err["input"])
    got = None if err["type"] == "missing" or raw is None else _show(raw, name)
    if err["type"] == "extra_forbidden":
        valid = sorted((parent or {}).get("properties", {}))
        near = difflib.get_close_matches(name.lower(), valid, n=1, cutoff=0.6)
        what = "unknown section" if len(strs) == 1 else "unknown key"
        message = what + (f"; did you mean '{near[0]}'?" if near else "")
        return Problem(source, key, message, got, ", ".join(valid))
    message = {"string_pattern_mismatch": "not in the expected form"}.get(err["type"], err["msg"])
    allowed = ctx.get("allowed") or (allowed_text(prop) if prop else None)
    return Problem(source, key, message, got, allowed)
