"""EIP-55 mixed-case checksums for the owner's wallet address.

The rule is EIP-55's: a letter is upper case when the matching nibble of the keccak-256 of the
lower-case hex address is 8 or more. Keccak comes from eth-hash (pycryptodome backend); eth-utils
has the same two functions but brings 20 MB of dependencies the device needs for nothing else.
"""

from __future__ import annotations

from eth_hash.auto import keccak


def to_checksum_address(address: str) -> str:
    """``0x`` + 40 hex digits in their EIP-55 case. ``address`` must be 40 hex digits (``0x``
    optional)."""
    digits = address.removeprefix("0x").removeprefix("0X").lower()
    if len(digits) != 40 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"not a 40-hex-digit address: {address!r}")
    nibbles = keccak(digits.encode("ascii")).hex()
    pairs = zip(digits, nibbles, strict=False)  # 40 digits, 64 nibbles: the first 40 count
    return "0x" + "".join(c.upper() if c.isalpha() and int(n, 16) >= 8 else c for c, n in pairs)


def is_checksum_address(address: str) -> bool:
    """True when ``address`` is ``0x`` + 40 hex digits in exactly their EIP-55 case."""
    try:
        return address.startswith("0x") and to_checksum_address(address) == address
    except ValueError:
        return False
