"""Shared pieces of the tests that run the real relay in process on the test broker (the
``broker`` fixture of tests/conftest.py): its config file, relays started and stopped, and
simulated devices (relay.fleetsim.SimDevice) with accounts on the broker.

Imported by tests/test_relay_*.py and tests/test_sync_catalog.py (pytest finds the fixtures by
name, so a module imports the fixtures the ones it uses depend on, too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.config import load_config
from common.config.models import RelaySettings
from relay.fleetsim import SimDevice, relay_config_toml
from relay.service import RelayService


class NoMinter:
    """Minting is not what these tests are about; say so the way relay.chain does."""

    retryable = False

    def __call__(self):
        raise self

    def __str__(self) -> str:
        return "no chain in these tests"


def write_relay_config(broker: Any, directory: Path) -> Path:
    """``directory``/relay.toml: the broker's ``relay`` account, a SQLite store beside it."""
    path = directory / "relay.toml"
    path.write_text(relay_config_toml(
        host=broker.host, port=broker.port, ca_file=broker.certs.ca,
        password_file=broker.password_file_for("relay", directory),
        store_url=str(directory / "relay.db")))
    return path


def sim_device(broker: Any, device_id: str, **options: Any) -> SimDevice:
    """A simulated device connected with its own account (added to the broker if missing)."""
    if device_id not in broker.passwords:
        broker.add_user(device_id)
    return SimDevice(broker.host, broker.port, device_id, broker.passwords[device_id],
                     ca_file=broker.certs.ca, **options)


@pytest.fixture
def config_file(broker, tmp_path) -> Path:
    return write_relay_config(broker, tmp_path)


@pytest.fixture
def relay_settings(config_file) -> RelaySettings:
    return load_config(config_file).relay


@pytest.fixture
def relay_minter() -> Callable[[], Any] | None:
    """How the relays ``start_relay`` starts build their minter: None, from ``[relay.chain]``
    (not in these configs, so mint requests stay pending). A module may override this."""
    return None


@pytest.fixture
def start_relay(relay_settings, relay_minter) -> Iterator[Callable[..., RelayService]]:
    """Starts relays, each waited for until it has subscribed; all stopped after the test."""
    running: list[RelayService] = []

    def start(instance: str = "t1", minter_factory: Callable[[], Any] | None = None
              ) -> RelayService:
        service = RelayService(relay_settings, instance=instance,
                               minter_factory=minter_factory or relay_minter).start()
        running.append(service)
        assert service.consumer.subscribed.wait(10), "the relay did not subscribe"
        return service

    yield start
    for service in running:
        service.stop()


@pytest.fixture
def device(broker) -> Iterator[Callable[..., SimDevice]]:
    """Connects simulated devices (``kitchen`` unless named); all closed after the test."""
    made: list[SimDevice] = []

    def connect(device_id: str = "kitchen", **options: Any) -> SimDevice:
        made.append(sim_device(broker, device_id, **options))
        return made[-1]

    yield connect
    for d in made:
        d.close()
