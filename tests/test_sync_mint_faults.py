"""Mint results that always arrive: the real device client (device/sync/client.py), the real
relay (relay/service.py, or ``breathe relay run`` as its own process where it is killed -9), a
real chain (eth-tester in process; anvil in its own process when the relay dies mid-mint) and
the real broker. Whatever dies, the device's Mint state ends as the chain's: minted, with the
token the chain holds, exactly one token, nothing pending anywhere."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from relay_support import write_relay_config
from sync_client_support import quick_client
from test_sync_support import device_settings, wait_until
from web3 import EthereumTesterProvider, Web3

from common.config import load_config
from common.config.models import ChainSettings
from device.sharing import mint
from device.store import db_path_for, open_db, outbox_repo
from device.store.achievements_repo import NewAchievement, store_achievements
from device.store.profiles_repo import create_profile
from device.store.sessions_repo import create_session, finish_session
from relay.chain import connect, deploy
from relay.chain.anvil import anvil_binary, start_anvil
from relay.chain.minter import Minter
from relay.fleetsim import RelayProcess, relay_config_toml
from relay.service import RelayService
from relay.store import open_store

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
EARNED = datetime.now(UTC).replace(microsecond=0)
QUICK = {"resend_s": 0.5, "max_resend_s": 1.0}  # the device asks again every second at most


@pytest.fixture(scope="module")
def w3():
    return Web3(EthereumTesterProvider())


@pytest.fixture
def minter(w3) -> Minter:
    signer = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": signer.address,
                             "value": 10**21})
    return Minter(w3, deploy(w3, signer), signer)


def press_mint(db_path: Path, wallet: str = WALLET) -> str:
    """An earned achievement, and the owner pressing Mint on it; the request id."""
    db = open_db(db_path)
    try:
        create_profile(db, "Ada", profile_id="ada", wallet_address=wallet)
        session = create_session(db, "box", profile="ada")
        finish_session(db, session.id, status="completed", duration_s=600.0,
                       metrics={"adherence": 0.9}, now=EARNED)
        (earned,) = store_achievements(db, "ada", [
            NewAchievement("first_session", EARNED, session.id, mintable=True)])
        return mint.request_mint(db, earned.id, device_id="kitchen", wallet=wallet).id
    finally:
        db.close()


def device_view(db_path: Path, request_id: str) -> tuple[mint.MintRequestRecord, int]:
    """The device's record of the request, and its outbox depth."""
    db = open_db(db_path)
    try:
        record = mint.get_request(db, request_id)
        assert record is not None
        return record, outbox_repo.count(db)
    finally:
        db.close()


def status_is(db_path: Path, request_id: str, status: str) -> bool:
    return device_view(db_path, request_id)[0].status == status


def result_reached(broker) -> bool:
    """The broker's log shows the relay's mint/result arriving (not just a subscription)."""
    return any("Received PUBLISH from breathe-relay" in line and "mint/result" in line
               for line in broker.log_tail(400).splitlines())


class Gated:
    """The real minter, held at the door until ``go`` is set (to choose when it mints)."""

    def __init__(self, minter: Minter) -> None:
        self.minter = minter
        self.go = threading.Event()

    def mint(self, request):
        assert self.go.wait(30), "the test never let the mint through"
        return self.minter.mint(request)


def assert_converged(db_path, request_id, store, token_count: int) -> None:
    """Device == relay == chain: minted with the same token, one token, nothing pending."""
    record, depth = device_view(db_path, request_id)
    row = store.mint("kitchen", request_id)
    assert (record.status, row.status) == ("minted", "minted")
    assert record.token_id == row.token_id and record.tx_hash == row.tx_hash
    assert token_count == 1
    assert depth == 0
    assert store.mints("pending") == []


def test_a_mint_result_lost_in_a_broker_crash_while_the_device_is_offline_still_arrives(
        broker, minter, tmp_path):
    settings = device_settings(broker, tmp_path)
    relay_settings = load_config(write_relay_config(broker, tmp_path)).relay
    db_path = db_path_for(tmp_path)
    request_id = press_mint(db_path)
    gated = Gated(minter)
    relay = RelayService(relay_settings, instance="f1", minter_factory=lambda: gated).start()
    device = quick_client(settings, db_path, **QUICK).start()
    try:
        wait_until(lambda: status_is(db_path, request_id, "sent"), what="the relay's ack")
        device.stop()  # offline: the broker keeps its session and queues for it
        gated.go.set()
        wait_until(lambda: result_reached(broker), what="the result published to the broker")
        broker.kill()  # before its next autosave: what it queued for the device is gone
        broker.start()
        assert status_is(db_path, request_id, "sent")
        device = quick_client(settings, db_path, **QUICK).start()
        wait_until(lambda: status_is(db_path, request_id, "minted"), timeout=30,
                   what="the device to learn its token")
    finally:
        device.stop()
        relay.stop()
    store = open_store(relay_settings.store_url)
    assert_converged(db_path, request_id, store, minter.contract.functions.totalMinted().call())
    assert device.followup.asked >= 1  # it asked; the relay answered from its store
    store.close()


