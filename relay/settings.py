"""The relay's settings: the ``[relay]`` section of the one settings file (``--config`` /
``$BREATHE_CONFIG``, with ``BREATHE__RELAY__...`` environment overrides).

The section's models are part of that file's schema (``common/config/models.py``), so
``breathe config check``, the shipped ``device.toml`` and ``breathe-relay`` read the same file
the same way; the relay takes them from here and never loads the device's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from common.config import load_config
from common.config.models import BrokerSettings, ChainSettings, RelaySettings

__all__ = ["BrokerSettings", "ChainSettings", "RelaySettings", "load_relay_settings"]


def load_relay_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None
                        ) -> RelaySettings:
    """``[relay]`` from ``path`` (else $BREATHE_CONFIG, else the defaults) plus the env;
    raises :class:`common.config.InvalidConfig` naming every problem in the file."""
    return load_config(path, env).relay
