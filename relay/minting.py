"""Mint requests become tokens: one worker thread, exactly once per request.

A request is stored (status ``pending``) and acked by the consumer before anything happens on
chain. The worker then *claims* it in the store (so two relays on one PostgreSQL database
never work on the same request; a claim older than ``lease_s`` is taken over), mints through
H-chain's :class:`relay.chain.Minter`, which looks on chain before it sends, records
``minted`` (or ``failed``), and publishes ``mint/result``. A relay killed anywhere in between
finds the request still pending at its next start and mints again — the minter then finds the
token already there, so the device still gets exactly one token.

Pattern mint requests (``pattern/mint/request``, kind ``pattern``) take the same path; the
relay's own refusals (not the creator, unpublished, a second original) were applied when they
were stored (:mod:`relay.store.catalog`), so what reaches the worker is worth sending.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from relay.store import MintRow, RelayStore, timestamp
from relay.store.catalog import PATTERN, listing_of_mint
from wire import protocol
from wire.protocol import MintRequest, MintResult, PatternMintRequest, ProtocolError

log = logging.getLogger(__name__)


class Minted(Protocol):
    token_id: int
    tx_hash: str | None
    contract: str
    chain_id: int


class Minter(Protocol):
    """What the worker needs of ``relay.chain.Minter``; pattern mint requests also need
    ``mint_pattern(request, pattern, category)`` (without it they stay pending)."""

    def mint(self, request: MintRequest) -> Minted: ...


def result_message(row: MintRow) -> MintResult | None:
    """The ``mint/result`` for a finished request (None while it is pending)."""
    if row.status == "minted":
        return MintResult(id=row.id, ok=True, token_id=row.token_id, tx_hash=row.tx_hash,
                          contract=row.contract, chain_id=row.chain_id)
    if row.status == "failed":
        return MintResult(id=row.id, ok=False, error=row.error or "minting failed")
    return None


def _retryable(exc: BaseException) -> bool:
    """relay.chain errors say whether retrying can help; anything else is assumed transient."""
    return bool(getattr(exc, "retryable", True))


class MintWorker:
    """Runs the mints of this relay instance (``owner``) in one thread."""

    def __init__(self, store: RelayStore, publish: Callable[[str, MintResult], None],
                 minter_factory: Callable[[], Minter] | None, *, owner: str,
                 lease_s: float = 300.0, retry_s: tuple[float, float] = (1.0, 60.0)) -> None:
        self.store = store
        self.publish = publish  # (device_id, result) -> published on mint/result
        self.minter_factory = minter_factory
        self.owner = owner
        self.lease_s = lease_s
        self.retry_min, self.retry_max = retry_s
        self.minter: Minter | None = None
        self.counts: dict[str, int] = {"minted": 0, "failed": 0, "retried": 0}
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._later: list[tuple[float, str, str]] = []  # (due, device, id) retries
        self._delays: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-minter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def submit(self, device_id: str, request_id: str) -> None:
        self._queue.put((device_id, request_id))

    def resend(self, row: MintRow) -> None:
        """A device asked again about a stored request: answer if done, else work on it."""
        message = result_message(row)
        if message is not None:
            self.publish(row.device, message)
        else:
            self.submit(row.device, row.id)

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.minter = self._make_minter()
            if self.minter is None:
                return
            for row in self.store.mints("pending", limit=100_000):
                self.submit(row.device, row.id)
            while not self._stop.is_set():
                key = self._next()
                if key is None:
                    continue
                try:
                    self._work(*key)
                except Exception:  # e.g. the store is down: the request stays pending
                    log.exception("relay: mint request %s of %s: unexpected failure", key[1],
                                  key[0])
                    self._schedule(key)
        except Exception:
            log.exception("relay: the mint worker stopped; pending requests resume at the "
                          "next start")

    def _make_minter(self) -> Minter | None:
        if self.minter_factory is None:
            log.warning("relay: minting is off (no [relay.chain] minter); mint requests are "
                        "stored and acked and stay pending")
            return None
        delay = self.retry_min
        while not self._stop.is_set():
            try:
                return self.minter_factory()
            except Exception as exc:
                if not _retryable(exc):
                    pending = len(self.store.mints("pending", limit=100_000))
                    log.warning("relay: minting is off: %s; %d mint request(s) stay pending "
                                "until [relay.chain] is complete and the relay restarted",
                                exc, pending)
                    return None
                log.warning("relay: the chain is not reachable yet (%s); retrying in %.0f s",
                            exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)
        return None

    def _next(self) -> tuple[str, str] | None:
        now = time.monotonic()
        if self._later and self._later[0][0] <= now:
            _, device, mid = heapq.heappop(self._later)
            return device, mid
        wait = min(0.2, self._later[0][0] - now) if self._later else 0.2
        try:
            return self._queue.get(timeout=max(wait, 0.0))
        except queue.Empty:
            return None

    def _work(self, device_id: str, request_id: str) -> None:
        now = timestamp()
        row = self.store.claim_mint(device_id, request_id, self.owner, now,
                                    timestamp(ago_s=self.lease_s))
        if row is None:
            return  # finished already, or another relay holds a fresh claim on it
        try:
            call = self._call(row)
        except ProtocolError as exc:  # stored rows were valid; a schema change could do this
            self._finish(row, error=str(exc))
            return
        if call is None:
            return  # stays pending (logged)
        try:
            minted: Any = call()
        except Exception as exc:
            if _retryable(exc):
                self._retry(row, exc)
            else:
                log.warning("relay: mint request %s of %s failed for good: %s", row.id,
                            row.device, exc)
                self._finish(row, error=str(exc))
            return
        self._delays.pop((row.device, row.id), None)
        self._finish(row, token_id=str(minted.token_id), tx_hash=minted.tx_hash,
                     contract=minted.contract, chain_id=int(minted.chain_id))

    def _call(self, row: MintRow) -> Callable[[], Any] | None:
        """What mints this row: the achievement minter, or the pattern minter with the
        catalog's copy of the listing; None when this relay cannot mint patterns (pending)."""
        assert self.minter is not None
        if row.kind != PATTERN:
            request = protocol.decode(MintRequest, row.payload, where=f"mint request {row.id}")
            return lambda: self.minter.mint(request)  # type: ignore[union-attr]
        mint_pattern = getattr(self.minter, "mint_pattern", None)
        if mint_pattern is None or getattr(self.minter, "patterns_address", "") is None:
            log.warning("relay: pattern mint request %s of %s stays pending: this relay has no "
                        "pattern-token contract (set relay.chain.patterns_contract_address and "
                        "restart the relay)", row.id, row.device)
            return None
        request = protocol.decode(PatternMintRequest, row.payload,
                                  where=f"pattern mint request {row.id}")
        listing = listing_of_mint(self.store, row)
        if listing is None:
            raise ProtocolError(f"pattern mint request {row.id}: listing {request.listing_id} "
                                "is no longer in the relay's catalog")
        return lambda: mint_pattern(request, listing.pattern, listing.category)

    def _finish(self, row: MintRow, **result: Any) -> None:
        if "error" in result:
            result["error"] = str(result["error"])[:500]
        done = self.store.finish_mint(row.device, row.id, self.owner, timestamp(), **result)
        if done is None:
            return  # another relay finished it after our claim went stale; it answered
        self.counts["minted" if done.status == "minted" else "failed"] += 1
        message = result_message(done)
        if message is not None:
            self.publish(done.device, message)

    def _retry(self, row: MintRow, exc: BaseException) -> None:
        delay = self._schedule((row.device, row.id))
        log.warning("relay: mint request %s of %s: %s; retrying in %.0f s", row.id, row.device,
                    exc, delay)
        self.store.note_mint_error(row.device, row.id, self.owner, timestamp(), str(exc))

    def _schedule(self, key: tuple[str, str]) -> float:
        delay = min(self._delays.get(key, self.retry_min / 2) * 2, self.retry_max)
        self._delays[key] = delay
        self.counts["retried"] += 1
        heapq.heappush(self._later, (time.monotonic() + delay, *key))
        return delay
