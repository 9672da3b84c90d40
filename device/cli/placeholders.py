"""Commands whose features arrive with later issues: they say so and exit 1."""

from __future__ import annotations

import click

from device.errors import NotYetAvailable


def _placeholder(name: str, what: str, issue: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise NotYetAvailable(f"'breathe {name}' ({what}) arrives with the {issue} work")

    command.help = f"{what.capitalize()} (not available yet: arrives with the {issue} work)."
    return command


session = _placeholder("session", "headless sessions from a terminal", "live session")
relay = _placeholder("relay", "the cloud relay", "fleet sync")
bench = _placeholder("bench", "benchmarks", "benchmark")
