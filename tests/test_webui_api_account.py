# ruff: noqa: F811 - pytest fixtures are imported from webui_api_support by name
"""The owner's own data: profile and wallet, settings and privacy, history, export, and
deleting the account."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from datetime import UTC, date, datetime, timedelta

from webui_api_support import (  # noqa: F401 - fixtures
    NAME,
    PASSWORD,
    ApiClient,
    api,
    app,
    appliance,
    clock,
    db,
    logged_in,
    owner_id,
    step,
    stored_session,
)

from device.store import db_path_for, open_db
from device.store.achievements_repo import list_achievements
from device.store.outbox_repo import Outgoing, enqueue
from device.store.outbox_repo import count as outbox_count
from device.store.patterns_repo import list_patterns
from device.store.sessions_repo import list_sessions
from device.store.settings_repo import all_settings, get_setting, set_setting
from webui.security import claim, is_claimed

CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"


# -- profile ------------------------------------------------------------------------------------

def test_profile_shows_and_changes_name_and_wallet(api, owner_id):
    profile = api.get("/api/profile").get_json()
    assert profile["id"] == owner_id and profile["display_name"] == NAME
    assert profile["wallet_address"] is None
    lower = api.put("/api/profile", json={"wallet_address": CHECKSUMMED.lower()})
    assert lower.status_code == 200
    assert lower.get_json()["wallet_address"] == CHECKSUMMED  # stored checksummed
    assert lower.get_json()["display_name"] == NAME  # left out: unchanged
    renamed = api.put("/api/profile", json={"display_name": "  Ada L.  "}).get_json()
    assert renamed["display_name"] == "Ada L." and renamed["wallet_address"] == CHECKSUMMED
    cleared = api.put("/api/profile", json={"wallet_address": None}).get_json()
    assert cleared["wallet_address"] is None
    # the display name is the login name
    fresh = ApiClient(api.client.application.test_client())
    fresh.login(name="ada l.", form=True)
    assert fresh.get("/api/profile").status_code == 200


def test_a_wallet_with_a_wrong_checksum_or_shape_is_refused(api):
    typo = CHECKSUMMED.replace("EE7", "Ee7")  # one letter's case changed
    wrong = api.put("/api/profile", json={"wallet_address": typo})
    assert wrong.status_code == 400
    body = wrong.get_json()
    assert body["field"] == "wallet_address"
    assert "EIP-55 checksum" in body["message"] and "typo" in body["message"]
    short = api.put("/api/profile", json={"wallet_address": "0x1234"})
    assert "0x followed by 40 hex digits" in short.get_json()["message"]
    empty_name = api.put("/api/profile", json={"display_name": "   "})
    assert empty_name.status_code == 400 and empty_name.get_json()["field"] == "display_name"
    assert api.get("/api/profile").get_json()["wallet_address"] is None


# -- settings and privacy -----------------------------------------------------------------------

def test_settings_start_from_the_device_config_and_keep_the_owners_choices(api, db):
    settings = api.get("/api/settings").get_json()
    assert settings == {"privacy": {"retention": "1y", "share_metrics": False,
                                    "allow_analytics": False},
                        "default_pattern": "coherent", "default_minutes": 10.0,
                        "sync_enabled": False}
    saved = api.put("/api/settings", json={"privacy": {"share_metrics": True},
                                           "default_pattern": "box",
                                           "default_minutes": 5})
    assert saved.status_code == 200
    body = saved.get_json()
    assert body["privacy"] == {"retention": "1y", "share_metrics": True,
                               "allow_analytics": False}
    assert body["default_pattern"] == "box" and body["default_minutes"] == 5
    assert body["deleted_sessions"] == 0
    assert get_setting(db, "privacy.share_metrics") is True  # where device.privacy reads it
    assert api.get("/api/settings").get_json()["default_pattern"] == "box"
    unknown = api.put("/api/settings", json={"default_pattern": "nope"})
    assert unknown.status_code == 400 and unknown.get_json()["field"] == "default_pattern"
    bad = api.put("/api/settings", json={"privacy": {"retention": "2w"}})
    assert bad.get_json()["field"] == "privacy.retention"


def test_a_shorter_retention_deletes_older_sessions_at_once(api, db):
    old = stored_session(db, days_ago=40)
    recent = stored_session(db, days_ago=2)
    same = api.put("/api/settings", json={"privacy": {"retention": "1y"}}).get_json()
    assert same["deleted_sessions"] == 0
    shorter = api.put("/api/settings", json={"privacy": {"retention": "30d"}}).get_json()
    assert shorter["deleted_sessions"] == 1
    assert [s["id"] for s in api.get("/api/sessions").get_json()["sessions"]] == [recent]
    assert api.get(f"/api/sessions/{old}").status_code == 404


# -- history ------------------------------------------------------------------------------------

def test_history_has_totals_streaks_patterns_and_weeks(api, db):
    now = datetime.now(UTC)
    for days, pattern, adherence in ((0, "box", 0.9), (1, "box", 0.7), (3, "coherent", None),
                                     (20, "box", 0.5)):
        stored_session(db, days_ago=days, pattern_id=pattern, adherence=adherence, now=now)
    stored_session(db, days_ago=0, minutes=0.5, now=now)  # too short to count
    history = api.get("/api/history?weeks=5").get_json()
    assert history["totals"]["sessions"] == 4 and history["totals"]["minutes"] == 20
    assert history["streaks"]["longest"] >= 2 and history["streaks"]["current"] >= 2
    uses = {p["pattern_key"]: p for p in history["patterns"]}
    assert uses["box"]["sessions"] == 3 and uses["box"]["name"] == "Box breathing"
    assert uses["box"]["median_adherence"] == 0.7
    assert uses["coherent"]["median_adherence"] is None
    weeks = history["weeks"]
    assert len(weeks) == 5
    mondays = [date.fromisoformat(w["week_start"]) for w in weeks]
    assert all(m.weekday() == 0 for m in mondays)
    assert [b - a for a, b in zip(mondays, mondays[1:], strict=False)] == [timedelta(7)] * 4
    assert sum(w["sessions"] for w in weeks) == 4
    assert weeks[-1]["median_rate_bpm"] in (6.0, None)
    assert api.get("/api/history?weeks=0").get_json()["field"] == "weeks"


# -- export -------------------------------------------------------------------------------------

def _personal_data(api, db) -> str:
    api.put("/api/profile", json={"wallet_address": CHECKSUMMED})
    api.post("/api/patterns", json={"name": "Calm", "inhale": 4, "exhale": 6})
    api.put("/api/settings", json={"privacy": {"allow_analytics": True}})
    session_id = stored_session(db, minutes=2, seconds_of_timeline=5)
    assert [a["kind"] for a in api.get("/api/achievements").get_json()["achievements"]] == [
        "first_session"]
    achievement = list_achievements(db)[0]
    db["mint_requests"].insert({"id": "m1", "achievement_id": achievement.id,
                                "wallet_address": CHECKSUMMED, "status": "minted",
                                "token_id": "7", "tx_hash": None, "error": None,
                                "created": "2026-01-01T00:00:00+00:00",
                                "updated": "2026-01-01T00:00:00+00:00"})
    return session_id


def test_json_export_has_all_personal_data_and_no_secrets(api, db, owner_id):
    session_id = _personal_data(api, db)
    response = api.get("/api/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert "scrypt" not in text and "auth." not in text and "password" not in text
    data = json.loads(text)
    assert data["profile"]["id"] == owner_id
    assert data["profile"]["wallet_address"] == CHECKSUMMED
    assert data["privacy"]["allow_analytics"] is True
    assert data["settings"]["privacy.allow_analytics"] is True
    [session] = data["sessions"]
    assert session["id"] == session_id and session["metrics"]["adherence"] == 0.8
    assert [p["second"] for p in session["timeline"]] == [0, 1, 2, 3, 4]
    assert session["pattern"]["name"] == "Box breathing"
    assert [p["name"] for p in data["patterns"]] == ["Calm"]
    assert data["achievements"][0]["mint"]["token_id"] == "7"
    assert data["mint_requests"][0]["id"] == "m1"


def test_csv_export_is_a_zip_of_one_table_per_kind(api, db):
    session_id = _personal_data(api, db)
    stored_session(db, days_ago=1, seconds_of_timeline=2)
    response = api.get("/api/export?format=csv")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == [
        "achievements.csv", "mint_requests.csv", "patterns.csv", "profile.csv",
        "sessions.csv", "settings.csv", "timeline.csv"]

    def rows(name):
        return list(csv.DictReader(io.TextIOWrapper(archive.open(name), "utf-8")))

    sessions = rows("sessions.csv")
    assert len(sessions) == 2 and sessions[0]["id"] == session_id
    assert sessions[0]["pattern_phases"] == "4-4-4-4" and sessions[0]["adherence"] == "0.8"
    assert json.loads(sessions[0]["metrics"])["coverage"] == 0.9
    timeline = rows("timeline.csv")
    assert len(timeline) == 7 and timeline[0]["target_phase"] == "inhale"
    assert rows("profile.csv")[0]["wallet_address"] == CHECKSUMMED
    assert rows("patterns.csv")[0]["name"] == "Calm"
    assert rows("achievements.csv")[0]["mint_status"] == "minted"
    keys = {r["key"] for r in rows("settings.csv")}
    assert "privacy.allow_analytics" in keys and not any(k.startswith("auth.") for k in keys)
    assert b"scrypt" not in b"".join(archive.read(n) for n in archive.namelist())
    assert api.get("/api/export?format=xml").get_json()["field"] == "format"


# -- deleting the account -----------------------------------------------------------------------

def test_wrong_password_deletes_nothing(api, db):
    _personal_data(api, db)
    before = (len(list_sessions(db)), len(list_achievements(db)), len(all_settings(db)))
    for _ in range(5):
        wrong = api.post("/api/account/delete", json={"password": "not my password"})
        assert wrong.status_code == 403
        assert wrong.get_json()["field"] == "password"
        assert "nothing was deleted" in wrong.get_json()["message"]
    locked = api.post("/api/account/delete", json={"password": PASSWORD})
    assert locked.status_code == 429  # guessing is rate-limited like the login
    assert (len(list_sessions(db)), len(list_achievements(db)), len(all_settings(db))) == before
    assert is_claimed(db) and api.get("/api/profile").status_code == 200


def test_deleting_the_account_wipes_personal_data_and_unclaims_the_device(
        data_dir, appliance, clock, caplog):
    api = logged_in(data_dir, APPLIANCE=appliance)
    db = open_db(db_path_for(data_dir))
    try:
        _personal_data(api, db)
        set_setting(db, "mqtt.note", "fleet config, not personal")
        enqueue(db, Outgoing(topic="sessions", payload={"id": "x"}))
        api.post("/api/session", json={"pattern_id": "box", "minutes": 1})
        step(appliance.engine, clock, 1.0)
        with caplog.at_level(logging.WARNING, logger="webui"):
            response = api.post("/api/account/delete", json={"password": PASSWORD})
        assert response.status_code == 200
        deleted = response.get_json()["deleted"]
        assert deleted["sessions"] == 2 and deleted["profiles"] >= 1
        assert deleted["patterns"] == 1 and deleted["mint_requests"] == 1
        assert appliance.engine.status == "stopped"  # the live session ended first
        assert list_sessions(db) == [] and list_achievements(db) == []
        assert outbox_count(db) == 0
        assert [r.id for r in list_patterns(db) if not r.built_in] == []
        assert len(list_patterns(db)) == 7  # built-ins stay
        assert list(db.query("SELECT * FROM profiles")) == []
        remaining = all_settings(db)
        assert set(remaining) == {"mqtt.note", "auth.claim_code"}
        assert not is_claimed(db)
        assert api.get("/api/profile").get_json()["error"] == "unclaimed"
        code = re.search(r"setup code ([A-Z0-9]{4}-[A-Z0-9]{4})", caplog.text).group(1)
        assert claim(db, code, "Grace", PASSWORD).display_name == "Grace"
    finally:
        db.close()
