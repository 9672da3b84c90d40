"""The committed build artefact, the contract binding, deployment, and readable reverts.

The artefact (``relay/contracts/build/<Name>.json``) is written by ``scripts/build-contract``;
the relay never compiles. Reverts come back as a custom-error selector plus arguments; this
module turns them into names and values using the ABI (eth-tester and JSON-RPC nodes report them
differently, both handled here).
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from relay.chain.errors import ChainConfigError, MintError

BUILD_DIR = Path(__file__).resolve().parent.parent / "contracts" / "build"
CONTRACT_NAME = "BreatheAchievements"
PATTERNS_CONTRACT_NAME = "BreathePatterns"


@cache
def load_artifact(name: str = CONTRACT_NAME) -> dict[str, Any]:
    """ABI, bytecode and provenance of a compiled contract (see scripts/build-contract)."""
    path = BUILD_DIR / f"{name}.json"
    try:
        artifact = json.loads(path.read_text())
    except FileNotFoundError:
        raise ChainConfigError(f"{path}: no build artefact; run scripts/build-contract") from None
    for key in ("abi", "bytecode"):
        if key not in artifact:
            raise ChainConfigError(f"{path}: no {key!r}; rebuild it with scripts/build-contract")
    return artifact


def bind(w3: Web3, address: str, name: str = CONTRACT_NAME) -> Contract:
    """The deployed contract at ``address`` with its ABI."""
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])


def deploy(w3: Web3, account: LocalAccount | str, *, admin: str | None = None,
           minter: str | None = None, timeout: float = 120.0,
           name: str = CONTRACT_NAME) -> str:
    """Deploy contract ``name`` (both take ``(admin, minter)``) and return its EIP-55 address.

    ``account`` pays and signs: a local key (any node), or the address of an account the node
    unlocks (eth-tester, anvil). It becomes admin and minter unless ``admin`` / ``minter`` say
    otherwise.
    """
    artifact = load_artifact(name)
    sender = account if isinstance(account, str) else account.address
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    constructor = factory.constructor(to_checksum_address(admin or sender),
                                      to_checksum_address(minter or sender))
    if isinstance(account, str):
        tx_hash = constructor.transact({"from": sender})
    else:
        tx = constructor.build_transaction({
            "from": sender, "nonce": w3.eth.get_transaction_count(sender, "pending"),
            "chainId": w3.eth.chain_id,
        })
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise MintError(f"deploying {name} failed (tx {tx_hash.to_0x_hex()}, status "
                        f"{receipt['status']})", retryable=False, tx_hash=tx_hash.to_0x_hex())
    return to_checksum_address(receipt["contractAddress"])


def deploy_patterns(w3: Web3, account: LocalAccount | str, **options: Any) -> str:
    """Deploy the pattern-token contract (:data:`PATTERNS_CONTRACT_NAME`); see :func:`deploy`."""
    return deploy(w3, account, name=PATTERNS_CONTRACT_NAME, **options)


@cache
def _errors_by_selector(name: str = CONTRACT_NAME) -> dict[bytes, dict[str, Any]]:
    return {function_abi_to_4byte_selector(e): e for e in load_artifact(name)["abi"]
            if e["type"] == "error"}


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert bytes of a failed call or estimate, from web3 (JSON-RPC) or eth-tester."""
    data = getattr(exc, "data", None)
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and re.fullmatch(r"0x[0-9a-fA-F]*", data):
        return bytes.fromhex(data[2:])
    # eth-tester: TransactionFailed("execution reverted: b'...'")
    match = re.search(r"(b'.*'|b\".*\")\s*$", str(exc.args[0]) if exc.args else "", re.S)
    if match:
        try:
            value = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, bytes) else None
    return None


def decode_revert(exc: BaseException, name: str = CONTRACT_NAME
                  ) -> tuple[str, dict[str, Any]] | None:
    """(error name, arguments) of a custom-error revert of contract ``name``, else None."""
    data = revert_data(exc)
    if not data or len(data) < 4:
        return None
    error = _errors_by_selector(name).get(data[:4])
    if error is None:
        return None
    types = [i["type"] for i in error["inputs"]]
    try:
        values = abi_decode(types, data[4:])
    except DecodingError:  # malformed data is simply not one of ours
        return None
    return error["name"], {
        i["name"]: to_checksum_address(v) if i["type"] == "address" else v
        for i, v in zip(error["inputs"], values, strict=True)
    }


def explain_revert(exc: BaseException, name: str = CONTRACT_NAME) -> str:
    """A sentence for logs and ``mint/result`` errors."""
    decoded = decode_revert(exc, name)
    if decoded is None:
        return f"the contract refused the mint ({exc})"
    error, args = decoded
    if error == "AccessControlUnauthorizedAccount":
        return (f"signer {args['account']} lacks MINTER_ROLE on the contract; an admin must "
                "call grantRole(MINTER_ROLE, signer)")
    shown = ", ".join(f"{k}={'0x' + v.hex() if isinstance(v, bytes) else v}"
                      for k, v in args.items())
    return f"the contract refused the mint: {error}({shown})"
