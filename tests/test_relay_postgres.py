"""Two relay processes on one shared subscription and one PostgreSQL database split the
fleet's messages between them and store each session exactly once — also the copies a device
re-sends, which the broker may hand to the other relay."""

from __future__ import annotations

import re

import pytest

from relay.fleetsim import RelayProcess, SimDevice, relay_config_toml, session_message
from relay.store import open_store
from relay.store.localpg import LocalPostgres, available
from wire import protocol

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None,
                                 reason=f"needs a local PostgreSQL server: {available()}")]


@pytest.fixture
def postgres():
    with LocalPostgres() as pg:
        yield pg


def _stored_by(relay: RelayProcess) -> tuple[int, int]:
    """(stored, duplicate) from the relay's last log line: what this process did."""
    line = [x for x in relay.log().splitlines() if "stopped (" in x][-1]
    counts = {k: int(v) for k, v in re.findall(r"'([a-z./]+)': (\d+)", line)}
    return counts.get("stored", 0), counts.get("duplicate", 0)


def test_two_relays_split_the_messages_and_store_each_once(broker, postgres, tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text(relay_config_toml(
        host=broker.host, port=broker.port, ca_file=broker.certs.ca,
        password_file=broker.password_file_for("relay", tmp_path), store_url=postgres.url))
    relays = [RelayProcess(config, name, tmp_path / f"relay-{name}.log") for name in "ab"]
    devices: list[SimDevice] = []
    try:
        for relay in relays:
            relay.start()
        for name in ("kitchen", "bedroom", "attic"):
            broker.add_user(name)
            devices.append(SimDevice(broker.host, broker.port, name, broker.passwords[name],
                                     ca_file=broker.certs.ca))
        sent: dict[str, list] = {d.device_id: [] for d in devices}
        for i in range(300):
            device = devices[i % 3]
            message = session_message(device.device_id)
            sent[device.device_id].append(message)
            device.publish(protocol.SESSIONS, message, wait=False)
        resent = 0
        for device in devices:  # a device that lost its acks sends a batch again
            for message in sent[device.device_id][:20]:
                device.publish(protocol.SESSIONS, message, wait=False)
                resent += 1
        for device in devices:
            ids = [m.id for m in sent[device.device_id]]
            acks = device.wait_acks(ids, timeout=30)
            assert len(acks) == len(ids) and all(a.ok for a in acks.values())
            want = len(ids) + 20  # and one more ack per re-sent copy
            assert device.wait_for(lambda d=device, w=want: d.ack_count >= w, 30)
    finally:
        codes = [relay.stop() for relay in relays]
        for device in devices:
            device.close()
    assert codes == [0, 0]
    store = open_store(postgres.url)
    try:
        assert sorted(store.session_ids()) == sorted(
            (dev, m.id) for dev, messages in sent.items() for m in messages)
        assert store.stats()["devices"] == 3
    finally:
        store.close()
    (stored_a, dup_a), (stored_b, dup_b) = (_stored_by(r) for r in relays)
    assert stored_a > 0 and stored_b > 0  # both relays did part of the work
    assert stored_a + stored_b == 300
    assert dup_a + dup_b == resent
