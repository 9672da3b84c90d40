"""The token contracts (achievements, patterns): each committed artefact matches the source,
and on a real EVM (eth-tester in process) each mints once per request, only for minters.
What only the pattern contract does (one original per content hash) is in
tests/test_chain_patterns.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.logs import DISCARD

from relay.chain.contract import (
    BUILD_DIR,
    CONTRACT_NAME,
    PATTERNS_CONTRACT_NAME,
    decode_revert,
    deploy,
    load_artifact,
)

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "relay" / "contracts"
NAMES = (CONTRACT_NAME, PATTERNS_CONTRACT_NAME)
TITLES = {CONTRACT_NAME: "Breathe Achievements", PATTERNS_CONTRACT_NAME: "Breathe Patterns"}
URI = "data:application/json;base64,e30="


@pytest.mark.parametrize("name", NAMES)
def test_committed_artefact_names_the_current_sources(name):
    """Fast guard (no node needed): every source hash in the artefact matches the file now."""
    artefact = json.loads((BUILD_DIR / f"{name}.json").read_text())
    assert artefact["contractName"] == name
    ours = {name: digest for name, digest in artefact["sources"].items() if "/" not in name}
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in CONTRACTS.glob("*.sol")}
    assert ours == on_disk, "relay/contracts changed: run scripts/build-contract and commit"
    package = ROOT / "node_modules" / "@openzeppelin" / "contracts"
    if package.is_dir():
        for name, digest in artefact["sources"].items():
            if name.startswith("@openzeppelin/contracts/"):
                path = ROOT / "node_modules" / name
                assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name
    assert artefact["compiler"]["version"].startswith("0.8.37+")
    assert artefact["settings"]["evmVersion"] == "prague"
    assert artefact["settings"]["optimizer"]["enabled"] is True


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (CI has it); "
                    "the rebuild needs npm's solc")
def test_rebuilding_from_source_reproduces_the_committed_artefact(tmp_path):
    if not (ROOT / "node_modules" / "solc").is_dir():
        pytest.fail("node_modules/solc is missing: run `npm ci` (package.json pins solc 0.8.37)")
    done = subprocess.run([str(ROOT / "scripts" / "build-contract"), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in NAMES:  # one build writes them all; each must match
        committed = BUILD_DIR / f"{name}.json"
        assert (tmp_path / committed.name).read_text() == committed.read_text(), (
            f"{committed.name} differs from a fresh build: run scripts/build-contract")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in BUILD_DIR.glob("*.json")) == sorted(f"{n}.json" for n in NAMES)


@pytest.fixture(scope="module")
def w3():
    return Web3(EthereumTesterProvider())


@pytest.fixture(scope="module", params=NAMES)
def chain(request, w3):
    """Each contract, deployed once for this module by a fresh admin (also the minter)."""
    admin = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": admin.address, "value": 10**21})
    address = deploy(w3, admin, name=request.param)
    return w3, admin, w3.eth.contract(address=address, abi=load_artifact(request.param)["abi"])


def _mint(chain, request_id: bytes, to: str, sender: str | None = None):
    """Each contract's mint; a pattern's content hash is derived from the request id so every
    request here mints a different pattern."""
    w3, admin, contract = chain
    sender = sender or admin.address
    if _name(contract) == PATTERNS_CONTRACT_NAME:
        content = hashlib.sha256(b"content" + request_id).digest()
        call = contract.functions.mint(to, request_id, content, URI)
    else:
        call = contract.functions.mint(to, request_id, URI)
    if sender == admin.address:
        tx = call.build_transaction({"from": sender, "nonce": w3.eth.get_transaction_count(sender)})
        return w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(admin.sign_transaction(tx).raw_transaction))
    return w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))


def test_a_request_mints_one_token_and_a_second_mint_is_refused(chain):
    w3, _, contract = chain
    owner = w3.eth.accounts[3]
    request_id = hashlib.sha256(b"once").digest()
    receipt = _mint(chain, request_id, owner)
    assert receipt.status == 1
    (event,) = contract.events.RequestMinted().process_receipt(receipt, errors=DISCARD)
    token_id = event.args.tokenId
    assert event.args.requestId == request_id and event.args.to == owner
    assert contract.functions.ownerOf(token_id).call() == owner
    assert contract.functions.tokenURI(token_id).call() == URI
    assert contract.functions.tokenOfRequest(request_id).call() == token_id
    assert contract.functions.minted(request_id).call() is True
    before = contract.functions.totalMinted().call()

    with pytest.raises(TransactionFailed) as refused:
        _mint(chain, request_id, w3.eth.accounts[4])
    name = _name(contract)
    assert decode_revert(refused.value, name) == (
        "RequestAlreadyMinted", {"requestId": request_id, "tokenId": token_id})
    assert contract.functions.totalMinted().call() == before
    assert contract.functions.balanceOf(w3.eth.accounts[4]).call() == 0


def test_only_a_minter_can_mint_and_the_admin_can_grant_the_role(chain):
    w3, admin, contract = chain
    stranger = w3.eth.accounts[5]
    request_id = hashlib.sha256(b"stranger").digest()
    with pytest.raises(TransactionFailed) as refused:
        _mint(chain, request_id, stranger, sender=stranger)
    error, args = decode_revert(refused.value, _name(contract))
    assert error == "AccessControlUnauthorizedAccount" and args["account"] == stranger
    assert contract.functions.minted(request_id).call() is False

    role = contract.functions.MINTER_ROLE().call()
    tx = contract.functions.grantRole(role, stranger).build_transaction(
        {"from": admin.address, "nonce": w3.eth.get_transaction_count(admin.address)})
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(admin.sign_transaction(tx).raw_transaction))
    assert _mint(chain, request_id, stranger, sender=stranger).status == 1


def test_the_zero_request_id_is_refused(chain):
    with pytest.raises(TransactionFailed) as refused:
        _mint(chain, bytes(32), chain[0].eth.accounts[3])
    assert decode_revert(refused.value, _name(chain[2])) == ("InvalidRequestId", {})


def test_token_ids_count_up_from_one_and_interfaces_are_advertised(chain):
    _, _, contract = chain
    first = contract.functions.tokenOfRequest(hashlib.sha256(b"once").digest()).call()
    assert first >= 1
    assert contract.functions.tokenOfRequest(hashlib.sha256(b"never").digest()).call() == 0
    for interface in ("0x80ac58cd",  # ERC-721
                      "0x5b5e139f",  # ERC-721 metadata
                      "0x7965db0b",  # AccessControl
                      "0x49064906",  # ERC-4906 metadata updates
                      "0x01ffc9a7"):  # ERC-165
        assert contract.functions.supportsInterface(bytes.fromhex(interface[2:])).call()
    assert not contract.functions.supportsInterface(b"\xff\xff\xff\xff").call()
    assert contract.functions.name().call() == TITLES[_name(contract)]


def _name(contract) -> str:
    """Which artefact ``contract`` was bound with (the pattern ABI has tokenOfContent)."""
    has = {item.get("name") for item in contract.abi}
    return PATTERNS_CONTRACT_NAME if "tokenOfContent" in has else CONTRACT_NAME
