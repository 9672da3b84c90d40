"""Answers ``catalog/query`` requests: a page of the catalog on the asker's response topic.

A device publishes :class:`~wire.protocol.CatalogQuery` with an MQTT v5 response topic
``breathe/v1/<device>/inbox/<id>`` and correlation data; the answer is a
:class:`~wire.protocol.CatalogPage` with the query's id, published there with the same
correlation data. A response topic anywhere else is refused (and counted): the relay may write
every device's inbox, so it must not let one device aim answers at another.

Queries are reads; they run on their own thread so a slow search never holds up storing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relay.catalog import inbox_of
from relay.store import RelayStore
from relay.store.catalog import search
from relay.validate import Inbound
from wire.protocol import CatalogPage, CatalogQuery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    inbound: Inbound
    response_topic: str | None
    correlation: bytes | None
    done: Callable[[], None]  # sends the PUBACK once answered (or refused)


def answer(store: RelayStore, query: CatalogQuery) -> CatalogPage:
    """The page for ``query``; a store failure becomes an error page the device can show."""
    try:
        items, total = search(store, query)
    except Exception:
        log.exception("relay: catalog query %s failed", query.id)
        return CatalogPage(id=query.id, ok=False, page=query.page,
                           error="the catalog is not available right now; try again shortly")
    return CatalogPage(id=query.id, items=tuple(items), total=total, page=query.page)


class QueryResponder:
    """One thread answering queued queries through ``publish(topic, page, correlation)``."""

    def __init__(self, store: RelayStore,
                 publish: Callable[[str, CatalogPage, bytes | None], Any]) -> None:
        self.store = store
        self.publish = publish
        self.counts: dict[str, int] = {"answered": 0, "refused": 0}
        self._queue: queue.Queue[Query | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="relay-catalog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, query: Query) -> None:
        self._queue.put(query)

    def _run(self) -> None:
        while (query := self._queue.get()) is not None:
            try:
                self._handle(query)
            except Exception:  # one bad query must not end answering
                log.exception("relay: answering a catalog query failed")
            finally:
                query.done()

    def _handle(self, query: Query) -> None:
        device = query.inbound.device_id
        refused = inbox_of(device, query.response_topic)
        if refused is not None:
            self.counts["refused"] += 1
            log.warning("relay: refused catalog query %s from %s: %s",
                        query.inbound.message.id, device, refused)
            return
        message = query.inbound.message
        assert isinstance(message, CatalogQuery) and query.response_topic is not None
        self.publish(query.response_topic, answer(self.store, message), query.correlation)
        self.counts["answered"] += 1
