"""The list of command groups; each module adds its own."""

from __future__ import annotations

from device.cli.placeholders import bench, relay, session

ALL = [bench, relay, session]
