"""Load settings from a TOML file plus ``BREATHE__SECTION__KEY`` environment overrides."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.config.models import Settings
from common.config.problems import InvalidConfig, Problem, problem_from_error

CONFIG_ENV = "BREATHE_CONFIG"
ENV_PREFIX = "BREATHE__"
DATA_DIR_ENV = "BREATHE_DATA_DIR"  # a shortcut for BREATHE__DEVICE__DATA_DIR (tests, scripts)
DEFAULTS_LABEL = "<built-in defaults>"


def config_path(path: str | Path | None = None, env: Mapping[str, str] | None = None
                ) -> Path | None:
    """The file to read: the argument, else $BREATHE_CONFIG, else None (built-in defaults)."""
    env = os.environ if env is None else env
    chosen = path if path not in (None, "") else env.get(CONFIG_ENV) or None
    return Path(chosen) if chosen is not None else None


def env_overrides(env: Mapping[str, str]) -> dict[tuple[str, ...], tuple[str, Any]]:
    """``BREATHE__MQTT__PORT=1884`` → ``{("mqtt", "port"): ("BREATHE__MQTT__PORT", "1884")}``.

    Scalars stay strings (pydantic converts them to the field's type, so a numeric-looking
    device name stays text); arrays, tables and quoted strings are parsed as TOML, else JSON.
    """
    found = {}
    for var, raw in sorted(env.items()):
        if not var.upper().startswith(ENV_PREFIX):
            continue
        path = tuple(part.lower() for part in var[len(ENV_PREFIX):].split("__"))
        value: Any = raw
        if raw.strip()[:1] in ('[', '{', '"', "'"):
            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                try:
                    value = json.loads(raw)
                except ValueError:
                    pass  # left as text: validation names the variable
        found[path] = (var, value)
    return found


def _read_toml(path: Path) -> tuple[dict, Problem | None]:
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text), None
    except OSError as exc:
        return {}, Problem(str(path), None, f"cannot read: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return {}, Problem(str(path), None, f"not UTF-8 text (byte {exc.start})")
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if where:
            return {}, Problem(str(path), f"line {where[1]}, column {where[2]}",
                               msg[: where.start()])
        return {}, Problem(str(path), None, msg)


def _load(path: str | Path | None, env: Mapping[str, str] | None
          ) -> tuple[Settings | None, list[Problem]]:
    env = os.environ if env is None else env
    chosen = config_path(path, env)
    source = str(chosen) if chosen else DEFAULTS_LABEL
    data: dict = {}
    if chosen is not None:
        data, problem = _read_toml(chosen)
        if problem:
            return None, [problem]
    problems, origins = [], {}
    for keys, (var, value) in env_overrides(env).items():
        if "" in keys:
            problems.append(Problem(f"env {var}", None, "empty key between '__' separators"))
            continue
        node = data
        for part in keys[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[keys[-1]] = value
        origins[keys] = var
    try:
        settings = Settings.model_validate(data, context={"check_files": True})
    except ValidationError as exc:
        return None, problems + [problem_from_error(e, source, origins) for e in exc.errors()]
    return (None, problems) if problems else (settings, [])


def check_config(path: str | Path | None = None, env: Mapping[str, str] | None = None
                 ) -> list[Problem]:
    """Every problem with the file plus env overrides; empty when the config is valid."""
    return _load(path, env)[1]


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None
                ) -> Settings:
    """Settings from ``path`` (else $BREATHE_CONFIG, else defaults) plus ``BREATHE__*`` env.

    Raises :class:`InvalidConfig` (a ConfigError) listing every problem.
    """
    settings, problems = _load(path, env)
    if problems or settings is None:
        raise InvalidConfig(problems)
    return settings


def data_dir(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """Where the device keeps its data: ``$BREATHE_DATA_DIR`` if set, else ``device.data_dir``;
    ``~`` expanded. The CLI and the web app both ask here, so they always share one database."""
    override = (os.environ if env is None else env).get(DATA_DIR_ENV)
    return Path(override).expanduser() if override else settings.data_path
