"""Mint requests through the relay: stored and acked first, then exactly one token on a real
chain, the result published to the device; pending requests survive restarts — including a
relay process killed (-9) with its mint transaction still in the mempool (anvil: a chain in
its own process, so it outlives the relay it serves)."""

from __future__ import annotations

import json
import logging
import time

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from common.config import load_config
from relay.chain import MintError, connect, deploy
from relay.chain.anvil import anvil_binary, start_anvil
from relay.chain.minter import Minter
from relay.fleetsim import RelayProcess, SimDevice, mint_request, relay_config_toml
from relay.service import RelayService
from relay.store import open_store
from wire import protocol


@pytest.fixture(scope="module")
def w3():
    return Web3(EthereumTesterProvider())


@pytest.fixture
def minter(w3):
    """A fresh contract and a funded signer that holds its minter role."""
    signer = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": signer.address,
                             "value": 10**21})
    return Minter(w3, deploy(w3, signer), signer)


def _config(broker, tmp_path, chain: dict | None = None):
    path = tmp_path / "relay.toml"
    path.write_text(relay_config_toml(
        host=broker.host, port=broker.port, ca_file=broker.certs.ca,
        password_file=broker.password_file_for("relay", tmp_path),
        store_url=str(tmp_path / "relay.db"), chain=chain))
    return path


@pytest.fixture
def relay_settings(broker, tmp_path):
    return load_config(_config(broker, tmp_path)).relay


@pytest.fixture
def kitchen(broker):
    broker.add_user("kitchen")
    device = SimDevice(broker.host, broker.port, "kitchen", broker.passwords["kitchen"],
                       ca_file=broker.certs.ca)
    yield device
    device.close()


@pytest.fixture
def relay(relay_settings):
    running: list[RelayService] = []

    def start(minter_factory=None, instance: str = "m1") -> RelayService:
        service = RelayService(relay_settings, instance=instance,
                               minter_factory=minter_factory).start()
        running.append(service)
        assert service.consumer.subscribed.wait(10)
        return service

    yield start
    for service in running:
        service.stop()


def test_a_request_is_acked_then_minted_once_and_asking_again_gets_the_same_token(
        relay, kitchen, minter, w3, relay_settings):
    relay(lambda: minter)
    wallet = w3.eth.accounts[2]
    request = mint_request("kitchen", wallet=wallet)
    kitchen.publish(protocol.MINT_REQUEST, request)
    ack = kitchen.wait_acks([request.id])[request.id]
    assert (ack.ok, ack.duplicate) == (True, False)
    result = kitchen.wait_result(request.id)
    assert result is not None and result.ok, result
    assert minter.contract.functions.ownerOf(int(result.token_id)).call() == wallet
    assert (result.contract, result.chain_id) == (minter.address, w3.eth.chain_id)
    assert w3.eth.get_transaction_receipt(result.tx_hash)["status"] == 1

    kitchen.results.clear()
    kitchen.acks.clear()
    kitchen.publish(protocol.MINT_REQUEST, request)  # the device missed the result
    assert kitchen.wait_acks([request.id])[request.id].duplicate
    again = kitchen.wait_result(request.id)
    assert (again.token_id, again.tx_hash) == (result.token_id, result.tx_hash)
    assert minter.contract.functions.totalMinted().call() == 1
    row = open_store(relay_settings.store_url).mint("kitchen", request.id)
    assert (row.status, row.token_id, row.attempts) == ("minted", result.token_id, 1)


def test_a_request_the_minter_refuses_for_good_fails_once_with_a_readable_error(
        relay, kitchen, minter):
    relay(lambda: minter)
    bad = mint_request("kitchen", wallet="0x" + "aB" * 20)  # a mistyped EIP-55 checksum
    kitchen.publish(protocol.MINT_REQUEST, bad)
    result = kitchen.wait_result(bad.id)
    assert result is not None and not result.ok
    assert "checksum" in result.error and result.token_id is None
    assert minter.contract.functions.totalMinted().call() == 0


def test_a_transient_chain_failure_is_retried_until_the_token_is_minted(relay, kitchen, minter,
                                                                        w3):
    class FlakyNode:
        """The real minter behind a node that fails the first call (as a timeout would)."""

        calls = 0

        def mint(self, request):
            self.calls += 1
            if self.calls == 1:
                raise MintError("the chain node failed (timeout); retrying is safe",
                                retryable=True)
            return minter.mint(request)

    flaky = FlakyNode()
    relay(lambda: flaky)
    request = mint_request("kitchen", wallet=w3.eth.accounts[3])
    kitchen.publish(protocol.MINT_REQUEST, request)
    result = kitchen.wait_result(request.id, timeout=15)
    assert result is not None and result.ok and flaky.calls == 2
    assert minter.contract.functions.balanceOf(w3.eth.accounts[3]).call() == 1


