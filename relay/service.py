"""``breathe relay run``: the store, the consumer and the mint worker, started and stopped
together.

Several relays may run at once (one PostgreSQL database, one shared-subscription group); each
needs its own ``instance`` name, which names its MQTT client id (so a restarted relay gets its
persistent session back, with whatever the broker queued meanwhile) and its mint claims.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Callable

from common.config import ChainSettings, RelaySettings
from common.errors import BadInput, ConfigError
from relay.consumer import Consumer
from relay.minting import Minter, MintWorker
from relay.store import RelayStore, open_store
from wire import protocol
from wire.protocol import MintResult

log = logging.getLogger(__name__)

INSTANCE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,40}$"


def default_instance() -> str:
    """This host's name, reduced to what a client id may carry."""
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")
    return name[:40] or "relay"


def check_instance(instance: str) -> str:
    if not re.match(INSTANCE_PATTERN, instance):
        raise BadInput(f"relay instance {instance!r} is not valid (allowed: 1-41 lowercase "
                       "letters, digits or '-', not starting with '-')")
    return instance


class MintingOff(ConfigError):
    """``[relay.chain]`` lacks what minting needs; requests are stored and stay pending."""

    retryable = False


def chain_minter_factory(chain: ChainSettings) -> Callable[[], Minter]:
    """H-chain's minter from ``[relay.chain]``. web3 is imported only when minting is
    configured: it is heavy, and a relay without a chain should not pay for it."""
    def make() -> Minter:
        if chain.key_file is None:
            raise MintingOff("relay.chain.key_file not set")
        if chain.contract_address is None and getattr(
                chain, "patterns_contract_address", None) is None:
            raise MintingOff("relay.chain.contract_address (achievements) and "
                             "relay.chain.patterns_contract_address (patterns) not set")
        from relay.chain import minter_from_settings

        return minter_from_settings(chain)

    return make


class RelayService:
    """One relay instance. ``minter_factory``: how to build the minter (default: from
    ``[relay.chain]``; without a key file or contract, mint requests stay pending)."""

    def __init__(self, settings: RelaySettings, *, instance: str | None = None,
                 minter_factory: Callable[[], Minter] | None = None,
                 store: RelayStore | None = None, batch_max: int = 500) -> None:
        self.settings = settings
        self.instance = check_instance(instance or default_instance())
        self.client_id = f"breathe-relay-{self.instance}"
        self.store = store or open_store(settings.store_url)
        self.minter = MintWorker(self.store, self._publish_result,
                                 minter_factory or chain_minter_factory(settings.chain),
                                 owner=self.client_id)
        self.consumer = Consumer(settings, self.store, client_id=self.client_id,
                                 on_mint=self.minter.submit, on_mint_duplicate=self.minter.resend,
                                 batch_max=batch_max)

    def _publish_result(self, device_id: str, result: MintResult) -> None:
        self.consumer.publish(device_id, protocol.MINT_RESULT, result)

    def start(self) -> RelayService:
        log.info("relay %s: store %s, broker %s:%s, group %s", self.instance,
                 self.store.backend.describe(), self.settings.mqtt.host, self.settings.mqtt.port,
                 self.settings.share_group)
        self.consumer.start()
        self.minter.start()
        return self

    def stop(self) -> None:
        self.minter.stop()
        self.consumer.stop()
        self.store.close()

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set (SIGTERM / Ctrl-C in the CLI)."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()
            log.info("relay %s: stopped (%s)", self.instance, dict(self.consumer.counts))

    def __enter__(self) -> RelayService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
