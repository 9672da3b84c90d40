"""Collects the command groups; each ``device.cli.<name>_cmd`` module exposes ``COMMANDS``."""

from __future__ import annotations

import importlib

import click

from device.cli.placeholders import PLACEHOLDERS

# Modules that contribute commands, in help order. A later module's command replaces a
# placeholder of the same name.
MODULES = ["run_cmd", "analyze_cmd", "session_cmd", "patterns_cmd", "config_cmd", "relay_cmd",
           "bench_cmd", "claim_cmd"]


def _collect() -> list[click.Command]:
    found: dict[str, click.Command] = {c.name: c for c in PLACEHOLDERS}
    for name in MODULES:
        full = f"device.cli.{name}"
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name == full:
                continue  # that command group is not written yet
            raise
        for command in module.COMMANDS:
            found[command.name] = command
    return list(found.values())


ALL = _collect()
