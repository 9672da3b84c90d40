# ruff: noqa: F811 - pytest fixtures are imported from webui_api_support by name
"""Achievements and the Mint button: why it is disabled, the request it makes (through the sync
client's ``request_mint``), and the status it shows afterwards."""

from __future__ import annotations

from webui_api_support import (  # noqa: F401 - fixtures
    api,
    app,
    db,
    logged_in,
    owner_id,
    stored_session,
)

from common.config import Settings
from device.sharing.mint import apply_mint_result
from device.store.outbox_repo import pending
from webui import create_app
from wire import protocol

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"


def _earned(api, db) -> dict:
    stored_session(db, minutes=2)
    [achievement] = api.get("/api/achievements").get_json()["achievements"]
    return achievement


def test_mint_is_unavailable_until_a_wallet_is_set_and_sync_is_on(api, db):
    achievement = _earned(api, db)
    assert achievement["kind"] == "first_session" and achievement["title"] == "First session"
    assert achievement["mint"] is None and achievement["can_mint"] is False
    assert achievement["mint_unavailable"] == "set a wallet address in Settings"
    refused = api.post(f"/api/achievements/{achievement['id']}/mint")
    assert refused.status_code == 409
    assert refused.get_json() == {"error": "mint_unavailable", "field": None,
                                  "message": "set a wallet address in Settings"}
    api.put("/api/profile", json={"wallet_address": WALLET})
    [achievement] = api.get("/api/achievements").get_json()["achievements"]
    assert achievement["mint_unavailable"] == "sync is off"
    off = api.post(f"/api/achievements/{achievement['id']}/mint")
    assert off.status_code == 409 and off.get_json()["message"] == "sync is off"
    assert pending(db) == []  # nothing was queued for the relay
    assert api.post("/api/achievements/999/mint").status_code == 404


def test_mint_queues_one_request_and_shows_its_progress(data_dir, db):
    api = logged_in(data_dir, SYNC_ENABLED=True, DEVICE_ID="kitchen")
    api.put("/api/profile", json={"wallet_address": WALLET.lower()})
    achievement = _earned(api, db)
    assert achievement["can_mint"] is True and achievement["mint_unavailable"] is None
    accepted = api.post(f"/api/achievements/{achievement['id']}/mint")
    assert accepted.status_code == 202
    body = accepted.get_json()
    assert body["status"] == "pending"
    [message] = pending(db)
    assert message.topic == "breathe/v1/kitchen/mint/request"
    assert message.payload["wallet"] == WALLET and message.payload["id"] == body["request_id"]
    assert "sessions" not in str(message.payload)  # a commitment only, nothing personal
    again = api.post(f"/api/achievements/{achievement['id']}/mint")
    assert again.status_code == 409
    assert again.get_json()["message"] == "a mint request is already on its way"
    assert len(pending(db)) == 1

    apply_mint_result(db, protocol.MintResult(id=body["request_id"], ok=True, token_id="7"))
    [shown] = api.get("/api/achievements").get_json()["achievements"]
    assert shown["mint"]["status"] == "minted" and shown["mint"]["token_id"] == "7"
    assert shown["can_mint"] is False
    assert shown["mint_unavailable"] == "already minted (token 7)"


def test_a_failed_mint_may_be_asked_for_again(data_dir, db):
    api = logged_in(data_dir, SYNC_ENABLED=True)
    api.put("/api/profile", json={"wallet_address": WALLET})
    achievement = _earned(api, db)
    first = api.post(f"/api/achievements/{achievement['id']}/mint").get_json()["request_id"]
    apply_mint_result(db, protocol.MintResult(id=first, ok=False, error="chain unreachable"))
    [shown] = api.get("/api/achievements").get_json()["achievements"]
    assert shown["mint"]["status"] == "failed" and shown["mint"]["error"] == "chain unreachable"
    assert shown["can_mint"] is True
    second = api.post(f"/api/achievements/{achievement['id']}/mint")
    assert second.status_code == 202 and second.get_json()["request_id"] != first


def test_sync_and_device_id_come_from_the_device_settings(data_dir):
    settings = Settings.model_validate({"device": {"id": "hall", "data_dir": str(data_dir)},
                                        "mqtt": {"enabled": True}})
    app = create_app({"SETTINGS": settings, "TESTING": True, "ISSUE_CLAIM_CODE": False})
    assert app.config["SYNC_ENABLED"] is True and app.config["DEVICE_ID"] == "hall"
    assert app.config["DATA_DIR"] == data_dir
    plain = create_app({"DATA_DIR": data_dir, "TESTING": True, "ISSUE_CLAIM_CODE": False})
    assert plain.config["SYNC_ENABLED"] is False
    assert plain.config["DEVICE_ID"] == "breathe-local"
