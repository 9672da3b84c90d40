"""``python -m device`` is the ``breathe`` command."""

from device.cli import run

run()
