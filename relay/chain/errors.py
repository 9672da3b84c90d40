"""Errors the minter raises, each saying whether retrying the same request can help.

The relay consumer acts on :attr:`MintError.retryable`: a retryable failure leaves the request
to be delivered again (minting is idempotent by request id, so a retry never mints twice); a
final one is answered with an error on ``mint/result``.
"""

from __future__ import annotations

from common.errors import BadInput, BreatheError, ConfigError


class ChainError(BreatheError, RuntimeError):
    """Root of the chain errors (also a RuntimeError for callers that know only builtins)."""

    retryable = True


class ChainConfigError(ChainError, ConfigError):
    """``[relay.chain]`` cannot be used: no key, no contract, wrong chain, signer not a minter."""

    retryable = False


class BadMintRequest(ChainError, BadInput):
    """The request itself is invalid (wallet checksum, commitment); sending it again won't help."""

    retryable = False


class MintError(ChainError):
    """Minting did not complete: the node was unreachable, the receipt did not come, or the
    contract refused. ``retryable`` says whether the same request may succeed later."""

    def __init__(self, message: str, *, retryable: bool, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.tx_hash = tx_hash


class PatternAlreadyMinted(MintError):
    """The pattern's content hash has an original already (minted for any device): a copy is
    never minted, so this is final. ``token_id``: the original's token on ``contract``."""

    def __init__(self, content_hash: str, token_id: int, contract: str, *,
                 where: str = "pattern mint", tx_hash: str | None = None) -> None:
        super().__init__(
            f"{where}: this pattern is already minted as an original (token {token_id} on "
            f"{contract}, content hash {content_hash}); a pattern with the same phases cannot "
            "be minted again", retryable=False, tx_hash=tx_hash)
        self.content_hash = content_hash
        self.token_id = token_id
        self.contract = contract
