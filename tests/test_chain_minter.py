# ruff: noqa: F811 - pytest fixtures are imported from chain_support by name
"""The relay's minter on a real EVM in process (eth-tester): exactly one token per request,
whatever is retried, crashed or sent at once from many threads."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest
from chain_support import funded, sent_count, signer, w3  # noqa: F401 - fixtures
from eth_account import Account

from common.config.models import ChainSettings
from relay.chain import (
    BadMintRequest,
    ChainConfigError,
    ChainError,
    Minter,
    MintError,
    connect,
    decode_token_uri,
    deploy,
    minter_from_settings,
    request_id_bytes,
)
from relay.chain.config import load_key
from wire.protocol import MintRequest
from wire.protocol import MintResult as MintResultMessage

COMMITMENT = "5f" * 32
GAS_LIMIT = 2_000_000  # well above a mint's ~0.7 M


class Crash(BaseException):
    """The relay process dying: nothing in the minter may catch it."""


@pytest.fixture
def address(w3, signer):
    """A fresh contract per test, deployed by (and minting through) ``signer``."""
    return deploy(w3, signer)


@pytest.fixture
def minter(w3, address, signer):
    return Minter(w3, address, signer)


def request(n: int | str = 1, *, wallet: str, device: str = "kitchen",
            achievement: str = "streak_7") -> MintRequest:
    return MintRequest(id=f"mint-{n}", device_id=device, achievement=achievement,
                       day=date(2025, 11, 20), commitment=COMMITMENT, wallet=wallet)


def total(minter: Minter) -> int:
    return minter.contract.functions.totalMinted().call()


def test_a_mint_gives_the_wallet_a_token_and_a_result_the_device_can_read(w3, minter):
    wallet = w3.eth.accounts[2]
    result = minter.mint(request(wallet=wallet))
    assert result.token_id == 1 and not result.already_minted
    assert result.contract == minter.address and result.chain_id == w3.eth.chain_id
    receipt = w3.eth.get_transaction_receipt(result.tx_hash)
    assert receipt.status == 1 and receipt.to == minter.address
    assert minter.contract.functions.ownerOf(1).call() == wallet
    message = result.to_message("mint-1")
    assert isinstance(message, MintResultMessage)
    assert message.ok and message.token_id == "1" and message.tx_hash == result.tx_hash


def test_the_same_request_twice_mints_once_and_sends_nothing_the_second_time(w3, minter,
                                                                              signer):
    wallet = w3.eth.accounts[2]
    first = minter.mint(request(7, wallet=wallet))
    sent = sent_count(w3, signer)
    again = minter.mint(request(7, wallet=wallet))
    assert again.token_id == first.token_id and again.tx_hash == first.tx_hash
    assert again.already_minted
    assert sent_count(w3, signer) == sent  # no new transaction
    assert total(minter) == 1
    # the same message id from another device is another request
    other = minter.mint(request(7, wallet=wallet, device="hallway"))
    assert other.token_id == 2 and not other.already_minted


def test_concurrent_mints_use_distinct_nonces_and_all_succeed(w3, address, signer):
    minter = Minter(w3, address, signer, gas_limit=GAS_LIMIT)  # fixed limit: no slow estimate
    wallet = w3.eth.accounts[3]
    start_nonce = sent_count(w3, signer)
    ids = [f"t{i}" for i in range(8)] + ["dup", "dup", "dup"]
    results: dict[int, object] = {}
    barrier = threading.Barrier(len(ids))

    def run(slot: int, request_id: str) -> None:
        barrier.wait()
        try:
            results[slot] = minter.mint(request(request_id, wallet=wallet))
        except Exception as exc:  # surfaced by the assertions below
            results[slot] = exc

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not isinstance(r, Exception) for r in results.values()), results
    distinct = {r.token_id for slot, r in results.items() if ids[slot] != "dup"}
    dups = [r for slot, r in results.items() if ids[slot] == "dup"]
    assert len(distinct) == 8 and len({r.token_id for r in dups}) == 1
    assert sum(not r.already_minted for r in dups) == 1
    assert total(minter) == 9
    nonces = sorted(w3.eth.get_transaction(r.tx_hash)["nonce"]
                    for r in {r.tx_hash: r for r in results.values()}.values())
    assert nonces == list(range(start_nonce, start_nonce + 9))


def test_a_crash_between_send_and_receipt_then_a_retry_yields_exactly_one_token(
        w3, address, signer, monkeypatch):
    wallet = w3.eth.accounts[4]
    dying = Minter(w3, address, signer)

    def crash(*args, **kwargs):
        raise Crash("relay killed while waiting for the receipt")

    monkeypatch.setattr(w3.eth, "get_transaction_receipt", crash)
    with pytest.raises(Crash):
        dying.mint(request(42, wallet=wallet))
    monkeypatch.undo()
    sent = sent_count(w3, signer)
    assert sent == 2  # deploy + the mint that was sent before the crash

    restarted = Minter(w3, address, signer)  # a new process: no memory of the first send
    result = restarted.mint(request(42, wallet=wallet))
    assert result.already_minted and result.token_id == 1
    assert w3.eth.get_transaction(result.tx_hash)["nonce"] == 1
    assert sent_count(w3, signer) == sent
    assert total(restarted) == 1
    assert restarted.contract.functions.balanceOf(wallet).call() == 1


def test_a_stale_nonce_from_another_sender_is_re_read_and_the_mint_goes_through(
        w3, minter, signer):
    wallet = w3.eth.accounts[2]
    minter.mint(request(1, wallet=wallet))  # the minter now counts nonces itself
    tx = {"to": wallet, "value": 1, "gas": 21000, "nonce": sent_count(w3, signer),
          "chainId": w3.eth.chain_id, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)  # same key, elsewhere
    result = minter.mint(request(2, wallet=wallet))
    assert result.token_id == 2 and total(minter) == 2


@pytest.mark.parametrize("gas_limit", [None, GAS_LIMIT], ids=["estimated", "fixed-gas"])
def test_a_signer_without_the_minter_role_is_refused_with_the_fix(w3, address, gas_limit):
    outsider_key = funded(w3)
    outsider = Minter(w3, address, outsider_key, gas_limit=gas_limit)
    with pytest.raises(ChainConfigError, match="lacks MINTER_ROLE"):
        outsider.check()
    with pytest.raises(MintError, match="lacks MINTER_ROLE") as refused:
        outsider.mint(request(wallet=w3.eth.accounts[2]))
    assert refused.value.retryable is False
    assert total(outsider) == 0 and sent_count(w3, outsider_key) == 0


def test_a_wallet_that_cannot_hold_tokens_gets_a_final_error_and_nothing_is_minted(
        w3, minter):
    # a contract without onERC721Received (here: the token contract itself)
    with pytest.raises(MintError, match="ERC721InvalidReceiver") as refused:
        minter.mint(request(wallet=minter.address))
    assert refused.value.retryable is False and total(minter) == 0


def test_metadata_decodes_and_holds_nothing_personal(w3, minter):
    wallet = w3.eth.accounts[5]
    result = minter.mint(request(9, wallet=wallet, device="alices-pi",
                                 achievement="resonance_10min"))
    uri = minter.contract.functions.tokenURI(result.token_id).call()
    assert uri.startswith("data:application/json;base64,")
    meta = decode_token_uri(uri)
    assert meta["name"].startswith("Breathe: 10 minutes of resonance breathing")
    assert {"trait_type": "Achievement", "value": "resonance_10min"} in meta["attributes"]
    assert {"trait_type": "Day", "value": "2025-11-20"} in meta["attributes"]
    assert meta["commitment"] == COMMITMENT
    assert set(meta) == {"name", "description", "attributes", "commitment", "commitment_scheme"}
    # what went on chain: the call's arguments and every log of the transaction
    tx = w3.eth.get_transaction(result.tx_hash)
    _, args = minter.contract.decode_function_input(tx["input"])
    assert args["to"] == wallet
    assert args["requestId"] == request_id_bytes("mint-9", device_id="alices-pi")
    logs = w3.eth.get_transaction_receipt(result.tx_hash)["logs"]
    for blob in (uri, meta_text(meta), tx["input"].hex(), *(log["data"].hex() for log in logs)):
        assert "alices-pi" not in blob and b"alices-pi".hex() not in blob
        assert "mint-9" not in blob and b"mint-9".hex() not in blob
    for blob in (uri, meta_text(meta)):
        assert wallet[2:].lower() not in blob.lower()


def meta_text(meta: dict) -> str:
    import json

    return json.dumps(meta)


def test_bad_requests_are_refused_before_anything_is_sent(w3, minter, signer):
    good = request(wallet=w3.eth.accounts[2])
    wrong_checksum = "0x" + good.wallet[2:].swapcase()  # mixed case, checksum broken
    sent = sent_count(w3, signer)
    for bad, message in (
        (good.model_copy(update={"wallet": wrong_checksum}), "checksum"),
        (good.model_copy(update={"wallet": "0x" + "0" * 40}), "zero address"),
        (good.model_copy(update={"commitment": "AB" * 32}), "commitment"),
    ):
        with pytest.raises(BadMintRequest, match=message) as refused:
            minter.mint(bad)
        assert refused.value.retryable is False
    lower = minter.mint(good.model_copy(update={"wallet": good.wallet.lower()}))
    assert minter.contract.functions.ownerOf(lower.token_id).call() == good.wallet
    assert sent_count(w3, signer) == sent + 1


def test_request_ids_are_stable_32_bytes_and_scoped_by_device():
    one = request_id_bytes("abc", device_id="kitchen")
    assert len(one) == 32 and one == request_id_bytes("abc", device_id="kitchen")
    assert one != request_id_bytes("abc", device_id="hallway")
    assert one != request_id_bytes("abd", device_id="kitchen")
    # no ambiguity from the separator: ("a-b", "c") and ("a", "b-c") differ
    assert request_id_bytes("c", device_id="a-b") != request_id_bytes("b-c", device_id="a")
    with pytest.raises(BadMintRequest):
        request_id_bytes("", device_id="kitchen")


def test_settings_without_key_or_contract_say_minting_is_off(tmp_path, w3):
    with pytest.raises(ChainConfigError, match="key_file: empty"):
        minter_from_settings(ChainSettings(), w3=w3)
    key = tmp_path / "minter.key"
    key.write_text(Account.create().key.hex() + "\n")
    with pytest.raises(ChainConfigError, match="contract_address: empty"):
        minter_from_settings(ChainSettings(key_file=key), w3=w3)


def test_settings_for_another_chain_or_a_missing_contract_are_refused(tmp_path, w3, address,
                                                                      signer):
    key = tmp_path / "minter.key"
    key.write_text(signer.key.hex())
    settings = ChainSettings(key_file=key, contract_address=address, chain_id=31337)
    with pytest.raises(ChainConfigError, match="31337 configured, but the node reports"):
        minter_from_settings(settings, w3=w3)
    unchecked = minter_from_settings(settings, w3=w3, check=False)
    assert unchecked.signer == signer.address
    empty = "0x" + "12" * 20
    with pytest.raises(ChainConfigError, match="no contract at"):
        Minter(w3, empty, signer).check()


def test_a_key_file_that_is_not_a_key_is_refused_without_echoing_it(tmp_path):
    key = tmp_path / "minter.key"
    key.write_text("not a key but a secret-looking-value\n")
    with pytest.raises(ChainConfigError) as refused:
        load_key(key)
    assert "secret-looking-value" not in str(refused.value)
    assert "64 hex digits" in str(refused.value)
    with pytest.raises(ChainConfigError, match="cannot read"):
        load_key(Path(tmp_path / "missing.key"))


def test_an_unreachable_node_gives_a_retryable_error(w3, signer):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    offline = connect(ChainSettings(rpc_url=f"http://127.0.0.1:{port}"), timeout=2)
    minter = Minter(offline, "0x" + "12" * 20, signer)
    with pytest.raises(MintError, match="the chain node failed") as failed:
        minter.mint(request(wallet=w3.eth.accounts[2]))
    assert failed.value.retryable is True
    with pytest.raises(ChainError, match="cannot check"):
        minter.check()
    with pytest.raises(ValueError, match="rpc_url"):  # web3 8's websocket provider is async
        ChainSettings(rpc_url="ws://127.0.0.1:8546")
