"""What a mint needs from a device's request, checked, and the request's on-chain id.

The relay hands the minter the wire model :class:`wire.protocol.MintRequest` (or anything
with the same fields, see :class:`MintRequestLike`). Nothing personal goes on chain: the wallet
receives the token, and the metadata holds the achievement, the day and a salted commitment.
A pattern mint (:class:`wire.protocol.PatternMintRequest` plus the catalog's pattern) is
checked by :func:`check_pattern_request`: the content hash must be the pattern's own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from eth_utils import is_checksum_address, to_checksum_address

from relay.chain.errors import BadMintRequest

if TYPE_CHECKING:
    from wire.patterns import Pattern

# Bumping these changes every request's on-chain id: never, once tokens exist on a chain.
_REQUEST_DOMAIN = b"breathe/mint-request/v1"
PATTERN_REQUEST_DOMAIN = b"breathe/pattern-mint-request/v1"
_WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")
_COMMITMENT = re.compile(r"^[0-9a-f]{64}$")
_KIND = re.compile(r"^[a-z0-9_]{1,64}$")


class MintRequestLike(Protocol):
    """The fields of ``wire.protocol.MintRequest`` the minter reads."""

    @property
    def id(self) -> str: ...  # the device's message id for this request
    @property
    def device_id(self) -> str: ...
    @property
    def achievement(self) -> str: ...
    @property
    def day(self) -> date: ...
    @property
    def commitment(self) -> str: ...
    @property
    def wallet(self) -> str: ...


@dataclass(frozen=True)
class CheckedMint:
    """A request reduced to what goes on chain, every field checked."""

    request_key: bytes  # the contract's bytes32 request id
    to: str  # EIP-55
    achievement: str
    day: date
    commitment: str  # 64 lowercase hex digits


class PatternMintRequestLike(Protocol):
    """The fields of ``wire.protocol.PatternMintRequest`` the minter reads."""

    @property
    def id(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def wallet(self) -> str: ...


@dataclass(frozen=True)
class CheckedPatternMint:
    """A pattern mint reduced to what goes on chain, every field checked."""

    request_key: bytes  # the contract's bytes32 request id (pattern domain)
    to: str  # EIP-55
    content_hash: str  # 64 lowercase hex digits, recomputed from ``pattern``
    pattern: Pattern
    category: str

    @property
    def content_key(self) -> bytes:
        """The contract's ``bytes32`` content hash."""
        return bytes.fromhex(self.content_hash)


def request_id_bytes(request_id: str, *, device_id: str,
                     domain: bytes = _REQUEST_DOMAIN) -> bytes:
    """The contract's ``bytes32`` request id: sha256 over a domain tag, the device and its id.

    Scoped by device because message ids are chosen by devices: without it one device could
    take another's request id and make the other's mint return its token instead. The same
    (device, id) always gives the same bytes, which is what makes retries exactly-once.
    """
    if not request_id or not device_id:
        raise BadMintRequest(f"mint request id {request_id!r} / device id {device_id!r}: both "
                             "must be non-empty")
    return hashlib.sha256(b"\x00".join(
        (domain, device_id.encode(), request_id.encode()))).digest()


def checksum_wallet(wallet: str) -> str:
    """The EIP-55 form of ``wallet``; a mixed-case address must already carry a valid checksum
    (that is how a mistyped address is caught before a token goes to it)."""
    if not isinstance(wallet, str) or not _WALLET.match(wallet):
        raise BadMintRequest(f"wallet {wallet!r}: not an address (allowed: 0x and 40 hex digits)")
    digits = wallet[2:]
    mixed = digits != digits.lower() and digits != digits.upper()
    if mixed and not is_checksum_address(wallet):
        raise BadMintRequest(f"wallet {wallet}: the EIP-55 checksum does not match (a typo?); "
                             f"check the address in Settings")
    checked = to_checksum_address(wallet)
    if int(checked, 16) == 0:
        raise BadMintRequest("wallet 0x000…0: the zero address cannot own a token")
    return checked


def check_request(request: MintRequestLike) -> CheckedMint:
    """Everything the mint needs, or :class:`BadMintRequest` naming the field and the value."""
    if not isinstance(request.achievement, str) or not _KIND.match(request.achievement):
        raise BadMintRequest(f"achievement {request.achievement!r}: allowed 1-64 of a-z, 0-9, _")
    if not isinstance(request.day, date) or isinstance(request.day, datetime):
        raise BadMintRequest(f"day {request.day!r}: expected a date (YYYY-MM-DD)")
    if not isinstance(request.commitment, str) or not _COMMITMENT.match(request.commitment):
        raise BadMintRequest(f"commitment {request.commitment!r}: allowed 64 lowercase hex digits "
                             "(a sha256)")
    return CheckedMint(
        request_key=request_id_bytes(request.id, device_id=request.device_id),
        to=checksum_wallet(request.wallet),
        achievement=request.achievement,
        day=request.day,
        commitment=request.commitment,
    )


def check_pattern_request(request: PatternMintRequestLike, pattern: Pattern,
                          category: str) -> CheckedPatternMint:
    """A pattern mint's fields checked; the content hash is recomputed from ``pattern`` (the
    catalog's copy) and must equal the request's, so nobody mints one pattern under another's
    hash. :class:`BadMintRequest` names the field and the value."""
    from wire.protocol import CATEGORIES, content_hash

    if category not in CATEGORIES:
        raise BadMintRequest(f"category {category!r}: allowed {', '.join(CATEGORIES)}")
    claimed = request.content_hash
    if not isinstance(claimed, str) or not _COMMITMENT.match(claimed):
        raise BadMintRequest(f"content_hash {claimed!r}: allowed 64 lowercase hex digits "
                             "(a sha256)")
    actual = content_hash(pattern)
    if claimed != actual:
        raise BadMintRequest(f"content_hash {claimed}: does not match the pattern's phases "
                             f"({pattern.label} hashes to {actual})")
    return CheckedPatternMint(
        request_key=request_id_bytes(request.id, device_id=request.device_id,
                                     domain=PATTERN_REQUEST_DOMAIN),
        to=checksum_wallet(request.wallet),
        content_hash=actual,
        pattern=pattern,
        category=category,
    )
