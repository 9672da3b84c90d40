"""Store errors: each also inherits the builtin a caller might already catch."""

from __future__ import annotations

from common.errors import BadInput, BreatheError


class StoreError(BreatheError, OSError):
    """The database could not be opened, migrated or written (CLI exit code 1)."""


class NotFound(BadInput, LookupError):
    """A record id a person gave does not exist (CLI exit code 2)."""