def test_a_relay_that_died_between_recording_minted_and_publishing_is_asked_again(
        broker, minter, tmp_path):
    settings = device_settings(broker, tmp_path)
    relay_settings = load_config(write_relay_config(broker, tmp_path)).relay
    db_path = db_path_for(tmp_path)
    request_id = press_mint(db_path)
    first = RelayService(relay_settings, instance="f1", minter_factory=lambda: minter)
    never_sent: list = []
    first.minter.publish = lambda device_id, result: never_sent.append(result)  # died here
    first.start()
    device = quick_client(settings, db_path, **QUICK).start()
    second = None
    try:
        wait_until(lambda: never_sent, what="the token recorded (its result never sent)")
        first.stop()
        assert status_is(db_path, request_id, "sent")  # online, waiting for a result
        second = RelayService(relay_settings, instance="f2", minter_factory=lambda: minter)
        second.start()
        wait_until(lambda: status_is(db_path, request_id, "minted"), timeout=30,
                   what="the device to learn its token from the next relay")
    finally:
        device.stop()
        if second is not None:
            second.stop()
    store = open_store(relay_settings.store_url)
    assert_converged(db_path, request_id, store, minter.contract.functions.totalMinted().call())
    assert second.minter.counts["minted"] == 0  # answered from the store, not minted again
    store.close()


def _wait_pending(w3: Web3, address: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while w3.eth.get_transaction_count(address, "pending") < count:
        assert time.monotonic() < deadline, "the relay sent no mint transaction"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(anvil_binary() is None, reason="anvil is not installed: `npm ci` installs "
                    "@foundry-rs/anvil")
def test_a_relay_killed_with_the_token_on_chain_and_its_store_pending(broker, tmp_path):
    """kill -9 while the mint transaction waits to be mined; the block is mined while the
    relay is dead: the token is on chain, the store still says pending. The restarted relay
    finds the token instead of minting again, and the device gets it."""
    with start_anvil(tmp_path / "anvil") as anvil:
        signer = Account.from_key(anvil.private_keys[0])
        chain = {"rpc_url": anvil.url, "chain_id": anvil.chain_id}
        w3 = connect(ChainSettings(**chain))
        address = deploy(w3, signer)
        key = tmp_path / "minter.key"
        key.write_text(anvil.private_keys[0] + "\n")
        key.chmod(0o600)
        config = tmp_path / "relay-chain.toml"
        config.write_text(relay_config_toml(
            host=broker.host, port=broker.port, ca_file=broker.certs.ca,
            password_file=broker.password_file_for("relay", tmp_path),
            store_url=str(tmp_path / "relay.db"),
            chain={**chain, "key_file": str(key), "contract_address": address}))
        contract = Minter(w3, address, signer).contract
        wallet = Account.from_key(anvil.private_keys[1]).address
        db_path = db_path_for(tmp_path)
        request_id = press_mint(db_path, wallet)
        relay = RelayProcess(config, "crashy", tmp_path / "relay.log").start()
        device = quick_client(device_settings(broker, tmp_path), db_path, **QUICK)
        store = open_store(load_config(config).relay.store_url)
        try:
            w3.provider.make_request("evm_setAutomine", [False])
            sent = w3.eth.get_transaction_count(signer.address)
            device.start()
            wait_until(lambda: status_is(db_path, request_id, "sent"), what="the relay's ack")
            _wait_pending(w3, signer.address, sent + 1)  # its transaction is in the mempool
            relay.kill()  # -9, waiting for the receipt
            w3.provider.make_request("evm_mine", [])
            assert contract.functions.totalMinted().call() == 1  # on chain ...
            assert store.mint("kitchen", request_id).status == "pending"  # ... store pending
            relay.start()
            wait_until(lambda: status_is(db_path, request_id, "minted"), timeout=30,
                       what="the device to learn its token")
        finally:
            w3.provider.make_request("evm_setAutomine", [True])
            device.stop()
            code = relay.stop()
        assert code == 0, relay.log()[-3000:]
        assert_converged(db_path, request_id, store, contract.functions.totalMinted().call())
        assert w3.eth.get_transaction_count(signer.address) == sent + 1  # no second send
        record, _ = device_view(db_path, request_id)
        assert contract.functions.ownerOf(int(record.token_id)).call() == wallet
        store.close()
