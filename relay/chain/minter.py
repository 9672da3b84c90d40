"""Mint tokens (achievements, pattern originals) exactly once per request, with one signer.

Exactly once rests on the contract: it refuses a second mint for a request id. The minter adds
what keeps that cheap and readable: it asks the chain first and returns the existing token
instead of sending again; it joins a transaction another thread of this process already sent
for the same request; and when its own transaction reverts because another relay won the race,
it returns the winner's token. So the caller may retry any failure, at any time, from any
process.

One signer means one nonce sequence: sends are serialised by a lock and numbered by a local
counter (re-read from the node after any send failure or timeout), while the waits for
receipts run in parallel. Both contracts go through the same path: a public method turns a
request into a :class:`~relay.chain.jobs.MintJob` (contract, request id, ``mint`` arguments)
and everything after that is shared. A pattern job also names its content hash: the minter
refuses it before sending when those phases have an original (:class:`PatternAlreadyMinted`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from eth_utils import ValidationError
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception
from web3.logs import DISCARD
from web3.types import TxReceipt

from relay.chain.contract import (
    CONTRACT_NAME,
    PATTERNS_CONTRACT_NAME,
    bind,
    decode_revert,
    explain_revert,
)
from relay.chain.errors import (
    BadMintRequest,
    ChainConfigError,
    ChainError,
    MintError,
    PatternAlreadyMinted,
)
from relay.chain.jobs import SETTING, MintJob, achievement_job, pattern_job
from relay.chain.request import MintRequestLike, PatternMintRequestLike, check_request

if TYPE_CHECKING:
    from wire.patterns import Pattern
    from wire.protocol import MintResult as MintResultMessage

log = logging.getLogger(__name__)

_REVERTS: tuple[type[BaseException], ...] = (ContractLogicError,)
try:  # the in-process EVM reports reverts its own way (dev dependency only)
    from eth_tester.exceptions import TransactionFailed

    _REVERTS += (TransactionFailed,)
except ImportError:  # pragma: no cover - production relays have no eth-tester
    pass
# The node could not be reached or answered with an error: worth retrying later.
_NODE_ERRORS = (OSError, Web3Exception, ValidationError)


@dataclass(frozen=True)
class MintResult:
    """The token a request got. ``already_minted``: this call sent nothing (minted earlier, or
    by a concurrent call). ``tx_hash`` is None only when the node no longer serves old logs."""

    token_id: int
    tx_hash: str | None
    contract: str
    chain_id: int
    already_minted: bool = False

    def to_message(self, request_id: str) -> MintResultMessage:
        """The ``mint/result`` payload for the device's request ``request_id``."""
        from wire.protocol import MintResult as Message

        return Message(id=request_id, ok=True, token_id=str(self.token_id),
                       tx_hash=self.tx_hash, contract=self.contract, chain_id=self.chain_id)


@dataclass(frozen=True)
class _Pending:
    tx_hash: HexBytes
    joined: bool  # sent by another call of this process, not this one


