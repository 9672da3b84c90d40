# ruff: noqa: F811 - pytest fixtures are imported from chain_support by name
"""Pattern tokens on a real EVM in process (eth-tester): one original per pattern, whoever asks;
exactly one token per request; metadata that holds the phases and nothing personal; one signer
(one nonce sequence) for achievements and patterns alike."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import date

import pytest
from chain_support import funded, sent_count, signer, w3  # noqa: F401 - fixtures
from eth_tester.exceptions import TransactionFailed

from common.config.models import ChainSettings
from relay.chain import (
    PATTERNS_CONTRACT_NAME,
    BadMintRequest,
    ChainConfigError,
    Minter,
    MintError,
    PatternAlreadyMinted,
    decode_token_uri,
    deploy,
    deploy_patterns,
    minter_from_settings,
)
from relay.chain.contract import decode_revert
from wire.patterns import Pattern
from wire.protocol import MintRequest, PatternMintRequest, content_hash

GAS_LIMIT = 2_000_000
RELAX = Pattern(name="Evening wind-down", description="Long exhale before sleep.",
                inhale=4.0, hold_in=7.0, exhale=8.0, hold_out=0.0)
# the same phases under another name: the same pattern, so not a second original
COPY = RELAX.model_copy(update={"name": "My own 4-7-8", "description": ""})
BOX = Pattern(name="Box", inhale=4.0, hold_in=4.0, exhale=4.0, hold_out=4.0)
HALVES = Pattern(name="Halves", inhale=5.5, exhale=5.25)


@pytest.fixture
def minter(w3, signer):
    """A fresh pattern contract (and achievement contract) per test, minting through ``signer``."""
    return Minter(w3, deploy(w3, signer), signer, patterns_address=deploy_patterns(w3, signer))


def mint_request(n: int | str, pattern: Pattern, *, wallet: str,
                 device: str = "kitchen") -> PatternMintRequest:
    return PatternMintRequest(id=f"pmint-{n}", device_id=device, listing_id=f"listing-{n}",
                              content_hash=content_hash(pattern), wallet=wallet)


def total(minter: Minter) -> int:
    return minter.patterns.functions.totalMinted().call()


def test_a_pattern_mints_as_an_original_for_the_wallet(w3, minter):
    wallet = w3.eth.accounts[2]
    result = minter.mint_pattern(mint_request(1, RELAX, wallet=wallet), RELAX, "sleep")
    assert result.token_id == 1 and not result.already_minted
    assert result.contract == minter.patterns_address != minter.address
    patterns = minter.patterns
    assert patterns.functions.ownerOf(1).call() == wallet
    assert patterns.functions.tokenOfContent(bytes.fromhex(content_hash(RELAX))).call() == 1
    assert minter.original_of(content_hash(RELAX)) == 1
    assert minter.original_of(content_hash(BOX)) == 0
    assert minter.contract.functions.totalMinted().call() == 0  # no achievement token
    message = result.to_message("pmint-1")
    assert message.ok and message.token_id == "1" and message.contract == minter.patterns_address


def test_the_same_request_twice_gives_one_token_and_sends_nothing_more(w3, minter, signer):
    wallet = w3.eth.accounts[2]
    first = minter.mint_pattern(mint_request(7, BOX, wallet=wallet), BOX, "focus")
    sent = sent_count(w3, signer)
    again = minter.mint_pattern(mint_request(7, BOX, wallet=wallet), BOX, "focus")
    assert (again.token_id, again.tx_hash, again.already_minted) == (
        first.token_id, first.tx_hash, True)
    assert sent_count(w3, signer) == sent and total(minter) == 1


def test_a_copy_from_another_device_is_refused_before_anything_is_sent(w3, minter, signer):
    minter.mint_pattern(mint_request(1, RELAX, wallet=w3.eth.accounts[2]), RELAX, "sleep")
    sent = sent_count(w3, signer)
    copy = mint_request(2, COPY, wallet=w3.eth.accounts[3], device="hallway")
    assert copy.content_hash == content_hash(RELAX)  # renaming does not make it new
    with pytest.raises(PatternAlreadyMinted, match="already minted as an original") as refused:
        minter.mint_pattern(copy, COPY, "stress")
    assert refused.value.retryable is False and refused.value.token_id == 1
    assert refused.value.contract == minter.patterns_address
    assert sent_count(w3, signer) == sent and total(minter) == 1
    assert minter.patterns.functions.balanceOf(w3.eth.accounts[3]).call() == 0
    # other phases are another pattern
    assert minter.mint_pattern(mint_request(3, BOX, wallet=w3.eth.accounts[3]), BOX,
                               "focus").token_id == 2


def test_the_contract_itself_refuses_a_second_original(w3, minter, signer):
    """Without the minter's pre-check (e.g. a relay that skips it): the chain still refuses."""
    minter.mint_pattern(mint_request(1, RELAX, wallet=w3.eth.accounts[2]), RELAX, "sleep")
    patterns, key = minter.patterns, bytes.fromhex(content_hash(RELAX))
    other_request = hashlib.sha256(b"another request").digest()
    call = patterns.functions.mint(w3.eth.accounts[3], other_request, key, "data:,")
    with pytest.raises(TransactionFailed) as refused:
        call.call({"from": signer.address})
    assert decode_revert(refused.value, PATTERNS_CONTRACT_NAME) == (
        "PatternAlreadyMinted", {"contentHash": key, "tokenId": 1})
    with pytest.raises(TransactionFailed) as zero:
        patterns.functions.mint(w3.eth.accounts[3], other_request, bytes(32), "data:,").call(
            {"from": signer.address})
    assert decode_revert(zero.value, PATTERNS_CONTRACT_NAME) == ("InvalidContentHash", {})


