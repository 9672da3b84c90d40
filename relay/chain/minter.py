"""Mint achievement tokens exactly once per request, with one signer.

Exactly once rests on the contract: it refuses a second mint for a request id. The minter adds
what keeps that cheap and readable: it asks the chain first and returns the existing token
instead of sending again; it joins a transaction another thread of this process already sent
for the same request; and when its own transaction reverts because another relay won the race,
it returns the winner's token. So the caller may retry any failure, at any time, from any
process.

One signer means one nonce sequence: sends are serialised by a lock and numbered by a local
counter (re-read from the node after any send failure or timeout), while the waits for
receipts run in parallel.
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
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception
from web3.logs import DISCARD
from web3.types import TxReceipt

from relay.chain.contract import bind, decode_revert, explain_revert
from relay.chain.errors import ChainConfigError, ChainError, MintError
from relay.chain.metadata import token_uri
from relay.chain.request import CheckedMint, MintRequestLike, check_request

if TYPE_CHECKING:
    from device.sync.protocol import MintResult as MintResultMessage

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
        from device.sync.protocol import MintResult as Message

        return Message(id=request_id, ok=True, token_id=str(self.token_id),
                       tx_hash=self.tx_hash, contract=self.contract, chain_id=self.chain_id)


@dataclass(frozen=True)
class _Pending:
    tx_hash: HexBytes
    joined: bool  # sent by another call of this process, not this one


class Minter:
    """Mints through ``w3`` to the contract at ``contract_address``, signed by ``account``."""

    def __init__(self, w3: Web3, contract_address: str, account: LocalAccount, *,
                 receipt_timeout: float = 120.0, max_poll_s: float = 1.0,
                 gas_margin: float = 1.25, gas_limit: int | None = None,
                 logs_from_block: int = 0) -> None:
        self.w3 = w3
        self.contract = bind(w3, contract_address)
        self.account = account
        self.receipt_timeout = receipt_timeout
        self.max_poll_s = max_poll_s
        self.gas_margin = gas_margin  # over the node's estimate
        # a fixed limit skips estimation: for in-process test chains, where it is 10x a mint
        self.gas_limit = gas_limit
        self.logs_from_block = logs_from_block  # the deployment block, if known: faster lookups
        self._lock = threading.Lock()
        self._nonce: int | None = None  # next nonce to use; None: ask the node
        self._inflight: dict[bytes, HexBytes] = {}  # request id -> our tx awaiting its receipt
        self._chain_id: int | None = None

    @property
    def address(self) -> str:
        """The contract's EIP-55 address."""
        return self.contract.address

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
            if not self.w3.eth.get_code(self.address):
                raise ChainConfigError(
                    f"relay.chain.contract_address: no contract at {self.address} on chain "
                    f"{chain_id}; deploy one (scripts/chain-demo does) or fix the address")
            role = self.contract.functions.MINTER_ROLE().call()
            if not self.contract.functions.hasRole(role, self.signer).call():
                raise ChainConfigError(
                    f"relay.chain.key_file: signer {self.signer} lacks MINTER_ROLE on "
                    f"{self.address}; an admin must call grantRole(MINTER_ROLE, {self.signer})")
        except ChainError:
            raise
        except (*_NODE_ERRORS, *_REVERTS) as exc:
            raise ChainError(f"cannot check the minter against the chain node: {exc}") from exc

    def token_of(self, request: MintRequestLike) -> int:
        """The token already minted for ``request``, or 0 (a view: sends nothing)."""
        key = check_request(request).request_key
        with self._node_errors(f"looking up mint request {request.id!r}"):
            return self._token_of_key(key)

    def mint(self, request: MintRequestLike) -> MintResult:
        """Mint the token for ``request`` once; return it (also when it existed already).

        Raises :class:`~relay.chain.errors.BadMintRequest` for an invalid request and
        :class:`~relay.chain.errors.MintError` (see ``retryable``) when minting did not finish.
        """
        mint = check_request(request)
        where = f"mint request {request.id!r} of device {request.device_id!r}"
        with self._node_errors(where):
            return self._mint(mint, where)

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

    def _mint(self, mint: CheckedMint, where: str) -> MintResult:
        sent = self._send_once(mint, where)
        if isinstance(sent, int):
            return self._existing(mint.request_key, sent)
        receipt = self._wait(mint.request_key, sent.tx_hash, where)
        tx_hash = sent.tx_hash.to_0x_hex()
        if receipt["status"] == 1:
            events = self.contract.events.RequestMinted().process_receipt(receipt, errors=DISCARD)
            for event in events:
                if event["args"]["requestId"] == mint.request_key:
                    token_id = int(event["args"]["tokenId"])
                    log.info("%s: minted token %d in %s", where, token_id, tx_hash)
                    return MintResult(token_id, tx_hash, self.address, self.chain_id,
                                      already_minted=sent.joined)
            raise MintError(f"{where}: transaction {tx_hash} succeeded without a RequestMinted "
                            f"event; is {self.address} a BreatheAchievements contract?",
                            retryable=False, tx_hash=tx_hash)
        # Reverted on chain: almost always another relay minted this request first.
        token_id = self._token_of_key(mint.request_key)
        if token_id:
            return self._existing(mint.request_key, token_id)
        raise MintError(f"{where}: transaction {tx_hash} reverted (gas used "
                        f"{receipt['gasUsed']}); nothing was minted", retryable=False,
                        tx_hash=tx_hash)

    def _token_of_key(self, key: bytes) -> int:
        return int(self.contract.functions.tokenOfRequest(key).call())

    def _send_once(self, mint: CheckedMint, where: str) -> _Pending | int:
        """Under the lock: the existing token id, or the transaction to wait for."""
        key = mint.request_key
        with self._lock:
            if key in self._inflight:
                return _Pending(self._inflight[key], joined=True)
            token_id = self._token_of_key(key)
            if token_id:
                return token_id
            call = self.contract.functions.mint(mint.to, key, token_uri(mint))
            try:
                if self.gas_limit is None:
                    gas = int(call.estimate_gas({"from": self.signer}) * self.gas_margin)
                else:  # one execution instead of a search; refusals show the same way
                    call.call({"from": self.signer})
                    gas = self.gas_limit
            except _REVERTS as exc:
                token_id = self._token_of_key(key)  # minted since we looked
                if token_id:
                    return token_id
                decoded = decode_revert(exc)
                if decoded and decoded[0] == "RequestAlreadyMinted":
                    # the node estimates on pending state: a transaction for it is in flight
                    raise MintError(f"{where}: a pending transaction is minting it already; "
                                    "retry once it is mined", retryable=True) from exc
                raise MintError(f"{where}: {explain_revert(exc)}", retryable=False) from exc
            tx_hash = self._send(call, gas, where)
            self._inflight[key] = tx_hash
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

    def _wait(self, key: bytes, tx_hash: HexBytes, where: str) -> TxReceipt:
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
                if self._inflight.get(key) == tx_hash:
                    del self._inflight[key]
        with self._lock:
            self._nonce = None  # the transaction may have been dropped: re-read the nonce
        raise MintError(f"{where}: no receipt for {tx_hash.to_0x_hex()} within "
                        f"{self.receipt_timeout:g} s; retrying is safe (the contract refuses a "
                        "second mint)", retryable=True, tx_hash=tx_hash.to_0x_hex())

    def _existing(self, key: bytes, token_id: int) -> MintResult:
        """The result for a request minted before: the token, and its transaction from the log."""
        tx_hash = None
        try:
            logs = self.contract.events.RequestMinted().get_logs(
                argument_filters={"requestId": key}, from_block=self.logs_from_block)
            if logs:
                tx_hash = logs[0]["transactionHash"].to_0x_hex()
        except (*_NODE_ERRORS, ValueError) as exc:
            log.warning("token %d exists, but its mint transaction was not found: %s",
                        token_id, exc)
        log.info("request %s was minted before as token %d (%s)", key.hex()[:12], token_id,
                 tx_hash)
        return MintResult(token_id, tx_hash, self.address, self.chain_id, already_minted=True)
