"""Shared pieces of the tests that run the device's real sync client (device/sync/client.py)
on the test broker: fake device controls, the tiny in-test relay that acks, and a client set up
for a local broker.

The building blocks (FakeRelay, Controls, device_settings, ...) are in tests/test_sync_support.py,
which a device process in tests/test_sync_faults.py imports too: the pytest fixtures are kept
here, out of that process. Imported by the test modules that use them (pytest finds the
fixtures by name).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sync_support import Controls, FakeRelay

from common.config import Settings
from device.sync.client import SyncClient


@pytest.fixture
def controls() -> Controls:
    return Controls()


@pytest.fixture
def relay(broker) -> Iterator[FakeRelay]:
    """The in-test relay, acking every session and mint request it receives."""
    r = FakeRelay(broker)
    yield r
    r.close()


def quick_client(settings: Settings, db_path: Path, **options: Any) -> SyncClient:
    """A sync client (not started) that reconnects within 1 s and looks at its outbox every
    50 ms, with fake controls unless ``controls`` is given."""
    options.setdefault("controls", Controls())
    options.setdefault("reconnect_max_s", 1)
    options.setdefault("poll_s", 0.05)
    return SyncClient(settings, db_path, **options)
