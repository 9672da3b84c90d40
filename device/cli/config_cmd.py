"""``breathe config check|show``: validate a config and print the effective settings."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Mapping
from typing import Any

import click
from pydantic import BaseModel

from common.config import (
    DEFAULTS_LABEL,
    Settings,
    check_config,
    config_path,
    env_overrides,
    field_docs,
    load_config,
    mask_secrets,
    section_model,
)

SHIPPED_HEADER = """\
# Breathe appliance configuration: every setting with its default value.
#
# Generated from the settings models (common/config/), which are the single source of truth:
#   breathe config show --defaults --comments > firmware_config/device.toml
# Use a copy with `breathe --config PATH ...` or BREATHE_CONFIG=PATH; keep only what you change.
# Any key can also be set from the environment: BREATHE__MQTT__HOST=broker.local.
# An empty string ("") means "not set" for optional keys. Check a file: breathe config check PATH
"""


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # JSON escapes are valid TOML escapes


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=99, initial_indent="# ", subsequent_indent="# ")


def render_toml(data: Mapping[str, Any], comments: bool = False) -> str:
    """Dumped settings as TOML (section tables in model order), optionally with field docs."""
    docs = field_docs() if comments else {}
    lines: list[str] = []

    def table(model: type[BaseModel], values: Mapping[str, Any], prefix: str, about: str) -> None:
        if prefix:
            lines.append("")
            if comments and about:
                lines.extend(_comment(about))
            lines.append(f"[{prefix}]")
        subtables = []
        for name, field in model.model_fields.items():
            key = f"{prefix}.{name}" if prefix else name
            sub = section_model(field.annotation)
            if sub is not None:
                subtables.append((sub, values[name], key, field.description or ""))
                continue
            if comments:
                description, allowed = docs[key]
                lines.extend(_comment(f"{description}. Allowed: {allowed}."))
            lines.append(f"{name} = {_toml_value(values[name])}")
        for sub, sub_values, key, sub_about in subtables:
            table(sub, sub_values, key, sub_about)

    table(Settings, data, "", "")
    return "\n".join(lines).lstrip("\n") + "\n"


def _overrides() -> list[str]:
    return [var for var, _ in env_overrides(os.environ).values()]


@click.group(name="config")
def config_group() -> None:
    """Check and show the appliance configuration.

    Settings come from a TOML file (--config PATH or $BREATHE_CONFIG; built-in defaults
    otherwise) plus environment overrides such as BREATHE__MQTT__HOST=broker.local.
    """


@config_group.command(name="check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.pass_context
def check(ctx: click.Context, path: str | None) -> None:
    """Validate PATH (default: --config / $BREATHE_CONFIG) with its BREATHE__* overrides.

    Prints "ok: FILE" and exits 0, or prints every problem as
    "FILE: section.key: message (got X; allowed Y)" and exits 2.
    """
    path = path or (ctx.obj or {}).get("config_path")
    problems = check_config(path, os.environ)
    if problems:
        for problem in problems:
            click.echo(str(problem))
        ctx.exit(2)
    chosen = config_path(path, os.environ)
    click.echo(f"ok: {chosen if chosen else DEFAULTS_LABEL}")
    overrides = _overrides()
    if overrides:
        click.echo(f"with environment overrides: {', '.join(overrides)}")


@config_group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.option("--comments", is_flag=True, help="Explain every key (TOML only).")
@click.option("--defaults", is_flag=True,
              help="Show the built-in defaults, ignoring files and the environment.")
@click.pass_context
def show(ctx: click.Context, as_json: bool, comments: bool, defaults: bool) -> None:
    """Print the effective configuration (file + environment) with secrets masked.

    Exits 2 with every problem listed when the configuration is invalid.
    """
    if defaults:
        settings, header = Settings(), SHIPPED_HEADER
    else:
        path = (ctx.obj or {}).get("config_path")
        settings = load_config(path, os.environ)
        chosen = config_path(path, os.environ)
        header = f"# effective configuration: {chosen if chosen else DEFAULTS_LABEL}\n"
        overrides = _overrides()
        if overrides:
            header += f"# environment overrides: {', '.join(overrides)}\n"
    data = mask_secrets(settings.model_dump(mode="json"))
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(header + "\n" + render_toml(data, comments=comments), nl=False)


COMMANDS = [config_group]
