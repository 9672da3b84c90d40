"""Achievement tokens on an EVM chain: the minter the relay calls, deployment, metadata.

The relay builds one :class:`Minter` (``minter_from_settings(settings.relay.chain)``) and calls
``minter.mint(request)`` for each ``mint/request``; see :mod:`relay.chain.minter`.
"""

from relay.chain.config import connect, load_key, minter_from_settings
from relay.chain.contract import CONTRACT_NAME, bind, deploy, load_artifact
from relay.chain.errors import BadMintRequest, ChainConfigError, ChainError, MintError
from relay.chain.metadata import decode_token_uri, token_metadata, token_uri
from relay.chain.minter import Minter, MintResult
from relay.chain.request import check_request, checksum_wallet, request_id_bytes

__all__ = [
    "CONTRACT_NAME", "BadMintRequest", "ChainConfigError", "ChainError", "MintError",
    "MintResult", "Minter", "bind", "check_request", "checksum_wallet", "connect",
    "decode_token_uri", "deploy", "load_artifact", "load_key", "minter_from_settings",
    "request_id_bytes", "token_metadata", "token_uri",
]