class Minter:
    """Mints through ``w3``, signed by ``account``: achievements to the contract at
    ``contract_address``, pattern originals to the one at ``patterns_address`` (either may be
    None: that kind of minting is off and its method raises :class:`ChainConfigError`)."""

    def __init__(self, w3: Web3, contract_address: str | None, account: LocalAccount, *,
                 patterns_address: str | None = None,
                 receipt_timeout: float = 120.0, max_poll_s: float = 1.0,
                 gas_margin: float = 1.25, gas_limit: int | None = None,
                 logs_from_block: int = 0) -> None:
        self.w3 = w3
        self.contracts: dict[str, Contract] = {}
        if contract_address is not None:
            self.contracts[CONTRACT_NAME] = bind(w3, contract_address)
        if patterns_address is not None:
            self.contracts[PATTERNS_CONTRACT_NAME] = bind(w3, patterns_address,
                                                          PATTERNS_CONTRACT_NAME)
        if not self.contracts:
            raise ChainConfigError("relay.chain.contract_address and "
                                   "relay.chain.patterns_contract_address: both empty, so "
                                   "there is nothing to mint to")
        self.account = account
        self.receipt_timeout = receipt_timeout
        self.max_poll_s = max_poll_s
        self.gas_margin = gas_margin  # over the node's estimate
        # a fixed limit skips estimation: for in-process test chains, where it is 10x a mint
        self.gas_limit = gas_limit
        self.logs_from_block = logs_from_block  # the deployment block, if known: faster lookups
        self._lock = threading.Lock()
        self._nonce: int | None = None  # next nonce to use; None: ask the node
        # (contract, request id) -> our tx awaiting its receipt
        self._inflight: dict[tuple[str, bytes], HexBytes] = {}
        self._inflight_content: dict[bytes, bytes] = {}  # pattern hash -> request id in flight
        self._chain_id: int | None = None

    @property
    def contract(self) -> Contract:
        """The achievement contract (:class:`ChainConfigError` when it is not configured)."""
        return self._require(CONTRACT_NAME)

    @property
    def patterns(self) -> Contract:
        """The pattern-token contract (:class:`ChainConfigError` when it is not configured)."""
        return self._require(PATTERNS_CONTRACT_NAME)

    @property
    def address(self) -> str:
        """The achievement contract's EIP-55 address."""
        return self.contract.address

    @property
    def patterns_address(self) -> str | None:
        """The pattern-token contract's EIP-55 address, or None: pattern minting is off."""
        contract = self.contracts.get(PATTERNS_CONTRACT_NAME)
        return None if contract is None else contract.address

    def _require(self, kind: str) -> Contract:
        contract = self.contracts.get(kind)
        if contract is None:
            what = "pattern" if kind == PATTERNS_CONTRACT_NAME else "achievement"
            raise ChainConfigError(f"{SETTING[kind]}: empty, so {what} minting is off; deploy "
                                   f"{kind} (scripts/chain-demo does) and set its address")
        return contract

    @property
    def signer(self) -> str:
        return self.account.address

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def check(self, *, expected_chain_id: int | None = None) -> None:
        """Fail now, with the setting to fix, rather than at the first mint."""
        try:
            chain_id = self.chain_id
            if expected_chain_id is not None and chain_id != expected_chain_id:
                raise ChainConfigError(
                    f"relay.chain.chain_id: {expected_chain_id} configured, but the node reports "
                    f"{chain_id}; point rpc_url at the right chain or fix chain_id")
            for kind, contract in self.contracts.items():
                if not self.w3.eth.get_code(contract.address):
                    raise ChainConfigError(
                        f"{SETTING[kind]}: no contract at {contract.address} on chain "
                        f"{chain_id}; deploy {kind} (scripts/chain-demo does) or fix the "
                        "address")
                role = contract.functions.MINTER_ROLE().call()
                if not contract.functions.hasRole(role, self.signer).call():
                    raise ChainConfigError(
                        f"relay.chain.key_file: signer {self.signer} lacks MINTER_ROLE on "
                        f"{kind} {contract.address}; an admin must call "
                        f"grantRole(MINTER_ROLE, {self.signer})")
        except ChainError:
            raise
        except (*_NODE_ERRORS, *_REVERTS) as exc:
            raise ChainError(f"cannot check the minter against the chain node: {exc}") from exc

    def token_of(self, request: MintRequestLike) -> int:
        """The token already minted for ``request``, or 0 (a view: sends nothing)."""
        key = check_request(request).request_key
        with self._node_errors(f"looking up mint request {request.id!r}"):
            return int(self.contract.functions.tokenOfRequest(key).call())

    def original_of(self, content_hash: str) -> int:
        """The original pattern token for ``content_hash`` (64 hex digits), or 0 (a view)."""
        try:
            key = bytes.fromhex(content_hash)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise BadMintRequest(f"content_hash {content_hash!r}: allowed 64 hex digits")
        with self._node_errors(f"looking up pattern {content_hash}"):
            return int(self.patterns.functions.tokenOfContent(key).call())

    def mint(self, request: MintRequestLike) -> MintResult:
        """Mint the achievement token for ``request`` once; return it (also when it existed).

        Raises :class:`~relay.chain.errors.BadMintRequest` for an invalid request and
        :class:`~relay.chain.errors.MintError` (see ``retryable``) when minting did not finish.
        """
        job = achievement_job(self.contract, request)
        with self._node_errors(job.where):
            return self._mint(job)

    def mint_pattern(self, request: PatternMintRequestLike, pattern: Pattern,
                     category: str) -> MintResult:
        """Mint ``pattern`` (the catalog's copy of the listing) as an original for the
        request's wallet, once per request; return the token (also when it existed already).

        Raises :class:`~relay.chain.errors.BadMintRequest` (bad wallet or category, or a
        content hash that is not the pattern's), :class:`~relay.chain.errors.
        PatternAlreadyMinted` (final: another request minted these phases first) and
        :class:`~relay.chain.errors.MintError` (see ``retryable``).
        """
        job = pattern_job(self.patterns, request, pattern, category)
        with self._node_errors(job.where):
            return self._mint(job)

    @contextmanager
    def _node_errors(self, where: str) -> Iterator[None]:
        """Turn a failure to talk to the node into a retryable MintError."""
        try:
            yield
        except ChainError:
            raise
        except _NODE_ERRORS as exc:
            with self._lock:
                self._nonce = None  # whatever was sent, the node knows the next nonce
            raise MintError(f"{where}: the chain node failed ({type(exc).__name__}: {exc}); "
                            "retrying is safe", retryable=True) from exc

    def _mint(self, job: MintJob) -> MintResult:
        where, address = job.where, job.contract.address
        sent = self._send_once(job)
        if isinstance(sent, int):
            return self._existing(job, sent)
        receipt = self._wait(job, sent.tx_hash)
        tx_hash = sent.tx_hash.to_0x_hex()
        if receipt["status"] == 1:
            events = job.contract.events.RequestMinted().process_receipt(receipt, errors=DISCARD)
            for event in events:
                if event["args"]["requestId"] == job.request_key:
                    token_id = int(event["args"]["tokenId"])
                    log.info("%s: minted token %d in %s", where, token_id, tx_hash)
                    return MintResult(token_id, tx_hash, address, self.chain_id,
                                      already_minted=sent.joined)
            raise MintError(f"{where}: transaction {tx_hash} succeeded without a RequestMinted "
                            f"event; is {address} a {job.kind} contract?",
                            retryable=False, tx_hash=tx_hash)
        # Reverted on chain: almost always another relay minted this request (or, for a
        # pattern, another request for the same phases) first.
        token_id = self._token_of_key(job)
        if token_id:
            return self._existing(job, token_id)
        if job.content_key is not None:
            original = self._original_of_key(job)
            if original:
                raise PatternAlreadyMinted(job.content_key.hex(), original, address,
                                           where=where, tx_hash=tx_hash)
        raise MintError(f"{where}: transaction {tx_hash} reverted (gas used "
                        f"{receipt['gasUsed']}); nothing was minted", retryable=False,
                        tx_hash=tx_hash)

    @staticmethod
    def _token_of_key(job: MintJob) -> int:
        return int(job.contract.functions.tokenOfRequest(job.request_key).call())

    @staticmethod
    def _original_of_key(job: MintJob) -> int:
        return int(job.contract.functions.tokenOfContent(job.content_key).call())

    def _refuse_copy(self, job: MintJob) -> None:
        """Under the lock, for a pattern: refuse it when its phases have an original, or are
        being minted by another request of this process right now."""
        assert job.content_key is not None
        original = self._original_of_key(job)
        if original:
            raise PatternAlreadyMinted(job.content_key.hex(), original, job.contract.address,
                                       where=job.where)
        other = self._inflight_content.get(job.content_key)
        if other is not None and other != job.request_key:
            raise MintError(f"{job.where}: another request is minting this pattern right now; "
                            "retry once it is mined", retryable=True)

    def _send_once(self, job: MintJob) -> _Pending | int:
        """Under the lock: the existing token id, or the transaction to wait for."""
        where = job.where
        with self._lock:
            if job.inflight_key in self._inflight:
                return _Pending(self._inflight[job.inflight_key], joined=True)
            token_id = self._token_of_key(job)
            if token_id:
                return token_id
            if job.content_key is not None:
                self._refuse_copy(job)
            call = job.contract.functions.mint(*job.args)
            try:
                if self.gas_limit is None:
                    gas = int(call.estimate_gas({"from": self.signer}) * self.gas_margin)
                else:  # one execution instead of a search; refusals show the same way
                    call.call({"from": self.signer})
                    gas = self.gas_limit
            except _REVERTS as exc:
                token_id = self._token_of_key(job)  # minted since we looked
                if token_id:
                    return token_id
                decoded = decode_revert(exc, job.kind)
                if decoded and decoded[0] == "RequestAlreadyMinted":
                    # the node estimates on pending state: a transaction for it is in flight
                    raise MintError(f"{where}: a pending transaction is minting it already; "
                                    "retry once it is mined", retryable=True) from exc
                if decoded and decoded[0] == "PatternAlreadyMinted":  # pending, or a race
                    raise PatternAlreadyMinted(decoded[1]["contentHash"].hex(),
                                               int(decoded[1]["tokenId"]), job.contract.address,
                                               where=where) from exc
                raise MintError(f"{where}: {explain_revert(exc, job.kind)}",
                                retryable=False) from exc
            tx_hash = self._send(call, gas, where)
            self._inflight[job.inflight_key] = tx_hash
            if job.content_key is not None:
                self._inflight_content[job.content_key] = job.request_key
            return _Pending(tx_hash, joined=False)

    def _send(self, call: ContractFunction, gas: int, where: str) -> HexBytes:
        """Sign and send with the next local nonce; on a nonce clash re-read it once."""
        for attempt in (1, 2):
            if self._nonce is None:
                self._nonce = int(self.w3.eth.get_transaction_count(self.signer, "pending"))
            tx = call.build_transaction({"from": self.signer, "nonce": self._nonce,
                                         "gas": gas, "chainId": self.chain_id})
            signed = self.account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except (*_NODE_ERRORS, ValueError) as exc:
                self._nonce = None
                if attempt == 1 and "nonce" in str(exc).lower():
                    log.warning("%s: nonce clash (%s); re-reading the nonce", where, exc)
                    continue
                raise MintError(f"{where}: the node refused the transaction ({exc}); retrying "
                                "is safe", retryable=True) from exc
            self._nonce += 1
            return HexBytes(tx_hash)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, job: MintJob, tx_hash: HexBytes) -> TxReceipt:
        """Poll for the receipt: every 5 ms at first (a dev chain mines at once), backing off
        to ``max_poll_s`` (a public chain takes seconds; its RPC provider counts requests)."""
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.005
        try:
            while True:
                try:
                    return self.w3.eth.get_transaction_receipt(tx_hash)
                except TransactionNotFound:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(delay, left))
                delay = min(delay * 2, self.max_poll_s)
        finally:
            with self._lock:
                if self._inflight.get(job.inflight_key) == tx_hash:
                    del self._inflight[job.inflight_key]
                    if job.content_key is not None:
                        self._inflight_content.pop(job.content_key, None)
        with self._lock:
            self._nonce = None  # the transaction may have been dropped: re-read the nonce
        raise MintError(f"{job.where}: no receipt for {tx_hash.to_0x_hex()} within "
                        f"{self.receipt_timeout:g} s; retrying is safe (the contract refuses a "
                        "second mint)", retryable=True, tx_hash=tx_hash.to_0x_hex())

    def _existing(self, job: MintJob, token_id: int) -> MintResult:
        """The result for a request minted before: the token, and its transaction from the log."""
        tx_hash = None
        key = job.request_key
        try:
            logs = job.contract.events.RequestMinted().get_logs(
                argument_filters={"requestId": key}, from_block=self.logs_from_block)
            if logs:
                tx_hash = logs[0]["transactionHash"].to_0x_hex()
        except (*_NODE_ERRORS, ValueError) as exc:
            log.warning("token %d exists, but its mint transaction was not found: %s",
                        token_id, exc)
        log.info("request %s was minted before as token %d (%s)", key.hex()[:12], token_id,
                 tx_hash)
        return MintResult(token_id, tx_hash, job.contract.address, self.chain_id,
                          already_minted=True)
