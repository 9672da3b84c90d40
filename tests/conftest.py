"""Fixtures shared by every test module: a fresh data dir, a fake clock, mock GPIO."""

from __future__ import annotations

import os

import pytest

# gpiozero's own test seam: no Pi pins here, mock PWM-capable pins instead.
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")


@pytest.fixture(autouse=True)
def _restore_logging():
    """CliRunner runs leave our handler pointing at a closed stream: put the root back."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh, empty data directory used by the store and the CLI."""
    path = tmp_path / "data"
    monkeypatch.setenv("BREATHE_DATA_DIR", str(path))
    monkeypatch.delenv("BREATHE_CONFIG", raising=False)
    return path


@pytest.fixture
def fake_clock():
    from device.clock import FakeClock

    return FakeClock()


@pytest.fixture
def clean_env(monkeypatch):
    """No BREATHE* variable from the outer shell may change what a test sees."""
    for name in list(os.environ):
        if name.startswith("BREATHE"):
            monkeypatch.delenv(name)


@pytest.fixture
def factory():
    """gpiozero's MockFactory with PWM-capable pins, reset (devices closed first) after."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    mock = MockFactory(pin_class=MockPWMPin)
    previous, Device.pin_factory = Device.pin_factory, mock
    yield mock
    mock.reset()
    Device.pin_factory = previous


@pytest.fixture(scope="session")
def mqtt_certs(tmp_path_factory):
    """A throwaway CA + server certificate for localhost, made once per test run."""
    from relay.localbroker import make_certs

    return make_certs(tmp_path_factory.mktemp("mqtt-certs"))


@pytest.fixture
def broker(tmp_path, mqtt_certs):
    """A real mosquitto from firmware_config/mosquitto/ (TLS, dynamic-security accounts) on a
    free port, with a ``relay`` account; add device accounts with ``broker.add_user(id)``."""
    from relay.localbroker import RELAY_USER, Broker

    b = Broker(tmp_path / "broker", mqtt_certs)
    b.add_user(RELAY_USER)
    b.start()
    yield b
    b.stop()
