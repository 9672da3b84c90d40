"""The minter against a real node over HTTP: anvil from npm, configured as the relay would be."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
from eth_account import Account

from common.config.models import ChainSettings
from relay.chain import Minter, MintError, connect, deploy, minter_from_settings
from relay.chain.anvil import anvil_binary, start_anvil
from wire.protocol import MintRequest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(anvil_binary() is None, reason="anvil is not installed: `npm ci` "
                       "installs @foundry-rs/anvil (CI has it)"),
]


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    with start_anvil(tmp_path_factory.mktemp("anvil")) as node:
        yield node


@pytest.fixture(scope="module")
def chain(anvil, tmp_path_factory):
    """A deployed contract and the settings the relay would read for it."""
    deployer = Account.from_key(anvil.private_keys[0])
    settings = ChainSettings(rpc_url=anvil.url, chain_id=anvil.chain_id)
    w3 = connect(settings)
    address = deploy(w3, deployer)
    key = tmp_path_factory.mktemp("keys") / "minter.key"
    key.write_text(anvil.private_keys[0] + "\n")
    key.chmod(0o600)
    return settings.model_copy(update={"key_file": key, "contract_address": address}), w3


def request(n: str, wallet: str) -> MintRequest:
    return MintRequest(id=n, device_id="kitchen", achievement="first_session",
                       day=date(2025, 11, 21), commitment="0c" * 32, wallet=wallet)


def test_relay_settings_mint_once_per_request_and_in_parallel(anvil, chain):
    settings, w3 = chain
    minter = minter_from_settings(settings)  # checks chain, code and role
    wallet = Account.from_key(anvil.private_keys[1]).address
    first = minter.mint(request("a", wallet))
    assert first.chain_id == 31337 and not first.already_minted
    sent = w3.eth.get_transaction_count(minter.signer)
    again = minter.mint(request("a", wallet))
    assert (again.token_id, again.tx_hash, again.already_minted) == (
        first.token_id, first.tx_hash, True)
    assert w3.eth.get_transaction_count(minter.signer) == sent

    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(minter.mint(request(n, wallet))))
               for n in ("p1", "p2", "p3", "p4", "p5", "p6")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len({r.token_id for r in results}) == 6
    nonces = sorted(w3.eth.get_transaction(r.tx_hash)["nonce"] for r in results)
    assert nonces == list(range(sent, sent + 6))
    assert minter.contract.functions.balanceOf(wallet).call() == 7


def test_relay_killed_with_its_transaction_still_pending_yields_exactly_one_token(anvil, chain):
    """The hard crash: the first transaction is in the mempool, not mined, when the relay dies.
    The restarted relay cannot see the token yet, sends again; the chain keeps exactly one."""
    settings, w3 = chain
    wallet = Account.from_key(anvil.private_keys[2]).address
    account = Account.from_key(anvil.private_keys[0])
    minted_before = Minter(w3, settings.contract_address, account).contract.functions \
        .totalMinted().call()
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        dying = Minter(w3, settings.contract_address, account, receipt_timeout=0.3)
        with pytest.raises(MintError) as lost:
            dying.mint(request("crash", wallet))
        assert lost.value.retryable and lost.value.tx_hash
        first_tx = lost.value.tx_hash

        restarted = Minter(w3, settings.contract_address, account)
        outcome: dict[str, object] = {}
        retry = threading.Thread(target=lambda: outcome.update(r=restarted.mint(
            request("crash", wallet))))
        retry.start()
        deadline = time.monotonic() + 20
        latest = w3.eth.get_transaction_count(account.address)
        while w3.eth.get_transaction_count(account.address, "pending") < latest + 2:
            assert time.monotonic() < deadline, "the restarted minter sent nothing"
            time.sleep(0.02)
        w3.provider.make_request("evm_mine", [])
        retry.join(30)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    result = outcome["r"]
    assert result.already_minted and result.tx_hash == first_tx
    contract = restarted.contract
    assert contract.functions.totalMinted().call() == minted_before + 1
    assert contract.functions.balanceOf(wallet).call() == 1
    assert contract.functions.ownerOf(result.token_id).call() == wallet
    second = w3.eth.get_block("latest", full_transactions=True)["transactions"]
    statuses = sorted(w3.eth.get_transaction_receipt(tx["hash"])["status"] for tx in second)
    assert statuses == [0, 1]  # the retry's transaction was refused on chain
