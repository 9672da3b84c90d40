"""Shared pieces of the tests that mint on a real EVM in process (eth-tester): the chain,
funded signers and the signer's transaction count.

Imported by tests/test_chain_*.py and tests/test_relay_catalog.py (pytest finds the fixtures by
name; ``w3`` is module-scoped, so each importing module gets a chain of its own).
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3


@pytest.fixture(scope="module")
def w3() -> Web3:
    return Web3(EthereumTesterProvider())


def funded(w3: Web3) -> LocalAccount:
    """A new account holding 1000 ether from the chain's first (unlocked) account."""
    account = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address, "value": 10**21})
    return account


@pytest.fixture
def signer(w3: Web3) -> LocalAccount:
    return funded(w3)


def sent_count(w3: Web3, account: LocalAccount) -> int:
    """How many transactions ``account`` has sent (its next nonce)."""
    return w3.eth.get_transaction_count(account.address)
