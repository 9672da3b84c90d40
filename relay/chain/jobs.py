"""A request turned into one call of a contract's ``mint``: the only part that differs between
token kinds. The :class:`~relay.chain.minter.Minter` sends every job the same way (one signer,
on-chain check first, receipt, retry-safe); a job only says which contract, which request id,
which arguments, and for a pattern which content hash must not have an original yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from web3.contract import Contract

from relay.chain.contract import CONTRACT_NAME, PATTERNS_CONTRACT_NAME
from relay.chain.metadata import pattern_token_uri, token_uri
from relay.chain.request import (
    MintRequestLike,
    PatternMintRequestLike,
    check_pattern_request,
    check_request,
)

if TYPE_CHECKING:
    from wire.patterns import Pattern

# the setting that names each contract, for errors a person fixes in the config
SETTING = {CONTRACT_NAME: "relay.chain.contract_address",
           PATTERNS_CONTRACT_NAME: "relay.chain.patterns_contract_address"}


@dataclass(frozen=True)
class MintJob:
    """One mint, ready to send: which contract, its request id, the ``mint`` arguments."""

    contract: Contract
    kind: str  # the artefact's name, to read reverts with its ABI
    request_key: bytes
    args: tuple[Any, ...]
    where: str  # names the request in errors and logs
    content_key: bytes | None = None  # a pattern: the content hash it would be the original of

    @property
    def inflight_key(self) -> tuple[str, bytes]:
        return self.contract.address, self.request_key


def achievement_job(contract: Contract, request: MintRequestLike) -> MintJob:
    """``BreatheAchievements.mint(to, requestId, uri)`` for a checked ``mint/request``."""
    mint = check_request(request)
    return MintJob(contract, CONTRACT_NAME, mint.request_key,
                   (mint.to, mint.request_key, token_uri(mint)),
                   f"mint request {request.id!r} of device {request.device_id!r}")


def pattern_job(contract: Contract, request: PatternMintRequestLike, pattern: Pattern,
                category: str) -> MintJob:
    """``BreathePatterns.mint(to, requestId, contentHash, uri)`` for a checked
    ``pattern/mint/request`` and the catalog's copy of its pattern."""
    mint = check_pattern_request(request, pattern, category)
    return MintJob(contract, PATTERNS_CONTRACT_NAME, mint.request_key,
                   (mint.to, mint.request_key, mint.content_key, pattern_token_uri(mint)),
                   f"pattern mint request {request.id!r} of device {request.device_id!r}",
                   content_key=mint.content_key)
