"""Collects the command groups; each ``device.cli.<name>_cmd`` module exposes ``COMMANDS``."""

from __future__ import annotations

import importlib

import click

# Modules that contribute commands, in help order.
MODULES = ["run_cmd", "analyze_cmd", "session_cmd", "patterns_cmd", "config_cmd", "relay_cmd",
           "bench_cmd", "claim_cmd", "webcert_cmd"]


def _collect() -> list[click.Command]:
    return [command for name in MODULES
            for command in importlib.import_module(f"device.cli.{name}").COMMANDS]


ALL = _collect()
