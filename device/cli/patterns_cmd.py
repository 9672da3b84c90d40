"""``breathe patterns``: list, show, add and delete breathing patterns.

The database is ``<data_dir>/breathe.db``; ``data_dir`` comes from ``$BREATHE_DATA_DIR`` when
set (handy for tests and trying things out), else from the config's ``device.data_dir``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click

from common.errors import BadInput
from device.cli.context import data_dir
from device.sharing.catalog import delete_pattern
from device.store.db import db_path_for, open_db
from device.store.patterns_repo import PatternRecord, add_pattern, get_pattern, list_patterns
from wire.patterns import Pattern, parse_pattern


def _db_path(ctx: click.Context) -> Path:
    return db_path_for(data_dir(ctx))


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _kind(record: PatternRecord) -> str:
    return "built-in" if record.built_in else "custom"


@click.group(name="patterns")
def patterns() -> None:
    """Breathing patterns: the built-ins and your own."""


@patterns.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List built-in and custom patterns with their phase seconds."""
    with open_db(_db_path(ctx)) as db:
        records = list_patterns(db)
    if as_json:
        click.echo(json.dumps([r.summary() for r in records], indent=2, ensure_ascii=False))
        return
    click.echo(f"{'ID':<22} {'NAME':<26} {'IN-HOLD-OUT-HOLD':<17} {'CYCLE':>7} {'BPM':>5}  KIND")
    for r in records:
        p = r.pattern
        click.echo(
            f"{r.id:<22} {p.name:<26} {p.label:<17} {_seconds(p.cycle_s):>7} "
            f"{p.breaths_per_minute:>5.2f}  {_kind(r)}"
        )


@patterns.command(name="show")
@click.argument("pattern_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def show_cmd(ctx: click.Context, pattern_id: str, as_json: bool) -> None:
    """Show one pattern: phases, description and benefits."""
    with open_db(_db_path(ctx)) as db:
        record = get_pattern(db, pattern_id)
    if as_json:
        click.echo(json.dumps(record.detail(), indent=2, ensure_ascii=False))
        return
    p = record.pattern
    click.echo(f"{p.name} ({record.id}, {_kind(record)})")
    click.echo(
        f"  inhale {_seconds(p.inhale)}, hold {_seconds(p.hold_in)}, exhale {_seconds(p.exhale)}, "
        f"hold {_seconds(p.hold_out)}: one breath every {_seconds(p.cycle_s)} "
        f"({p.breaths_per_minute:.2f} breaths/min)"
    )
    if p.description:
        click.echo("\n" + textwrap.fill(p.description, width=88))
    if p.benefits:
        click.echo("\nBenefits:")
        for benefit in p.benefits:
            click.echo(f"  - {benefit}")


def _read_pattern_file(path: str) -> Pattern:
    file = Path(path).expanduser()
    fields = ", ".join(Pattern.model_fields)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found (allowed: a JSON file with {fields})") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return parse_pattern(data, source=path)


@patterns.command(name="add")
@click.argument("file", metavar="FILE.json", type=click.Path(dir_okay=False))
@click.option("--public", is_flag=True, help="Mark it public: shareable beyond this device.")
@click.pass_context
def add_cmd(ctx: click.Context, file: str, public: bool) -> None:
    """Add a custom pattern from a JSON file.

    \b
    Example file:
      {"name": "Calm 4-6", "inhale": 4, "exhale": 6,
       "description": "Longer out than in.", "benefits": ["Easy to keep up"]}
    inhale and exhale 1-30 s, holds (hold_in, hold_out) 0-60 s, steps of 0.25 s,
    one cycle at most 120 s, name 1-50 printable characters.
    """
    pattern = _read_pattern_file(file)
    with open_db(_db_path(ctx)) as db:
        record = add_pattern(db, pattern, is_public=public)
    click.echo(f"added pattern {record.id!r}: {pattern.name} ({pattern.label})")


@patterns.command(name="delete")
@click.argument("pattern_id", metavar="ID")
@click.pass_context
def delete_cmd(ctx: click.Context, pattern_id: str) -> None:
    """Delete a custom pattern (built-ins cannot be deleted)."""
    with open_db(_db_path(ctx)) as db:
        delete_pattern(db, pattern_id)
    click.echo(f"deleted pattern {pattern_id!r}")


COMMANDS = [patterns]