def test_two_relays_racing_for_one_pattern_yield_one_original_and_a_final_refusal(w3, signer):
    """Both pass the pre-check (neither transaction is mined yet); the chain orders them and
    the loser's minter reads the revert as 'already minted as an original'."""
    address, patterns_address = deploy(w3, signer), deploy_patterns(w3, signer)
    other_signer = funded(w3)
    contract = Minter(w3, address, signer, patterns_address=patterns_address).patterns
    role = contract.functions.MINTER_ROLE().call()
    tx = contract.functions.grantRole(role, other_signer.address).build_transaction(
        {"from": signer.address, "nonce": sent_count(w3, signer)})
    w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)
    relays = [Minter(w3, address, account, patterns_address=patterns_address,
                     gas_limit=GAS_LIMIT) for account in (signer, other_signer)]
    requests = [mint_request("a", RELAX, wallet=w3.eth.accounts[2], device="kitchen"),
                mint_request("b", COPY, wallet=w3.eth.accounts[3], device="hallway")]
    outcomes: dict[int, object] = {}

    def run(i: int) -> None:
        try:
            outcomes[i] = relays[i].mint_pattern(requests[i], (RELAX, COPY)[i], "sleep")
        except Exception as exc:  # asserted below
            outcomes[i] = exc

    tester = w3.provider.ethereum_tester
    tester.disable_auto_mine_transactions()
    try:
        threads = []
        for i in (0, 1):  # both sent before a block is mined
            threads.append(threading.Thread(target=run, args=(i,)))
            threads[-1].start()
            # watch the minter's own record of what it sent, not the chain: eth-tester is not
            # thread-safe, so this thread stays off it while the relays talk to it
            for _ in range(1000):
                if relays[i]._inflight or i in outcomes:
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail(f"relay {i} sent nothing")
        tester.mine_blocks(1)
    finally:
        tester.enable_auto_mine_transactions()
    for thread in threads:
        thread.join(30)
    # the block's order decides which one wins; exactly one does
    refused = [o for o in outcomes.values() if isinstance(o, PatternAlreadyMinted)]
    won = [o for o in outcomes.values() if not isinstance(o, Exception)]
    assert len(refused) == len(won) == 1, outcomes
    (winner,), (loser,) = won, refused
    assert winner.token_id == 1 and not winner.already_minted
    assert loser.retryable is False and loser.token_id == 1 and loser.tx_hash
    assert w3.eth.get_transaction_receipt(loser.tx_hash)["status"] == 0
    assert contract.functions.totalMinted().call() == 1


def test_metadata_holds_the_phases_and_nothing_personal(w3, minter):
    wallet = w3.eth.accounts[5]
    request = mint_request("9", HALVES, wallet=wallet, device="alices-pi")
    result = minter.mint_pattern(request, HALVES, "focus")
    uri = minter.patterns.functions.tokenURI(result.token_id).call()
    meta = decode_token_uri(uri)
    assert meta["name"] == "Breathe pattern: Halves"
    assert meta["phases"] == {"inhale": 5.5, "hold_in": 0, "exhale": 5.25, "hold_out": 0}
    assert meta["cycle_s"] == 10.75 and meta["category"] == "focus"
    assert meta["content_hash"] == content_hash(HALVES) == content_hash(
        Pattern(name="from the metadata", **meta["phases"]))
    assert {"trait_type": "Category", "value": "focus"} in meta["attributes"]
    assert "focus" in meta["description"]  # a description is made when the pattern has none
    assert set(meta) == {"name", "description", "attributes", "phases", "cycle_s", "category",
                         "content_hash", "content_hash_scheme"}
    tx = w3.eth.get_transaction(result.tx_hash)
    logs = w3.eth.get_transaction_receipt(result.tx_hash)["logs"]
    for blob in (uri, json.dumps(meta), tx["input"].hex(), *(log["data"].hex() for log in logs)):
        for secret in ("alices-pi", "pmint-9", "listing-9"):
            assert secret not in blob and secret.encode().hex() not in blob
    for blob in (uri, json.dumps(meta)):
        assert wallet[2:].lower() not in blob.lower()
    # the description the creator wrote is kept
    described = minter.mint_pattern(mint_request(10, RELAX, wallet=wallet), RELAX, "sleep")
    meta = decode_token_uri(minter.patterns.functions.tokenURI(described.token_id).call())
    assert meta["description"] == "Long exhale before sleep." and meta["cycle_s"] == 19


