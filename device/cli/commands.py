"""Collects the command groups; each ``device.cli.<name>_cmd`` module exposes ``COMMANDS``.

``breathe relay`` is the relay's own command line (relay/cli, also installed alone as
``breathe-relay``), hosted here for people who run both on one machine."""

from __future__ import annotations

import importlib

import click

from relay.cli import relay

# Modules that contribute commands (help lists them by name).
MODULES = ["run_cmd", "analyze_cmd", "session_cmd", "patterns_cmd", "config_cmd", "bench_cmd",
           "claim_cmd", "webcert_cmd"]


def _collect() -> list[click.Command]:
    return [command for name in MODULES
            for command in importlib.import_module(f"device.cli.{name}").COMMANDS]


ALL = [*_collect(), relay]
