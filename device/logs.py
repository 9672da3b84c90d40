"""One logging format for every part of the appliance; secrets are never logged."""

from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_SECRET = re.compile(r"(?i)(password|secret|token|private_key|key_file)(\s*[=:]\s*)(\S+)")


class RedactSecrets(logging.Filter):
    """Masks values that follow words like password= or secret: in any log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET.sub(r"\1\2***", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup_logging(verbose: int = 0, level: str | None = None) -> None:
    """Configure the root logger once; ``-v`` wins over the config's level."""
    if verbose >= 2:
        chosen = logging.DEBUG
    elif verbose == 1:
        chosen = logging.INFO
    else:
        chosen = getattr(logging, (level or "WARNING").upper(), logging.WARNING)
    root = logging.getLogger()
    if not any(isinstance(f, RedactSecrets) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RedactSecrets())
        root.handlers[:] = [handler]
    root.setLevel(chosen)
