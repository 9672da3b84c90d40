"""From ``[relay.chain]`` settings to a ready :class:`~relay.chain.minter.Minter`.

Reads the settings the config module defines (rpc_url, chain_id, key_file, contract_address,
and patterns_contract_address once ChainSettings has it); an empty key_file, or neither
contract, means minting is off, which is a config error here so the relay can say so once at
start and answer mint requests with it. With only one contract set, the other kind of minting
is off and the minter's method for it says so.
"""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from common.config.models import ChainSettings
from relay.chain.errors import ChainConfigError
from relay.chain.minter import Minter

log = logging.getLogger(__name__)
_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def load_key(path: Path) -> LocalAccount:
    """The signer from a key file: one line, 64 hex digits (0x optional). The key is never
    echoed in an error; a file others can read is allowed but warned about."""
    try:
        text = Path(path).read_text().strip()
        mode = Path(path).stat().st_mode
    except OSError as exc:
        raise ChainConfigError(f"relay.chain.key_file: cannot read {path} ({exc.strerror})"
                               ) from None
    if not _KEY.match(text):
        raise ChainConfigError(f"relay.chain.key_file: {path} does not hold a private key "
                               "(allowed: one line of 64 hex digits, 0x optional)")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("relay.chain.key_file: %s is readable by other users (mode %o); "
                    "chmod 600 it", path, stat.S_IMODE(mode))
    return Account.from_key(text)


def connect(settings: ChainSettings, *, timeout: float = 10.0) -> Web3:
    """A web3 client for ``rpc_url`` (HTTP; web3 8's WebSocket provider is async-only)."""
    if not settings.rpc_url.startswith(("http://", "https://")):
        raise ChainConfigError(f"relay.chain.rpc_url: {settings.rpc_url!r} is not supported by "
                               "the minter (allowed: the node's http:// or https:// endpoint)")
    # cache_allowed_requests: eth_chainId and other constant answers are asked once, not per call
    return Web3(HTTPProvider(settings.rpc_url, request_kwargs={"timeout": timeout},
                             cache_allowed_requests=True))


def patterns_address(settings: ChainSettings) -> str | None:
    """``relay.chain.patterns_contract_address``, or None (also while the field is unknown)."""
    return getattr(settings, "patterns_contract_address", None)


def minter_from_settings(settings: ChainSettings, *, w3: Web3 | None = None,
                         check: bool = True, **options: float) -> Minter:
    """The relay's minter. ``check``: verify chain id, contract and minter role now (raises
    :class:`ChainConfigError` naming the setting, or ChainError when the node is unreachable).
    ``options`` go to :class:`Minter` (receipt_timeout, max_poll_s, ...)."""
    if settings.key_file is None:
        raise ChainConfigError("relay.chain.key_file: empty, so minting is off; set it to a "
                               "file holding the minter's private key (scripts/chain-demo "
                               "writes one for a local chain)")
    patterns = patterns_address(settings)
    if settings.contract_address is None and patterns is None:
        raise ChainConfigError("relay.chain.contract_address: empty, so minting is off; deploy "
                               "the contracts (scripts/chain-demo) and set their addresses")
    minter = Minter(w3 or connect(settings), settings.contract_address,
                    load_key(settings.key_file), patterns_address=patterns, **options)
    if check:
        minter.check(expected_chain_id=settings.chain_id)
    return minter