def test_without_chain_settings_requests_wait_pending_until_minting_is_on(
        relay, kitchen, minter, w3, relay_settings, caplog):
    caplog.set_level(logging.INFO, logger="relay")
    off = relay(instance="m1")  # [relay.chain] has no key_file / contract: minting is off
    request = mint_request("kitchen", wallet=w3.eth.accounts[4])
    kitchen.publish(protocol.MINT_REQUEST, request)
    assert kitchen.wait_acks([request.id])[request.id].ok  # stored and acked all the same
    deadline = time.monotonic() + 10
    while not any("minting is off" in m for m in caplog.messages):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    line = next(m for m in caplog.messages if "minting is off" in m)
    assert "relay.chain.key_file" in line and "stay pending" in line
    assert kitchen.wait_result(request.id, timeout=0.5) is None
    off.stop()
    assert open_store(relay_settings.store_url).mint("kitchen", request.id).status == "pending"

    relay(lambda: minter, instance="m2")  # configured now: the pending request is resumed
    result = kitchen.wait_result(request.id)
    assert result is not None and result.ok
    assert minter.contract.functions.balanceOf(w3.eth.accounts[4]).call() == 1


@pytest.mark.slow
@pytest.mark.skipif(anvil_binary() is None, reason="anvil is not installed: `npm ci` installs "
                    "@foundry-rs/anvil")
def test_a_relay_killed_mid_mint_ends_with_exactly_one_token(broker, kitchen, tmp_path):
    with start_anvil(tmp_path / "anvil") as anvil:
        signer = Account.from_key(anvil.private_keys[0])
        chain = {"rpc_url": anvil.url, "chain_id": anvil.chain_id}
        w3 = connect(load_config(_config(broker, tmp_path, chain)).relay.chain)
        address = deploy(w3, signer)
        key = tmp_path / "minter.key"
        key.write_text(anvil.private_keys[0] + "\n")
        key.chmod(0o600)
        config = _config(broker, tmp_path, {**chain, "key_file": str(key),
                                            "contract_address": address})
        contract = Minter(w3, address, signer).contract
        wallet = Account.from_key(anvil.private_keys[1]).address
        relay = RelayProcess(config, "crashy", tmp_path / "relay.log").start()
        try:
            w3.provider.make_request("evm_setAutomine", [False])
            sent = w3.eth.get_transaction_count(signer.address)
            request = mint_request("kitchen", wallet=wallet)
            kitchen.publish(protocol.MINT_REQUEST, request)
            assert kitchen.wait_acks([request.id])[request.id].ok
            _wait_pending(w3, signer.address, sent + 1)  # its transaction is in the mempool
            relay.kill()  # -9, waiting for the receipt

            store = open_store(load_config(config).relay.store_url)
            assert store.mint("kitchen", request.id).status == "pending"
            relay.start()  # resumes the pending request; cannot see a token yet: sends again
            _wait_pending(w3, signer.address, sent + 2)
            w3.provider.make_request("evm_mine", [])  # both mined: the second one reverts
            result = kitchen.wait_result(request.id, timeout=30)
        finally:
            w3.provider.make_request("evm_setAutomine", [True])
            code = relay.stop()
        assert result is not None and result.ok, relay.log()[-3000:]
        assert code == 0
        assert contract.functions.totalMinted().call() == 1
        assert contract.functions.balanceOf(wallet).call() == 1
        assert contract.functions.ownerOf(int(result.token_id)).call() == wallet
        row = store.mint("kitchen", request.id)
        assert (row.status, row.token_id, row.attempts) == ("minted", result.token_id, 2)
        listed = json.loads(_cli(config, "mints", "--json"))
        assert [(m["id"], m["status"]) for m in listed] == [(request.id, "minted")]


def _wait_pending(w3: Web3, address: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while w3.eth.get_transaction_count(address, "pending") < count:
        assert time.monotonic() < deadline, "the relay sent no mint transaction"
        time.sleep(0.05)


def _cli(config, *args: str) -> str:
    from click.testing import CliRunner

    from device.cli import main

    result = CliRunner().invoke(main, ["--config", str(config), "relay", *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout
