"""Tokens on an EVM chain: the minter the relay calls, deployment, metadata.

The relay builds one :class:`Minter` (``minter_from_settings(settings.relay.chain)``) and calls
``minter.mint(request)`` for each ``mint/request`` (achievements) and
``minter.mint_pattern(request, pattern, category)`` for each ``pattern/mint/request``; both
share one signer and one exactly-once path, see :mod:`relay.chain.minter`.
"""

from relay.chain.config import connect, load_key, minter_from_settings, patterns_address
from relay.chain.contract import (
    CONTRACT_NAME,
    PATTERNS_CONTRACT_NAME,
    bind,
    deploy,
    deploy_patterns,
    load_artifact,
)
from relay.chain.errors import (
    BadMintRequest,
    ChainConfigError,
    ChainError,
    MintError,
    PatternAlreadyMinted,
)
from relay.chain.metadata import (
    decode_token_uri,
    pattern_metadata,
    pattern_token_uri,
    token_metadata,
    token_uri,
)
from relay.chain.minter import Minter, MintResult
from relay.chain.request import (
    check_pattern_request,
    check_request,
    checksum_wallet,
    request_id_bytes,
)

__all__ = [
    "CONTRACT_NAME", "PATTERNS_CONTRACT_NAME", "BadMintRequest", "ChainConfigError",
    "ChainError", "MintError", "MintResult", "Minter", "PatternAlreadyMinted", "bind",
    "check_pattern_request", "check_request", "checksum_wallet", "connect", "decode_token_uri",
    "deploy", "deploy_patterns", "load_artifact", "load_key", "minter_from_settings",
    "pattern_metadata", "pattern_token_uri", "patterns_address", "request_id_bytes",
    "token_metadata", "token_uri",
]