def test_a_signer_without_the_minter_role_is_refused_and_sends_nothing(w3, minter):
    outsider = funded(w3)
    stranger = Minter(w3, None, outsider, patterns_address=minter.patterns_address)
    with pytest.raises(ChainConfigError, match="lacks MINTER_ROLE on BreathePatterns"):
        stranger.check()
    with pytest.raises(MintError, match="lacks MINTER_ROLE") as refused:
        stranger.mint_pattern(mint_request(1, BOX, wallet=w3.eth.accounts[2]), BOX, "focus")
    assert refused.value.retryable is False
    assert total(minter) == 0 and sent_count(w3, outsider) == 0


def test_bad_pattern_requests_are_refused_before_anything_is_sent(w3, minter, signer):
    good = mint_request(1, BOX, wallet=w3.eth.accounts[2])
    sent = sent_count(w3, signer)
    with pytest.raises(BadMintRequest, match="does not match the pattern's phases"):
        minter.mint_pattern(good, RELAX, "focus")  # the hash names another pattern
    with pytest.raises(BadMintRequest, match="category 'work'"):
        minter.mint_pattern(good, BOX, "work")
    bad_wallet = good.model_copy(update={"wallet": "0x" + good.wallet[2:].swapcase()})
    with pytest.raises(BadMintRequest, match="checksum"):
        minter.mint_pattern(bad_wallet, BOX, "focus")
    assert sent_count(w3, signer) == sent and total(minter) == 0


def test_achievements_and_patterns_share_one_signer_and_one_nonce_sequence(w3, minter, signer):
    wallet = w3.eth.accounts[4]
    start = sent_count(w3, signer)
    phases = [Pattern(name=f"p{i}", inhale=4.0 + i, exhale=6.0) for i in range(4)]
    jobs = [lambda p=p, i=i: minter.mint_pattern(mint_request(i, p, wallet=wallet), p, "stress")
            for i, p in enumerate(phases)]
    jobs += [lambda i=i: minter.mint(MintRequest(
        id=f"ach-{i}", device_id="kitchen", achievement="streak_7", day=date(2025, 11, 20),
        commitment="5f" * 32, wallet=wallet)) for i in range(4)]
    results: list[object] = []
    barrier = threading.Barrier(len(jobs))

    def run(job) -> None:
        barrier.wait()
        try:
            results.append(job())
        except Exception as exc:  # asserted below
            results.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sorted(r.contract == minter.patterns_address for r in results) == [False] * 4 + [
        True] * 4
    nonces = sorted(w3.eth.get_transaction(r.tx_hash)["nonce"] for r in results)
    assert nonces == list(range(start, start + 8))


def test_settings_name_the_patterns_contract_and_a_missing_one_says_so(tmp_path, w3, signer):
    """The relay's config: ``patterns_contract_address`` (read with getattr until the field
    exists in ChainSettings; this subclass stands in for it)."""

    class Settings(ChainSettings):
        patterns_contract_address: str | None = None

    key = tmp_path / "minter.key"
    key.write_text(signer.key.hex())
    address = deploy(w3, signer)
    settings = Settings(key_file=key, contract_address=address, chain_id=w3.eth.chain_id)
    only_achievements = minter_from_settings(settings, w3=w3)
    assert only_achievements.patterns_address is None
    with pytest.raises(ChainConfigError, match="patterns_contract_address: empty") as off:
        only_achievements.mint_pattern(mint_request(1, BOX, wallet=w3.eth.accounts[2]), BOX,
                                       "focus")
    assert off.value.retryable is False
    both = minter_from_settings(settings.model_copy(
        update={"patterns_contract_address": deploy_patterns(w3, signer)}), w3=w3)
    assert both.mint_pattern(mint_request(1, BOX, wallet=w3.eth.accounts[2]), BOX,
                             "focus").token_id == 1
    empty = "0x" + "12" * 20
    with pytest.raises(ChainConfigError, match="patterns_contract_address: no contract at"):
        Minter(w3, address, signer, patterns_address=empty).check()
