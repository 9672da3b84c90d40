"""One logging format for every part of the appliance; secrets are never logged."""

from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# key=value, key: value, 'key': 'value' (dict reprs); the value may be quoted.
_SECRET = re.compile(
    r"""(?ix)(["']?\b(?:password|passwd|secret|token|private_key|api_key|key_file)\b["']?
        \s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;}&]+)""")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.I)


def redact(text: str) -> str:
    """``text`` with secret values and URL passwords replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return _SECRET.sub(r"\1***", text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks secrets in the whole line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(verbose: int = 0, level: str | None = None) -> None:
    """Configure the root logger; ``-v``/``-vv`` can only make it more verbose than the config."""
    configured = getattr(logging, (level or "WARNING").upper(), logging.WARNING)
    wanted = {0: configured, 1: logging.INFO}.get(verbose, logging.DEBUG)
    root = logging.getLogger()
    if not any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(RedactingFormatter(FORMAT))
        root.handlers[:] = [handler]
    root.setLevel(min(wanted, configured))
