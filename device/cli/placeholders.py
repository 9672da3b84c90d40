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


PLACEHOLDERS = [
    _placeholder("run", "the appliance: camera, pacing, sessions, web app", "live session"),
    _placeholder("analyze", "breath analysis of a video file", "breath estimator"),
    _placeholder("patterns", "breathing patterns", "foundation"),
    _placeholder("config", "configuration check and show", "foundation"),
    _placeholder("relay", "the cloud relay", "fleet sync"),
    _placeholder("bench", "benchmarks", "benchmark"),
]
